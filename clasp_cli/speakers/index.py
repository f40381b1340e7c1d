"""The speakers of an index: storing each recording's voices, joining them to speakers across
recordings, and what people do with them (list, name, merge, re-cluster, filter, find by voice).

A new recording's voices join the nearest speaker when they are alike enough, else each starts
a new speaker: one file never re-clusters the rest. A speaker whose vector drifts, as voices join
it, to within SAME_SPEAKER of another's becomes one with it (a person first heard in an unusual
setting, then often). `recluster` groups every voice again; voices a person placed (by naming or
merging their speaker) stay with it, so names and merges survive.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from ..errors import UsageError
from ..store import SPEAKERS_FROM, Store
from .cluster import unit
from .diarize import Diarization
from .embed import DIM

# The cosine at which a recording's voice is the same person as a speaker met before (its
# vector against the speaker's mean), and the average-linkage level of a full re-cluster. A voice
# heard for less than LONG_VOICE_S has a noisier vector: it joins the nearest speaker from
# SHORT_SAME_SPEAKER on, rather than start one of its own. Chosen on the Fish Fillets training
# levels (docs/speakers.md).
SAME_SPEAKER = 0.75
SHORT_SAME_SPEAKER = 0.5
LONG_VOICE_S = 10.0
# Under a second of speech tells CAM++ too little to say a person is new (the diarizer clusters
# no local speaker with less, DiarizeConfig.min_embed_s): such a voice joins the nearest speaker
# and never starts one. Without it, the Asterisk prompts' two 0.8 s prompts were two speakers.
MIN_VOICE_S = 1.0


def join_level(seconds: float, same: float = SAME_SPEAKER, short: float = SHORT_SAME_SPEAKER,
               long_s: float = LONG_VOICE_S, min_s: float = MIN_VOICE_S) -> float:
    """The cosine a voice of this many seconds needs to join an existing speaker."""
    if seconds < min_s:
        return -1.0
    return same if seconds >= long_s else min(same, short)


@dataclass
class SpeakerInfo:
    id: int
    name: str | None
    seconds: float
    files: int
    sample: tuple[str, float, float, str | None] | None  # (path, start, end, what was said)
    sample_passage: int | None = None  # the sample window's passage id (`clasp serve` plays it)

    def to_json(self) -> dict:
        row = {"id": self.id, "name": self.name, "seconds": round(self.seconds, 2), "files": self.files}
        if self.sample:
            path, start, end, text = self.sample
            row["sample"] = {"path": path, "start": start, "end": end, **({"text": text} if text is not None else {})}
        return row


def has_speakers(store: Store) -> bool:
    """Whether this index's schema holds speakers."""
    return store.db.execute("PRAGMA user_version").fetchone()[0] >= SPEAKERS_FROM


def files_to_diarize(store: Store) -> list[tuple[int, str, str]]:
    """(file id, path, path on disk) of indexed recordings with windows whose speakers were not
    looked for yet."""
    if not has_speakers(store):
        return []
    rows = store.db.execute(
        "SELECT f.id, f.path FROM files f WHERE f.status='ok' AND NOT EXISTS (SELECT 1 FROM diarized d WHERE d.file_id=f.id) "
        "AND EXISTS (SELECT 1 FROM passages p WHERE p.file_id=f.id) ORDER BY f.path").fetchall()
    out = []
    for fid, path in rows:
        rec = store.file(path)
        if rec is not None:
            out.append((int(fid), path, rec.fs_path))
    return out


def save_diarization(store: Store, file_id: int, passage_ids: Sequence[int], d: Diarization,
                     same_speaker: float = SAME_SPEAKER) -> list[int]:
    """Store one recording's voices, turns and window voices in one transaction, each voice
    joined to the nearest speaker of the index (or a new one). Returns the speaker of each voice."""
    now = time.time()
    with store.transaction() as db:
        db.execute("DELETE FROM voices WHERE file_id=?", (file_id,))  # a rerun after a kill mid-way
        speakers = _speaker_vectors(db)
        for (stale,) in db.execute("SELECT id FROM speakers WHERE vector IS NOT NULL AND weight IS NULL").fetchall():
            speakers[int(stale)] = _refresh(db, int(stale))  # voices left them (a recording indexed again, pruned)
        speakers = {k: v for k, v in speakers.items() if v is not None}
        voice_ids = []
        for v in d.voices:
            sid = None
            if speakers:
                ids = list(speakers)
                sims = np.stack([speakers[i] for i in ids]) @ v.vector
                best = int(np.argmax(sims))
                if sims[best] >= join_level(v.seconds, same_speaker):
                    sid = ids[best]
            if sid is None:
                sid = db.execute("INSERT INTO speakers(created_at) VALUES(?)", (now,)).lastrowid
            voice_ids.append(db.execute("INSERT INTO voices(file_id, speaker_id, seconds, vector) VALUES(?,?,?,?)",
                                        (file_id, sid, v.seconds, np.asarray(v.vector, np.float32).tobytes())).lastrowid)
            speakers[sid] = _add_voice(db, sid, v.vector, v.seconds)
            merge_drifted(db, speakers, sid, same_speaker)
        db.executemany("INSERT INTO turns(voice_id, start, end, overlap) VALUES(?,?,?,?)",
                       [(voice_ids[t.voice], t.start, t.end, int(t.overlap)) for t in d.turns])
        db.executemany("INSERT OR REPLACE INTO passage_voices(passage_id, voice_id, vector) VALUES(?,?,?)",
                       [(int(pid), voice_ids[v] if v is not None else None,
                         np.asarray(vec, np.float16).tobytes() if v is not None or np.any(vec) else None)
                        for pid, v, vec in zip(passage_ids, d.window_voice, d.window_vectors)])
        db.execute("INSERT OR REPLACE INTO diarized(file_id, at) VALUES(?,?)", (file_id, now))
        taken = [int(db.execute("SELECT speaker_id FROM voices WHERE id=?", (v,)).fetchone()[0]) for v in voice_ids]
    return taken


def merge_drifted(db, speakers: dict[int, np.ndarray], sid: int, same_speaker: float = SAME_SPEAKER) -> int:
    """Make speaker `sid` one with every speaker its vector now lies within `same_speaker` of
    (`speakers`, id -> vector, is kept current). The one kept is the named one, else the one a
    person placed voices in, else the one with more speech; two named speakers stay apart.
    Returns the id `sid`'s voices have now."""
    while len(speakers) > 1 and speakers.get(sid) is not None:
        others = [k for k, v in speakers.items() if k != sid and v is not None]
        if not others:
            break
        sims = np.stack([speakers[k] for k in others]) @ speakers[sid]
        near = [others[i] for i in np.argsort(-sims) if sims[i] >= same_speaker]
        if not near:
            break
        rank = {k: db.execute("SELECT s.name IS NOT NULL, COALESCE(MAX(v.pinned), 0), COALESCE(SUM(v.seconds), 0) "
                              "FROM speakers s LEFT JOIN voices v ON v.speaker_id = s.id WHERE s.id=?", (k,)).fetchone()
                for k in [sid, *near]}
        other = next((k for k in near if not (rank[k][0] and rank[sid][0])), None)
        if other is None:
            break
        keep, gone = sorted((sid, other), key=lambda k: (-rank[k][0], -rank[k][1], -rank[k][2], k))
        db.execute("UPDATE voices SET speaker_id=? WHERE speaker_id=?", (keep, gone))
        db.execute("DELETE FROM speakers WHERE id=?", (gone,))
        speakers.pop(gone)
        speakers[keep] = _refresh(db, keep)
        sid = keep
    return sid


def speaker_vectors(store: Store) -> dict[int, np.ndarray]:
    """speaker id -> its vector (the unit mean of its voices), for speakers that have voices."""
    return _speaker_vectors(store.db) if has_speakers(store) else {}


def _speaker_vectors(db) -> dict[int, np.ndarray]:
    return {int(i): np.frombuffer(b, dtype=np.float32) for i, b in
            db.execute("SELECT id, vector FROM speakers WHERE vector IS NOT NULL")}


def _refresh(db, speaker_id: int) -> np.ndarray | None:
    """Recompute a speaker's vector from its voices (seconds-weighted unit mean)."""
    rows = db.execute("SELECT seconds, vector FROM voices WHERE speaker_id=?", (speaker_id,)).fetchall()
    if not rows:
        db.execute("UPDATE speakers SET vector=NULL, weight=NULL WHERE id=?", (speaker_id,))
        return None
    w = np.array([max(r[0], 1e-3) for r in rows])
    total = (np.stack([np.frombuffer(r[1], dtype=np.float32) for r in rows]) * w[:, None]).sum(0)
    vec = unit(total).astype(np.float32)
    db.execute("UPDATE speakers SET vector=?, weight=? WHERE id=?", (vec.tobytes(), float(np.linalg.norm(total)), speaker_id))
    return vec


def _add_voice(db, speaker_id: int, vector: np.ndarray, seconds: float) -> np.ndarray | None:
    """A speaker's vector once a voice (already in `voices`) joined it: its running sum plus the
    voice, without reading its other voices; recomputed where the sum is not known."""
    row = db.execute("SELECT vector, weight FROM speakers WHERE id=?", (speaker_id,)).fetchone()
    if row is None or row[0] is None or row[1] is None:
        return _refresh(db, speaker_id)
    total = np.frombuffer(row[0], dtype=np.float32).astype(np.float64) * row[1] + np.asarray(vector, np.float64) * max(seconds, 1e-3)
    vec = unit(total).astype(np.float32)
    db.execute("UPDATE speakers SET vector=?, weight=? WHERE id=?", (vec.tobytes(), float(np.linalg.norm(total)), speaker_id))
    return vec


def forget_empty(store: Store) -> int:
    """Drop speakers with no voices and no name (their recordings were removed or re-indexed)."""
    with store.transaction() as db:
        return db.execute("DELETE FROM speakers WHERE name IS NULL AND NOT EXISTS "
                          "(SELECT 1 FROM voices v WHERE v.speaker_id=speakers.id)").rowcount


def list_speakers(store: Store) -> list[SpeakerInfo]:
    """Every speaker with speech in the index (and named ones without), most speech first, each
    with a sample: its longest window in the recording where it speaks most."""
    if not has_speakers(store):
        return []
    rows = store.db.execute(
        "SELECT s.id, s.name, COALESCE(SUM(v.seconds), 0), COUNT(DISTINCT v.file_id) FROM speakers s "
        "LEFT JOIN voices v ON v.speaker_id=s.id GROUP BY s.id HAVING COUNT(v.id) > 0 OR s.name IS NOT NULL "
        "ORDER BY 3 DESC, s.id").fetchall()
    out = []
    for sid, name, secs, files in rows:
        got = sample(store, int(sid))
        out.append(SpeakerInfo(int(sid), name, float(secs), int(files), got[0] if got else None, got[1] if got else None))
    return out


def sample(store: Store, speaker_id: int) -> tuple[tuple[str, float, float, str | None], int] | None:
    """A passage to listen to: the longest window of this speaker's main voice, as ((path, start,
    end, text), passage id)."""
    row = store.db.execute(
        "SELECT f.path, p.start, p.end, p.id FROM voices v JOIN passage_voices pv ON pv.voice_id=v.id "
        "JOIN passages p ON p.id=pv.passage_id JOIN files f ON f.id=p.file_id WHERE v.speaker_id=? "
        "ORDER BY v.seconds DESC, (p.end - p.start) DESC LIMIT 1", (speaker_id,)).fetchone()
    if row is None:
        return None
    text = store.transcripts([row[3]]).get(row[3]) if store.has_transcript_table else None
    return (row[0], float(row[1]), float(row[2]), text), int(row[3])


def resolve(store: Store, ref: str | int) -> int:
    """A speaker's id from its id or its name (any case); UsageError when there is none."""
    if not has_speakers(store):
        raise UsageError(f"{store.dir} has no speakers: index it again without --no-speakers")
    text = str(ref).strip()
    row = store.db.execute("SELECT id FROM speakers WHERE name=?", (text,)).fetchone()
    if row is None and text.lstrip("#").isdigit():
        row = store.db.execute("SELECT id FROM speakers WHERE id=?", (int(text.lstrip("#")),)).fetchone()
    if row is None:
        raise UsageError(f"no speaker {text!r} in {store.dir} (`clasp speakers` lists them)")
    return int(row[0])


def name_speaker(store: Store, ref: str | int, name: str) -> int:
    """Name a speaker; its voices are pinned to it, so re-clustering keeps them together."""
    sid = resolve(store, ref)
    name = name.strip()
    if not name:
        raise UsageError("a speaker's name cannot be empty")
    if name.lstrip("#").isdigit():
        raise UsageError(f"{name!r} reads as a speaker id; give a name with a letter in it")
    other = store.db.execute("SELECT id FROM speakers WHERE name=? AND id!=?", (name, sid)).fetchone()
    if other is not None:
        raise UsageError(f"speaker {other[0]} is already called {name!r}; merge them with `clasp speakers merge {other[0]} {sid}`")
    with store.transaction() as db:
        db.execute("UPDATE speakers SET name=? WHERE id=?", (name, sid))
        db.execute("UPDATE voices SET pinned=1 WHERE speaker_id=?", (sid,))
    return sid


def merge_speakers(store: Store, into: str | int, others: Sequence[str | int]) -> int:
    """Make `others` one speaker with `into` (its id and name stay; it takes a name from them
    when it has none). Their voices are pinned to it."""
    target = resolve(store, into)
    gone = [s for s in (resolve(store, o) for o in others) if s != target]
    with store.transaction() as db:
        name = db.execute("SELECT name FROM speakers WHERE id=?", (target,)).fetchone()[0]
        for sid in gone:
            other_name = db.execute("SELECT name FROM speakers WHERE id=?", (sid,)).fetchone()[0]
            db.execute("UPDATE voices SET speaker_id=? WHERE speaker_id=?", (target, sid))
            db.execute("DELETE FROM speakers WHERE id=?", (sid,))
            if name is None and other_name is not None:
                name = other_name
                db.execute("UPDATE speakers SET name=? WHERE id=?", (name, target))
        db.execute("UPDATE voices SET pinned=1 WHERE speaker_id=?", (target,))
        _refresh(db, target)
    return target


def recluster(store: Store, threshold: float = SAME_SPEAKER) -> dict[str, int]:
    """Group every voice of the index into speakers again, as indexing joins them but longest
    voice first, so that each speaker's vector is made of its clearest voices before the short,
    noisy ones are placed (average-linkage clustering of all voices split the Asterisk prompts'
    5 voice artists into 113 speakers; this gives docs/speakers.md's numbers). Pinned voices
    start with their speaker, and speakers a person named or merged never join. An unpinned group
    keeps the id of the speaker most of its speech had, when that one is free.
    Returns {"before": speakers before, "after": speakers after}."""
    db = store.db
    rows = db.execute("SELECT id, speaker_id, pinned, seconds, vector FROM voices ORDER BY seconds DESC, id").fetchall()
    before = db.execute("SELECT COUNT(DISTINCT speaker_id) FROM voices").fetchone()[0]
    if not rows:
        return {"before": 0, "after": 0}
    vecs = np.stack([np.frombuffer(r[4], dtype=np.float32) for r in rows]).astype(np.float64)
    secs = np.array([max(float(r[3]), 1e-3) for r in rows])
    groups: list[list[int]] = []
    owners: list[int | None] = []
    sums: list[np.ndarray] = []
    by_owner: dict[int, int] = {}
    for i, r in enumerate(rows):
        if r[2]:  # pinned: with its speaker, whatever its vector says
            g = by_owner.get(int(r[1]))
            if g is None:
                g = by_owner[int(r[1])] = len(groups)
                groups.append([])
                owners.append(int(r[1]))
                sums.append(np.zeros(vecs.shape[1]))
            groups[g].append(i)
            sums[g] += vecs[i] * secs[i]
    for i, r in enumerate(rows):
        if r[2]:
            continue
        g = None
        if groups:
            cents = unit(np.stack(sums))
            sims = cents @ vecs[i]
            best = int(np.argmax(sims))
            if sims[best] >= join_level(secs[i], threshold):
                g = best
        if g is None:
            g = len(groups)
            groups.append([])
            owners.append(None)
            sums.append(np.zeros(vecs.shape[1]))
        groups[g].append(i)
        sums[g] += vecs[i] * secs[i]
    named = {int(x[0]) for x in db.execute("SELECT id FROM speakers WHERE name IS NOT NULL")}
    _merge_groups(groups, owners, sums, secs, threshold)
    now = time.time()
    with store.transaction() as db:
        used = {o for o in owners if o is not None}
        plan: dict[int, int] = {}
        for g, members in enumerate(groups):
            owner = owners[g]
            if owner is None:
                votes: dict[int, float] = {}
                for i in members:
                    votes[int(rows[i][1])] = votes.get(int(rows[i][1]), 0.0) + secs[i]
                owner = next((sid for sid in sorted(votes, key=lambda x: -votes[x]) if sid not in used and sid not in named), None)
                if owner is None:
                    owner = db.execute("INSERT INTO speakers(created_at) VALUES(?)", (now,)).lastrowid
                used.add(owner)
            for i in members:
                plan[int(rows[i][0])] = owner
        db.executemany("UPDATE voices SET speaker_id=? WHERE id=?", [(sid, v) for v, sid in plan.items()])
        for sid in set(plan.values()) | {int(r[1]) for r in rows}:
            _refresh(db, sid)
    forget_empty(store)
    after = store.db.execute("SELECT COUNT(DISTINCT speaker_id) FROM voices").fetchone()[0]
    return {"before": int(before), "after": int(after)}


def _merge_groups(groups: list[list[int]], owners: list[int | None], sums: list[np.ndarray], secs: np.ndarray,
                  threshold: float) -> None:
    """Join groups whose vectors lie within `threshold` of each other (as merge_drifted does while
    indexing), the larger keeping its place; groups of two pinned speakers stay apart. Changes
    the lists in place."""
    while len(groups) > 1:
        cents = unit(np.stack(sums))
        sims = cents @ cents.T
        np.fill_diagonal(sims, -np.inf)
        pair = None
        for a, b in zip(*np.unravel_index(np.argsort(-sims, axis=None), sims.shape)):
            if sims[a, b] < threshold:
                break
            if owners[a] is None or owners[b] is None:
                pair = (int(a), int(b))
                break
        if pair is None:
            return
        a, b = pair
        keep, gone = (a, b) if owners[b] is None and (owners[a] is not None or secs[groups[a]].sum() >= secs[groups[b]].sum()) else (b, a)
        groups[keep] = groups[keep] + groups[gone]
        sums[keep] = sums[keep] + sums[gone]
        del groups[gone], sums[gone], owners[gone]


def passage_speakers(store: Store, passage_ids: Sequence[int]) -> dict[int, tuple[int, str | None]]:
    """passage id -> (speaker id, name), for the windows that have a voice."""
    if not has_speakers(store) or not passage_ids:
        return {}
    ids = [int(i) for i in passage_ids]
    rows = store.db.execute(
        f"SELECT pv.passage_id, s.id, s.name FROM passage_voices pv JOIN voices v ON v.id=pv.voice_id "
        f"JOIN speakers s ON s.id=v.speaker_id WHERE pv.passage_id IN ({','.join('?' * len(ids))})", ids).fetchall()
    return {int(p): (int(s), n) for p, s, n in rows}


def voice_vectors(store: Store) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(passage ids, their own speaker vectors as stored (float16 rows), the row of `voices` each
    window's voice is, the recording voices' vectors (float32)) for the windows that have a
    voice. A voice's vector is read once, not once for each of its windows."""
    empty = (np.zeros(0, dtype=np.int64), np.zeros((0, DIM), dtype=np.float16), np.zeros(0, dtype=np.int64),
             np.zeros((0, DIM), dtype=np.float32))
    if not has_speakers(store):
        return empty
    where = "FROM passage_voices WHERE vector IS NOT NULL AND voice_id IS NOT NULL"
    # SQLite joins the blobs (one aggregate pass: every column sees the rows in the same order);
    # a tuple per window, joined here, took twice as long at 100k windows.
    n, pids, raw, vids = store.db.execute(
        f"SELECT COUNT(*), group_concat(passage_id), CAST(group_concat(vector, '') AS BLOB), group_concat(voice_id) {where}").fetchone()
    if not n:
        return empty
    if len(raw) == 2 * DIM * n:
        ids, vids = np.array(pids.split(","), dtype=np.int64), np.array(vids.split(","), dtype=np.int64)
    else:  # a vector of another length (damage): only the whole ones
        rows = [r for r in store.db.execute(f"SELECT passage_id, vector, voice_id {where}") if len(r[1]) == 2 * DIM]
        if not rows:
            return empty
        ids, vids = np.array([r[0] for r in rows], dtype=np.int64), np.array([r[2] for r in rows], dtype=np.int64)
        raw = b"".join(r[1] for r in rows)
    voice_rows = store.db.execute("SELECT id, vector FROM voices").fetchall()
    if not voice_rows:
        return empty
    row_of = np.full(max(int(v) for v, _ in voice_rows) + 1, -1, dtype=np.int64)
    row_of[[int(v) for v, _ in voice_rows]] = np.arange(len(voice_rows))
    own = np.frombuffer(raw, dtype=np.float16).reshape(len(ids), DIM)
    voice_of = row_of[vids]
    voices = np.frombuffer(b"".join(b for _, b in voice_rows), dtype=np.float32).reshape(len(voice_rows), -1)
    return ids, own, voice_of, voices


def turns_of(store: Store, file_id: int) -> list[tuple[float, float, int, str | None, bool]]:
    """A recording's turns: (start, end, speaker id, speaker name, overlapped), in time order."""
    if not has_speakers(store):
        return []
    return [(float(a), float(b), int(s), n, bool(o)) for a, b, s, n, o in store.db.execute(
        "SELECT t.start, t.end, s.id, s.name, t.overlap FROM turns t JOIN voices v ON v.id=t.voice_id "
        "JOIN speakers s ON s.id=v.speaker_id WHERE v.file_id=? ORDER BY t.start", (file_id,))]


def speaker_label(speaker_id: int, name: str | None) -> str:
    """How a speaker is shown where a name is expected: its name, else "Speaker N"."""
    return name or f"Speaker {speaker_id}"


def window_speakers(store: Store, file_id: int) -> dict[tuple[float, float], str]:
    """(start, end) of each window of a recording that has a speaker -> its label (speaker_label)."""
    if not has_speakers(store):
        return {}
    return {(float(a), float(b)): speaker_label(int(s), n) for a, b, s, n in store.db.execute(
        "SELECT p.start, p.end, s.id, s.name FROM passages p JOIN passage_voices pv ON pv.passage_id=p.id "
        "JOIN voices v ON v.id=pv.voice_id JOIN speakers s ON s.id=v.speaker_id WHERE p.file_id=?", (file_id,))}
