"""Where the windows of an indexing run are cut and embedded: this process (indexer.index_files)
or a Ray cluster (ray_engine). Both commit through the same writer code in indexer.py."""
