"""Transcripts that fill in, under kill -9: `clasp index --transcribe` on an index embedded
without transcripts, killed at random moments, with searches running beside it.

    .venv/bin/python benchmarks/fill_in_faults.py --kills 20 --copies 10 --out benchmarks/results/fill-in-faults.json

The archive is examples/archive copied COPIES times (so a fill-in lasts long enough to be hit
anywhere). Each round starts the real CLI, waits past the time an uninterrupted run takes to store
its first transcripts, plus a random time (so the kill lands while it stores them), runs one `clasp search` while the writer works (it must succeed),
then sends SIGKILL. After every kill the index must hold
no duplicate or orphan transcripts, pass FTS5's integrity check with one full-text row per
transcript, and have a text vector for exactly the non-empty transcripts; the number of
transcripts never goes down. A last run finishes the job: every window of an uninterrupted run
on a copy of the same index must have its transcript (texts can differ in a few words where a
resumed run batched a window with other lengths; that count is reported).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
CLASP = [sys.executable, "-m", "clasp_cli"]


def invariants(index: Path) -> dict:
    db = sqlite3.connect(index / "index.sqlite")
    try:
        q = lambda sql: db.execute(sql).fetchone()[0]  # noqa: E731
        try:
            db.execute("INSERT INTO transcripts_fts(transcripts_fts, rank) VALUES('integrity-check', 1)")
            fts_ok = True
        except sqlite3.DatabaseError:
            fts_ok = False
        return {
            "transcripts": q("SELECT COUNT(*) FROM transcripts"),
            "orphans": q("SELECT COUNT(*) FROM transcripts WHERE passage_id NOT IN (SELECT id FROM passages)"),
            "fts_ok": fts_ok,
            "fts_rows": q("SELECT COUNT(*) FROM transcripts_fts"),
            "vectors": q("SELECT COUNT(*) FROM transcript_vectors"),
            "spoken": q("SELECT COUNT(*) FROM transcripts WHERE trim(text) != ''"),
            "vectors_without_text": q("SELECT COUNT(*) FROM transcript_vectors WHERE passage_id NOT IN "
                                      "(SELECT passage_id FROM transcripts WHERE trim(text) != '')"),
        }
    finally:
        db.close()


def texts(d: Path) -> dict:
    db = sqlite3.connect(d / "index.sqlite")
    rows = db.execute("SELECT f.path, p.start, t.text FROM transcripts t JOIN passages p ON p.id=t.passage_id "
                      "JOIN files f ON f.id=p.file_id").fetchall()
    db.close()
    return {(p, s): t for p, s, t in rows}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--kills", type=int, default=20)
    ap.add_argument("--copies", type=int, default=10)
    ap.add_argument("--work", type=Path, default=Path("/tmp/clasp-fill-in-faults"))
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()
    rng = np.random.default_rng(args.seed)
    shutil.rmtree(args.work, ignore_errors=True)
    archive = args.work / "archive"
    for c in range(args.copies):
        shutil.copytree(ROOT / "examples" / "archive", archive / f"copy{c}")
    index, clean = args.work / "index", args.work / "clean"
    env = {**os.environ, "CLASP_INDEX": str(index)}
    subprocess.run([*CLASP, "index", str(archive), "--index", str(index), "--no-transcribe", "--device", "cpu"],
                   check=True, capture_output=True)
    shutil.copytree(index, clean)
    # An uninterrupted fill-in, watched: how long until its first recording's transcripts are
    # stored (start-up, models, the first batch read), and how long in all. Kills land after the
    # first commit a run could make, spread so that 20 rounds together do about 80% of the rest:
    # each one hits a run that is storing transcripts, and the last still finds windows left.
    t = time.perf_counter()
    proc = subprocess.Popen([*CLASP, "index", str(archive), "--index", str(clean), "--transcribe", "--device", "cpu"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    first_s = None
    while proc.poll() is None:
        try:
            if first_s is None and texts(clean):
                first_s = time.perf_counter() - t
        except sqlite3.Error:  # the writer holds it for a moment
            pass
        time.sleep(0.1)
    full_s = time.perf_counter() - t
    noop_s = first_s if first_s is not None else full_s / 2
    work_s = max(1.0, full_s - noop_s)
    total = len(texts(clean))
    rounds, last, searches_ok = [], 0, 0
    for k in range(args.kills):
        proc = subprocess.Popen([*CLASP, "index", str(archive), "--index", str(index), "--transcribe", "--device", "cpu"],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
        delay = noop_s + float(rng.uniform(0.0, 1.6 * work_s / args.kills))
        time.sleep(delay / 2)
        s = subprocess.run([*CLASP, "search", "how are stars born", "--index", str(index), "--json", "--device", "cpu"],
                           capture_output=True, text=True)
        searches_ok += s.returncode == 0 and bool(json.loads(s.stdout)["results"])
        time.sleep(delay / 2)
        finished = proc.poll() is not None
        if not finished:
            proc.send_signal(signal.SIGKILL)
        proc.wait()
        inv = invariants(index)
        inv.update(round=k, killed_after_s=round(delay, 2), finished_first=finished, search_rc=s.returncode,
                   windows_left_before=total - last)
        inv["ok"] = (inv["orphans"] == 0 and inv["fts_ok"] and inv["fts_rows"] == inv["transcripts"]
                     and inv["vectors"] == inv["spoken"] and inv["vectors_without_text"] == 0 and inv["transcripts"] >= last)
        last = inv["transcripts"]
        rounds.append(inv)
        print(json.dumps(inv), flush=True)
    subprocess.run([*CLASP, "index", str(archive), "--index", str(index), "--transcribe", "--device", "cpu"],
                   check=True, capture_output=True)

    final, reference = texts(index), texts(clean)
    result = {
        "kills": args.kills, "copies": args.copies, "uninterrupted_fill_in_s": round(full_s, 1),
        "first_commit_s": round(noop_s, 1),
        "kills_while_transcribing": sum(not r["finished_first"] and r["windows_left_before"] > 0 for r in rounds),
        "rounds_ok": sum(r["ok"] for r in rounds), "searches_ok": searches_ok,
        "final": invariants(index), "same_windows_transcribed": set(final) == set(reference),
        "texts_differing": sum(final.get(k) != v for k, v in reference.items()),
        "passages": len(reference), "rounds": rounds,
    }
    print(json.dumps({k: v for k, v in result.items() if k != "rounds"}), flush=True)
    if args.out:
        args.out.write_text(json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    main()
