"""Speakers (issue 41): how well clasp tells voices apart, on archives whose speakers are known.

    .venv/bin/python benchmarks/speakers.py tune --archive data/arch-tune-fillets-train
    .venv/bin/python benchmarks/speakers.py rules --archive data/arch-tune-fillets-train
    .venv/bin/python benchmarks/speakers.py eval --archive data/arch-tune-fillets-val

Archives are the tuning archives of benchmarks/e5_fusion.py (archive.json: programs made of
known lines; data/fillets/*.jsonl names each line's character). Each program is heard once
(Diarizer.hear), its sentences taken as the windows; then, for each setting:
- within a recording: the voices' purity (share of sentences in a voice that belong to its main
  character) and coverage (share of a character's sentences in its main voice), per program;
- across recordings: voices joined to speakers in program order as `clasp index` joins them,
  purity and coverage over all sentences.
`tune` reports a grid of both thresholds (choose on the training levels); `eval` one setting.

    .venv/bin/python benchmarks/speakers.py turns

    .venv/bin/python benchmarks/speakers.py voice --archive data/arch-tune-fillets-val \
        --index data/fusion-tune-fillets-val-clasp-base

`voice` copies the archive's index, finds its speakers the way `clasp index` does (timed), then
asks `Searcher.search(voice=clip)` with 5 lines of each main fish (the original recordings of
lines in these episodes): the share of the top 30 results, the clip's own line left out, that
are that fish's lines (a result is the line it overlaps most).

    .venv/bin/python benchmarks/speakers.py asterisk

`asterisk` indexes the Asterisk prompts of 5 languages (one voice artist each; --no-transcribe)
with speakers, and reports the speakers found and how pure each is, as indexed and after
`clasp speakers recluster`.

    .venv/bin/python benchmarks/speakers.py cost --folder data/arch-fillets-val/programs

`cost` times `clasp index FOLDER` (a new index, transcribed, a new process each run) with and
without speakers, alternating, 2 rounds: the best of each.

    .venv/bin/python benchmarks/speakers.py filter
    .venv/bin/python benchmarks/speakers.py join

`filter` copies the 100k-window fused index of benchmarks/index_search.py (`--parts fused`
builds it), gives its 1,000 files 50 speakers, and times warm queries without `--speaker`, with
a new speaker each query, and with the same speaker as the query before (200 each after 20
warm-up queries, alternating).

`voice-scan` times warm `--voice` queries on the same index, every window given a speaker vector.

`join` times storing one recording's voice when its speaker already has 20,000 voices (50 such
recordings, the median).

`turns` builds synthetic programs of four voices (`--voices flite`: flite's slt, awb, rms and
kal16 reading sentences of the built-in corpus; `fillets-train` or `fillets-val`: the lines of the
four Fish Fillets characters heard most in those levels, real voices). Each program (one per
`--seeds` entry) has 40 turns, each clip cut to its speech (a turn's true edges are where its
speech starts and ends), 0.2-0.8 s apart, and every sixth starting 1.2 s before the speech of the
one before ends, both heard at once. It reports the share of speaker changes where a turn of the
right voice, or any turn edge, lies within 0.5 s of the true start; the share of overlaps where
both right voices are heard at once for at least 0.3 s (found), and where some turn there is marked
as overlapped (marked); and the seconds heard as two voices at once, and how many of them truly
are. `--overlap-at` compares levels of DiarizeConfig.overlap_at, `--setting` any DiarizeConfig changes.
"""

from __future__ import annotations

import argparse
import json
import platform
import os
import time
from dataclasses import replace
from pathlib import Path
from typing import Sequence

import numpy as np


def labels_of(archive: Path) -> dict[str, str]:
    out = {}
    for man in Path("data/fillets").glob("*.jsonl"):
        for line in man.read_text().splitlines():
            r = json.loads(line)
            out[r["id"]] = r.get("voice") or ""
    return out


def purity_coverage(pred: list, true: list) -> tuple[float, float]:
    pairs = [(p, t) for p, t in zip(pred, true) if p is not None]
    if not pairs:
        return 0.0, 0.0
    from collections import Counter

    c = Counter(pairs)
    by_p: dict = {}
    by_t: dict = {}
    for (p, t), n in c.items():
        by_p[p] = max(by_p.get(p, 0), n)
        by_t[t] = max(by_t.get(t, 0), n)
    n = len(true)
    return sum(by_p.values()) / len(pairs), sum(by_t.values()) / n


def hear_all(archive: Path, limit: int | None, crop_s: float | None = None, encoder: str = "campplus"):
    from clasp_cli.audio import stream_audio
    from clasp_cli.speakers.diarize import DiarizeConfig, Diarizer

    programs = json.loads((archive / "archive.json").read_text())[:limit]
    labels = labels_of(archive)
    dz = Diarizer(DiarizeConfig(crop_s=crop_s) if crop_s else DiarizeConfig())
    if encoder == "ge2e":
        from ge2e import GE2EEncoder

        dz.encoder = GE2EEncoder()
    heard, truth = [], []
    t0 = time.perf_counter()
    audio_s = 0.0
    for p in programs:
        spans = [(s["start"], s["end"]) for s in p["sentences"]]
        h = dz.hear(stream_audio(archive / p["path"], 16_000, block_seconds=10.0), spans)
        heard.append(h)
        audio_s += h.seconds
        truth.append([labels.get(s["id"], "?") for s in p["sentences"]])
    took = time.perf_counter() - t0
    print(f"heard {len(programs)} programs, {audio_s / 60:.1f} min in {took:.1f} s ({audio_s / took:.0f}x real time)", flush=True)
    return dz, heard, truth, {"audio_s": audio_s, "hear_s": took}


def score(dz, heard, truth, same_voice: float, same_speaker: float, short: float | None = None,
          long_s: float | None = None, min_s: float | None = None, merge: float | None | str = "same") -> dict:
    """Diarize every program and join its voices across programs as save_diarization does.
    merge: the level at which drifted speakers become one ("same": same_speaker; None: never)."""
    from clasp_cli.speakers.cluster import unit
    from clasp_cli.speakers.index import LONG_VOICE_S, MIN_VOICE_S, SHORT_SAME_SPEAKER, join_level

    short = SHORT_SAME_SPEAKER if short is None else short
    long_s = LONG_VOICE_S if long_s is None else long_s
    min_s = MIN_VOICE_S if min_s is None else min_s
    merge = same_speaker if merge == "same" else merge
    alias: dict[int, int] = {}

    cfg = replace(dz.cfg, same_voice=same_voice)
    within_p, within_c, voices_n, chars_n = [], [], [], []
    speakers: list[np.ndarray] = []
    members: list[list[tuple[np.ndarray, float]]] = []
    gpred, gtrue = [], []
    for h, t in zip(heard, truth):
        d = dz.decide(h, cfg)
        p, c = purity_coverage(d.window_voice, t)
        within_p.append(p)
        within_c.append(c)
        voices_n.append(len(d.voices))
        chars_n.append(len(set(t)))
        ids = []
        for v in d.voices:
            sid = None
            live = [k for k, x in enumerate(speakers) if x is not None]
            if live:
                sims = np.stack([speakers[k] for k in live]) @ v.vector
                b = int(np.argmax(sims))
                if sims[b] >= join_level(v.seconds, same_speaker, short, long_s, min_s):
                    sid = live[b]
            if sid is None:
                speakers.append(v.vector)
                members.append([])
                sid = len(speakers) - 1
            members[sid].append((v.vector, v.seconds))
            speakers[sid] = unit(sum(m * max(s, 1e-3) for m, s in members[sid])).astype(np.float32)
            while merge is not None:  # as index.merge_drifted: the larger keeps its id
                others = [k for k, x in enumerate(speakers) if x is not None and k != sid]
                sims = np.array([speakers[k] @ speakers[sid] for k in others])
                if not others or sims.max() < merge:
                    break
                o = others[int(np.argmax(sims))]
                size = {k: sum(x for _, x in members[k]) for k in (sid, o)}
                keep, gone = (sid, o) if size[sid] >= size[o] else (o, sid)
                members[keep] += members[gone]
                members[gone], speakers[gone], alias[gone] = [], None, keep
                speakers[keep] = unit(sum(m * max(s, 1e-3) for m, s in members[keep])).astype(np.float32)
                sid = keep
            ids.append(sid)
        gpred += [ids[v] if v is not None else None for v in d.window_voice]
        gtrue += t

    def final(k):
        while k in alias:
            k = alias[k]
        return k

    gpred = [final(k) if k is not None else None for k in gpred]
    gp, gc = purity_coverage(gpred, gtrue)
    return {"same_voice": same_voice, "same_speaker": same_speaker, "short_same_speaker": short, "long_voice_s": long_s,
            "min_voice_s": min_s, "merge": merge,
            "within_purity": round(float(np.mean(within_p)), 4),
            "within_coverage": round(float(np.mean(within_c)), 4), "voices_per_program": round(float(np.mean(voices_n)), 2),
            "characters_per_program": round(float(np.mean(chars_n)), 2), "across_purity": round(gp, 4),
            "across_coverage": round(gc, 4), "speakers": sum(x is not None for x in speakers), "characters": len(set(gtrue)),
            "unassigned": round(sum(p is None for p in gpred) / max(len(gpred), 1), 4)}


def f1(r: dict, key: str) -> float:
    p, c = r[f"{key}_purity"], r[f"{key}_coverage"]
    return 2 * p * c / max(p + c, 1e-9)


VOICES = ("flite:slt", "flite:awb", "flite:rms", "flite:kal16")
# Real voices: the four Fish Fillets characters with the most lines in the training levels (to
# choose settings on) and in the validation levels (to measure); the reserved levels are never
# imported.
FILLETS_VOICES = {"fillets-train": ("fillets:small", "fillets:big", "fillets:cyan", "fillets:yellow"),
                  "fillets-val": ("fillets:small", "fillets:big", "fillets:linuxer1", "fillets:linuxer2")}


def speech_only(wave: np.ndarray, floor_db: float = -35.0) -> np.ndarray:
    """The clip from its first 10 ms frame within floor_db of its loudest to its last: a turn's
    true edges are where its speech starts and ends, not the silence a recording or a
    synthesiser leaves around it."""
    frames = wave[: wave.size // 160 * 160].reshape(-1, 160)
    rms = np.sqrt((frames.astype(np.float64) ** 2).mean(axis=1) + 1e-12)
    loud = np.flatnonzero(rms >= rms.max() * 10 ** (floor_db / 20))
    return wave[loud[0] * 160:(loud[-1] + 1) * 160] if len(loud) else wave


def synthetic_program(seed: int = 0, n_turns: int = 40, voices: str = "flite") -> tuple[np.ndarray, list[tuple[float, float, int]]]:
    """(16 kHz audio, true turns as (start, end, voice index)): see `turns` above."""
    rng = np.random.default_rng(seed)
    if voices == "flite":
        from clasp_cli.data.corpus import builtin_corpus
        from clasp_cli.data.voices import get_voice

        texts = [s.text for s in builtin_corpus() if 40 <= len(s.text) <= 140]
        engines = [get_voice(v) for v in VOICES]

        def line(v: int) -> np.ndarray:
            return engines[v].render(texts[int(rng.integers(len(texts)))])
    else:
        from clasp_cli.audio import load_audio

        split = voices.split("-")[1]
        rows = [json.loads(x) for x in Path(f"data/fillets/{split}.jsonl").read_text().splitlines()]
        clips = [sorted(r["audio"] for r in rows if r["voice"] == v and r["duration"] >= 1.5) for v in FILLETS_VOICES[voices]]

        def line(v: int) -> np.ndarray:  # each line at most once
            return load_audio(clips[v].pop(int(rng.integers(len(clips[v])))))
    pieces, truth, t, last = [], [], 0.5, -1
    for i in range(n_turns):
        v = int(rng.integers(4))
        while v == last:
            v = int(rng.integers(4))
        wave = speech_only(line(v))
        # Every sixth turn starts 1.2 s before the speech of the one before ends: both heard at once.
        start = truth[-1][1] - 1.2 if i % 6 == 5 and truth else t
        pieces.append((start, wave))
        truth.append((round(start, 3), round(start + wave.size / 16000, 3), v))
        t = max(t, start + wave.size / 16000) + float(rng.uniform(0.2, 0.8))
        last = v
    audio = np.zeros(int((t + 0.5) * 16000), dtype=np.float32)
    for start, wave in pieces:
        a = int(start * 16000)
        audio[a:a + wave.size] += 0.7 * wave
    return audio, truth


def turns_benchmark(voices: str = "flite", seeds: Sequence[int] = (0,), settings: Sequence[dict] = ({},)) -> dict:
    """Turns and overlaps of synthetic programs (one per seed), for each DiarizeConfig change in
    `settings` ({}: the shipped settings)."""
    from clasp_cli.speakers.diarize import Diarizer

    programs = [synthetic_program(seed=seed, voices=voices) for seed in seeds]
    dz = Diarizer()
    out = {"voices": list(VOICES if voices == "flite" else FILLETS_VOICES[voices]), "seeds": list(seeds),
           "program_s": round(sum(a.size for a, _ in programs) / 16000, 1), "by_setting": {}}
    shipped = dz.cfg
    for change in settings:
        dz.cfg = cfg = replace(shipped, **change)  # hear() reads it too
        name = ",".join(f"{k}={v}" for k, v in change.items()) or "shipped"
        n = {"changes": 0, "right_voice": 0, "any_edge": 0, "overlaps": 0, "found": 0, "marked": 0,
             "both_s": 0.0, "both_true_s": 0.0, "true_both_s": 0.0, "voices_found": [], "diarize_s": 0.0}
        for audio, truth in programs:
            t0 = time.perf_counter()
            d = dz.decide(dz.hear((audio[i:i + 160000] for i in range(0, audio.size, 160000)), []), cfg)
            n["diarize_s"] += time.perf_counter() - t0
            n["voices_found"].append(len(d.voices))
            # Each found voice stands for the true voice it overlaps most.
            overlap = np.zeros((len(d.voices), 4))
            for tr in d.turns:
                for a, b, v in truth:
                    overlap[tr.voice, v] += max(0.0, min(b, tr.end) - max(a, tr.start))
            stands_for = overlap.argmax(axis=1) if len(d.voices) else np.zeros(0, dtype=int)
            changes = [truth[i] for i in range(1, len(truth)) if truth[i][2] != truth[i - 1][2]]
            n["changes"] += len(changes)
            n["right_voice"] += sum(any(stands_for[tr.voice] == v and abs(tr.start - a) <= 0.5 for tr in d.turns)
                                    for a, _, v in changes)
            n["any_edge"] += sum(any(min(abs(tr.start - a), abs(tr.end - a)) <= 0.5 for tr in d.turns) for a, _, _ in changes)
            # On a 10 ms grid: which true voices, and which found voices (as the true voice each
            # stands for), speak at each moment.
            grid = np.arange(0, audio.size / 16000, 0.01)
            true_on = np.zeros((len(grid), 4), dtype=bool)
            for a, b, v in truth:
                true_on[(grid >= a) & (grid < b), v] = True
            found_on = np.zeros((len(grid), 4), dtype=bool)
            for tr in d.turns:
                found_on[(grid >= tr.start) & (grid < tr.end), stands_for[tr.voice]] = True
            found_two = found_on.sum(axis=1) >= 2
            n["both_s"] += found_two.sum() * 0.01
            n["both_true_s"] += (found_two & (true_on.sum(axis=1) >= 2)).sum() * 0.01
            n["true_both_s"] += (true_on.sum(axis=1) >= 2).sum() * 0.01
            for i in range(1, len(truth)):
                if truth[i][0] >= truth[i - 1][1]:
                    continue
                a, b, v1, v2 = truth[i][0], truth[i - 1][1], truth[i - 1][2], truth[i][2]
                inside = (grid >= a) & (grid < b)
                n["overlaps"] += 1
                # Found: both voices heard at once for at least 0.3 s of it.
                n["found"] += (found_on[inside, v1] & found_on[inside, v2]).sum() * 0.01 >= 0.3
                # Weaker: some turn there is marked as overlapped (two voices at once, whichever).
                n["marked"] += any(tr.overlap and tr.start < b - 0.2 and tr.end > a + 0.2 for tr in d.turns)
        out["by_setting"][name] = {
            "changes": n["changes"], "voices_found": n["voices_found"],
            "changes_within_0.5s_right_voice": round(n["right_voice"] / max(n["changes"], 1), 4),
            "changes_within_0.5s_any_edge": round(n["any_edge"] / max(n["changes"], 1), 4),
            "overlaps": n["overlaps"], "overlaps_found": round(n["found"] / max(n["overlaps"], 1), 4),
            "overlaps_marked": round(n["marked"] / max(n["overlaps"], 1), 4),
            "two_voices_found_s": round(n["both_s"], 1), "of_them_truly_two_s": round(n["both_true_s"], 1),
            "truly_two_s": round(n["true_both_s"], 1), "diarize_s": round(n["diarize_s"], 2)}
        print(name, out["by_setting"][name], flush=True)
    return out


def voice_benchmark(archive: Path, index: Path, weights: Sequence[float], fish=("fillets:small", "fillets:big"), clips: int = 5,
                    top: int = 30) -> dict:
    import shutil
    import tempfile

    from clasp_cli.indexer import index_paths
    from clasp_cli.registry import load_model
    from clasp_cli.search import Searcher

    programs = json.loads((archive / "archive.json").read_text())
    lines = {}
    for man in Path("data/fillets").glob("*.jsonl"):
        for line in man.read_text().splitlines():
            r = json.loads(line)
            lines[r["id"]] = r
    work = Path(tempfile.mkdtemp(prefix="spk-voice-")) / "index"
    shutil.copytree(index, work, ignore=shutil.ignore_patterns("*.lock"))
    model = load_model(device="cpu")
    t0 = time.perf_counter()
    summary = index_paths([archive / p["path"] for p in programs], work, model=model)
    took = time.perf_counter() - t0
    where = {}  # program path -> its sentences (start, end, id)
    for p in programs:
        where[str((archive / p["path"]).resolve())] = [(s["start"], s["end"], s["id"]) for s in p["sentences"]]
    in_archive = {s["id"] for p in programs for s in p["sentences"]}

    def line_of(path: str, start: float, end: float) -> str | None:
        best, got = 0.0, None
        for a, b, sid in where.get(str(Path(path).resolve()), []):
            ov = min(b, end) - max(a, start)
            if ov > best:
                best, got = ov, sid
        return got

    import clasp_cli.search as search_module

    out = {"archive": str(archive), "diarized_files": summary.diarized, "diarize_s": round(took, 1), "by_weight": {}}
    with Searcher(work, model=model) as searcher:
        for weight in weights:
            search_module.VOICE_OWN_WEIGHT = weight
            rows = []
            for f in fish:
                mine = sorted(i for i in in_archive if lines[i]["voice"] == f and lines[i]["duration"] >= 2.0)
                for sid in mine[:: max(1, len(mine) // clips)][:clips]:
                    res = searcher.search(None, voice=lines[sid]["audio"], top_k=top + 1).results
                    said = [line_of(r.path, r.start, r.end) for r in res]
                    said = [x for x in said if x != sid][:top]
                    share = sum(lines[x]["voice"] == f for x in said if x in lines) / max(len(said), 1)
                    rows.append({"fish": f, "clip": sid, "results": len(said), "share_of_fish": round(share, 4)})
            by_fish = {f: round(float(np.mean([r["share_of_fish"] for r in rows if r["fish"] == f])), 4) for f in fish}
            out["by_weight"][str(weight)] = {"by_fish": by_fish, "worst_clip": min(r["share_of_fish"] for r in rows),
                                             "rows": rows}
            print(weight, by_fish, [r["share_of_fish"] for r in rows], flush=True)
    shutil.rmtree(work.parent, ignore_errors=True)
    return out


def asterisk_benchmark(langs=("en", "fr", "es", "it", "ru"), keep: Path | None = None) -> dict:
    import shutil
    import tempfile

    from clasp_cli.indexer import index_paths
    from clasp_cli.registry import load_model
    from clasp_cli.speakers.index import recluster
    from clasp_cli.store import Store

    voice_of = {}
    for lang in langs:
        for line in Path(f"data/asterisk/{lang}.jsonl").read_text().splitlines():
            r = json.loads(line)
            voice_of[str(Path(r["audio"]).resolve())] = r["voice"]
    work = keep or Path(tempfile.mkdtemp(prefix="spk-asterisk-")) / "index"
    model = load_model(device="cpu")
    t0 = time.perf_counter()
    summary = index_paths(list(voice_of), work, model=model, transcribe=False)
    took = time.perf_counter() - t0

    def purity(st) -> dict:
        from collections import Counter

        per: dict[int, Counter] = {}
        for path, sid, secs in st.db.execute("SELECT f.path, v.speaker_id, v.seconds FROM voices v JOIN files f ON f.id=v.file_id"):
            per.setdefault(int(sid), Counter())[voice_of.get(str(Path(path).resolve()), "?")] += secs
        rows = sorted(({"speaker": s, "seconds": round(sum(c.values()), 1), "main": c.most_common(1)[0][0],
                        "purity": round(c.most_common(1)[0][1] / sum(c.values()), 4)} for s, c in per.items()),
                      key=lambda r: -r["seconds"])
        big = [r for r in rows if r["seconds"] >= 60]
        return {"speakers": len(rows), "speakers_with_a_minute": len(big), "min_purity": min(r["purity"] for r in rows),
                "min_purity_with_a_minute": min((r["purity"] for r in big), default=None), "rows": rows[:12]}

    with Store.open(work) as st:
        indexed = purity(st)
    with Store.open(work, write=True) as st:
        t1 = time.perf_counter()
        rc = recluster(st)
        rc_s = time.perf_counter() - t1
        after = purity(st)
    if keep is None:
        shutil.rmtree(work.parent, ignore_errors=True)
    return {"files": len(voice_of), "audio_h": round(summary.audio_seconds / 3600, 3), "index_s": round(took, 1),
            "diarized": summary.diarized, "as_indexed": indexed, "recluster": rc, "recluster_s": round(rc_s, 2),
            "after_recluster": after}


def cost_benchmark(folder: Path, rounds: int = 2) -> dict:
    import shutil
    import subprocess
    import sys
    import tempfile

    work = Path(tempfile.mkdtemp(prefix="spk-cost-"))
    runs: dict[str, list[dict]] = {"with speakers": [], "without speakers": []}
    try:
        for _ in range(rounds):
            for name, flag in (("without speakers", "--no-speakers"), ("with speakers", "--speakers")):
                idx = work / "idx"
                shutil.rmtree(idx, ignore_errors=True)
                t = time.perf_counter()
                r = subprocess.run([sys.executable, "-m", "clasp_cli", "index", str(folder), "--index", str(idx), "--device", "cpu",
                                    "--json", flag], capture_output=True, text=True)
                wall = time.perf_counter() - t
                if r.returncode != 0:
                    raise SystemExit(r.stderr)
                rep = json.loads(r.stdout)
                runs[name].append({"wall_s": round(wall, 2), "audio_h": rep["audio_hours"], "diarized": rep["speakers_found_in"]})
                print(name, runs[name][-1], flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    best = {k: min(x["wall_s"] for x in v) for k, v in runs.items()}
    return {"folder": str(folder), "best_wall_s": best, "extra": round(best["with speakers"] / best["without speakers"] - 1, 4),
            "runs": runs}


def index_with_speakers(source: Path, prefix: str, speakers: int, model, own_vectors: bool) -> tuple[Path, list[int]]:
    """A copy of the index at `source` whose files are given `speakers` speakers in turn (one voice
    each, random unit vectors), and with `own_vectors` a speaker vector for every window too:
    (the copy, the speakers' ids)."""
    import shutil
    import tempfile

    from clasp_cli.store import Store

    work = Path(tempfile.mkdtemp(prefix=prefix)) / "index"
    shutil.copytree(source, work, ignore=shutil.ignore_patterns("*.lock"))
    rng = np.random.default_rng(0)

    def unit(n: int) -> np.ndarray:
        v = rng.standard_normal((n, 192)).astype(np.float32)
        return v / np.linalg.norm(v, axis=1, keepdims=True)

    with Store.open(work, write=True, model_id=model.id, dim=model.dim) as st, st.transaction() as db:
        ids = [db.execute("INSERT INTO speakers(created_at, vector) VALUES(0, ?)", (unit(1)[0].tobytes(),)).lastrowid
               for _ in range(speakers)]
        for fid, in db.execute("SELECT id FROM files").fetchall():
            vid = db.execute("INSERT INTO voices(file_id, speaker_id, seconds, vector) VALUES(?,?,?,?)",
                             (fid, ids[fid % speakers], 500.0, unit(1)[0].tobytes())).lastrowid
            if own_vectors:
                pids = [r[0] for r in db.execute("SELECT id FROM passages WHERE file_id=?", (fid,))]
                own = unit(len(pids)).astype(np.float16)
                db.executemany("INSERT INTO passage_voices(passage_id, voice_id, vector) VALUES(?,?,?)",
                               [(p, vid, own[i].tobytes()) for i, p in enumerate(pids)])
            else:
                db.execute("INSERT INTO passage_voices(passage_id, voice_id) SELECT id, ? FROM passages WHERE file_id=?", (vid, fid))
            db.execute("INSERT INTO diarized(file_id, at) VALUES(?, 0)", (fid,))
    return work, ids


def filter_benchmark(source: Path = Path("/tmp/clasp-bench-index/fused-e5-100000"), speakers: int = 50) -> dict:
    import shutil

    from clasp_cli.registry import load_model
    from clasp_cli.search import Searcher

    model = load_model("clasp-base")
    work, ids = index_with_speakers(source, "spk-filter-", speakers, model, own_vectors=False)
    queries = ["the budget for next year", "rain at the weekend", "who won the match", "how are stars born",
               "hur föds stjärnor", "rozpočet na příští rok"]
    # A new speaker each query (its windows read from SQLite), and the same speaker again (the
    # Store's memo of the last few scopes, as when a speaker filter stays set in `clasp serve`).
    lat: dict[str, list[float]] = {"without": [], "with --speaker": [], "with --speaker, the same again": []}
    with Searcher(work, model=model) as s:
        for i in range(220):
            for name, who in (("without", None), ("with --speaker", str(ids[i % speakers])),
                              ("with --speaker, the same again", str(ids[i % speakers]))):
                t = time.perf_counter()
                s.search(queries[i % len(queries)] + f" {i}", top_k=10, speaker=who)
                if i >= 20:
                    lat[name].append((time.perf_counter() - t) * 1000)
    shutil.rmtree(work.parent, ignore_errors=True)
    return {"passages": 100_000, "speakers": speakers,
            **{name: {"p50_ms": round(float(np.percentile(v, 50)), 2), "p95_ms": round(float(np.percentile(v, 95)), 2)}
               for name, v in lat.items()}}


def voice_scan_benchmark(source: Path = Path("/tmp/clasp-bench-index/fused-e5-100000"), speakers: int = 50,
                         queries: int = 30) -> dict:
    """Warm `clasp search --voice CLIP` on the 100k-window index of `filter`, every window given a
    speaker vector (random, unit): the p50 of a query, the clip's CAM++ vector included."""
    import shutil

    from clasp_cli.registry import load_model
    from clasp_cli.search import Searcher

    model = load_model("clasp-base")
    work, _ = index_with_speakers(source, "spk-voice-", speakers, model, own_vectors=True)
    rows = [json.loads(x) for x in Path("data/fillets/val.jsonl").read_text().splitlines()]
    clips = [r["audio"] for r in rows if r["duration"] >= 2.0][:6]
    took = []
    with Searcher(work, model=model) as s:
        for i in range(queries + 3):
            t = time.perf_counter()
            s.search(None, voice=clips[i % len(clips)], top_k=10)
            if i >= 3:
                took.append((time.perf_counter() - t) * 1000)
    shutil.rmtree(work.parent, ignore_errors=True)
    return {"passages": 100_000, "queries": queries, "p50_ms": round(float(np.percentile(took, 50)), 1),
            "p95_ms": round(float(np.percentile(took, 95)), 1)}


def join_benchmark(voices: int = 20_000, joins: int = 50) -> dict:
    """Seconds to store one recording's voice when its speaker already has `voices` voices."""
    import tempfile

    from clasp_cli.speakers.diarize import Diarization, Voice
    from clasp_cli.speakers.index import save_diarization
    from clasp_cli.store import Store

    rng = np.random.default_rng(0)
    base = rng.standard_normal(192).astype(np.float32)

    def voice() -> np.ndarray:
        v = base + 0.3 * rng.standard_normal(192).astype(np.float32)
        return v / np.linalg.norm(v)

    with tempfile.TemporaryDirectory() as tmp, Store.open(Path(tmp) / "i", write=True, model_id="m", dim=8) as st:
        unit8 = np.ones((1, 8), np.float32) / np.sqrt(8)
        st.replace_file("/r/first.wav", 1, 1.0, "h", 5.0, [(0.0, 5.0)], unit8)
        fid, pid = st.db.execute("SELECT f.id, p.id FROM files f JOIN passages p ON p.file_id=f.id").fetchone()
        sid = save_diarization(st, fid, [pid], Diarization([Voice(voice(), 5.0)], [], [0], np.zeros((1, 192), np.float32)))[0]
        with st.transaction() as db:
            db.executemany("INSERT INTO voices(file_id, speaker_id, seconds, vector) VALUES(?,?,?,?)",
                           [(fid, sid, 5.0, voice().tobytes()) for _ in range(voices)])
            if "weight" in {r[1] for r in db.execute("PRAGMA table_info(speakers)")}:
                db.execute("UPDATE speakers SET weight=NULL")  # voices added behind its back: the first join recomputes
        took = []
        for i in range(joins):
            st.replace_file(f"/r/{i}.wav", 1, 1.0, f"h{i}", 5.0, [(0.0, 5.0)], unit8)
            fid, pid = st.db.execute("SELECT f.id, p.id FROM files f JOIN passages p ON p.file_id=f.id WHERE f.path=?",
                                     (f"/r/{i}.wav",)).fetchone()
            d = Diarization([Voice(voice(), 5.0)], [], [0], np.zeros((1, 192), np.float32))
            t = time.perf_counter()
            save_diarization(st, fid, [pid], d)
            took.append(time.perf_counter() - t)
    return {"voices_of_the_speaker": voices, "joins": joins, "p50_ms": round(float(np.median(took)) * 1000, 2),
            "first_ms": round(took[0] * 1000, 2)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("what", choices=["tune", "rules", "eval", "turns", "voice", "asterisk", "cost", "filter", "join", "voice-scan"])
    ap.add_argument("--folder", type=Path, default=Path("data/arch-fillets-val/programs"), help="cost: recordings to index")
    ap.add_argument("--index", type=Path, default=None, help="voice: the archive's index (copied, never changed)")
    ap.add_argument("--own-weights", type=lambda v: [float(x) for x in v.split(",")], default=[0.5],
                    help="voice: weights of a window's own vector against its voice's (search.VOICE_OWN_WEIGHT) to compare")
    ap.add_argument("--voices", choices=["flite", "fillets-train", "fillets-val"], default="flite",
                    help="turns: flite's four English voices, or four Fish Fillets characters' lines of the training or validation levels")
    ap.add_argument("--seeds", type=lambda v: [int(x) for x in v.split(",")], default=[0], help="turns: one program per seed")
    ap.add_argument("--overlap-at", type=lambda v: [float(x) for x in v.split(",")], default=None,
                    help="turns: DiarizeConfig.overlap_at levels to compare (default: the shipped one)")
    ap.add_argument("--setting", type=lambda v: {k: float(x) for k, x in (kv.split("=") for kv in v.split(","))},
                    action="append", default=[], help="turns: DiarizeConfig changes to compare, KEY=V[,KEY=V] (repeat)")
    ap.add_argument("--keep", type=Path, default=None, help="asterisk: build the index here and keep it")
    ap.add_argument("--archive", type=Path, default=None)
    ap.add_argument("--limit", type=int, default=None)
    ap.add_argument("--same-voice", type=float, default=None)
    ap.add_argument("--crop", type=float, default=None, help="seconds CAM++ hears per local speaker and chunk")
    ap.add_argument("--encoder", choices=["campplus", "ge2e"], default="campplus",
                    help="tune/eval: the speaker encoder (ge2e: benchmarks/ge2e.py, measurement only)")
    ap.add_argument("--same-speaker", type=float, default=None)
    ap.add_argument("--short", type=float, default=None, help="eval: the level a voice under 10 s joins a speaker at")
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()
    from clasp_cli.speakers.diarize import DiarizeConfig
    from clasp_cli.speakers.index import SAME_SPEAKER

    if args.what in ("filter", "join", "voice-scan"):
        got = filter_benchmark() if args.what == "filter" else join_benchmark() if args.what == "join" else voice_scan_benchmark()
        print(json.dumps(got, indent=1))
        if args.out:
            args.out.write_text(json.dumps({**got, "machine": f"{platform.machine()} {os.cpu_count()} cores"}, indent=1) + "\n")
        return
    if args.what in ("turns", "voice", "asterisk", "cost"):
        got = turns_benchmark(args.voices, args.seeds, [*([{"overlap_at": x} for x in args.overlap_at or []]),
                                                        *args.setting] or [{}]) if args.what == "turns" else voice_benchmark(args.archive, args.index, args.own_weights) \
            if args.what == "voice" else asterisk_benchmark(keep=args.keep) if args.what == "asterisk" else cost_benchmark(args.folder)
        print(json.dumps(got, indent=1))
        if args.out:
            args.out.write_text(json.dumps({**got, "machine": f"{platform.machine()} {os.cpu_count()} cores"}, indent=1) + "\n")
        return
    dz, heard, truth, cost = hear_all(args.archive, args.limit, args.crop, args.encoder)
    cost["encoder"] = args.encoder
    rows = []
    if args.what == "rules":
        # The rules around the chosen levels: a voice too short to start a speaker, the merging
        # of drifted speakers, and the same-voice level within a recording.
        for sv in (0.3, 0.35, 0.4, 0.45, 0.5):
            for min_s in (0.0, 0.5, 1.0, 2.0):
                for merge in (None, "same", 0.8):
                    rows.append(score(dz, heard, truth, sv, SAME_SPEAKER, min_s=min_s, merge=merge))
                    r = rows[-1]
                    print(sv, min_s, r["merge"], "within F", round(f1(r, "within"), 4), "across F", round(f1(r, "across"), 4),
                          "speakers", r["speakers"], flush=True)
    elif args.what == "tune" and args.encoder == "ge2e":
        # GE2E's vectors are non-negative (a ReLU before the norm): its cosines sit higher.
        for sv in (0.5, 0.6, 0.7, 0.75, 0.8, 0.85):
            for ss in (0.75, 0.8, 0.85, 0.9, 0.95):
                for short in (0.65, 0.7, 0.75, 0.8, ss):
                    rows.append(score(dz, heard, truth, sv, ss, min(short, ss), 10.0))
    elif args.what == "tune":
        for sv in (0.25, 0.3, 0.35):
            for ss in (0.6, 0.65, 0.7, 0.75):
                for short in (0.4, 0.45, 0.5, 0.55, 0.6, ss):
                    for long_s in (5.0, 10.0, 20.0):
                        rows.append(score(dz, heard, truth, sv, ss, short, long_s))
        best_w = max(rows, key=lambda r: (f1(r, "within"), -abs(r["same_voice"] - 0.45)))
        best_a = max(rows, key=lambda r: f1(r, "across"))
        print("best within:", best_w)
        print("best across:", best_a)
        for r in rows:
            print(r["same_voice"], r["same_speaker"], r["short_same_speaker"], r["long_voice_s"], "within F", round(f1(r, "within"), 4), "across F", round(f1(r, "across"), 4),
                  "speakers", r["speakers"])
    else:
        rows.append(score(dz, heard, truth, args.same_voice or DiarizeConfig().same_voice, args.same_speaker or SAME_SPEAKER,
                          args.short))
        print(json.dumps(rows[-1], indent=1))
    if args.out:
        args.out.write_text(json.dumps({"archive": str(args.archive), "cost": cost, "rows": rows,
                                        "machine": f"{platform.machine()} {os.cpu_count()} cores"}, indent=1) + "\n")


if __name__ == "__main__":
    main()
