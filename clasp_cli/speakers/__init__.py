"""Who speaks where: speaker turns in each recording (segment.py), speaker vectors (embed.py),
turns and voices of one recording (diarize.py), and speakers across the whole index
(cluster.py). The weights ship in clasp_cli/models/speakers (models.py checks them)."""
