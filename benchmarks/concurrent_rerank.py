"""Two reranking searches at once, 100 times over: the keyword index must stay whole.

    .venv/bin/python benchmarks/concurrent_rerank.py --rounds 100 --out benchmarks/results/concurrent-rerank.json
    .venv/bin/python benchmarks/concurrent_rerank.py --kills 20 --out benchmarks/results/concurrent-rerank-kills.json

examples/archive is indexed without transcripts. Each round clears the stored transcripts
(through the delete trigger, as a writer would), then two processes, each with the shipped model
loaded once, run the same `--rerank` search at the same moment (a barrier), so both transcribe
the same windows and store them at once. After every round FTS5's integrity check must pass
and the full-text table must hold one row per transcript. At the end the BM25 keyword scores of
a set of queries must equal those of a copy whose full-text index was rebuilt from scratch.

With --kills N, each of N rounds instead starts two real `clasp search --rerank` processes on the
same windows and sends one of them SIGKILL at a random moment while the other finishes; the
same checks follow every round.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import platform
import shutil
import sqlite3
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
QUERIES = ["rain at the weekend", "the budget for the library", "how are stars born", "tomato soup recipe",
           "the football match", "how do I get to the station", "sleep and health", "a new product launch"]
WORDS = ["weather", "rain", "library", "budget", "stars", "soup", "football", "station", "sleep", "product"]


def searcher_process(index: str, rounds: int, rerank: int, barrier, results) -> None:
    from clasp_cli.search import Searcher

    with Searcher(index, device="cpu") as s:
        s.search("warm up", top_k=1)
        for r in range(rounds):
            barrier.wait()
            try:
                hits = s.search(QUERIES[r % len(QUERIES)], top_k=3, rerank=rerank).results
                results.put((r, "ok", len(hits)))
            except Exception as e:  # noqa: BLE001 - a failed search is the finding
                results.put((r, "error", f"{type(e).__name__}: {e}"))
            barrier.wait()  # the driver checks and clears between rounds


def fts_state(db_path: Path) -> dict:
    db = sqlite3.connect(db_path)
    try:
        try:
            db.execute("INSERT INTO transcripts_fts(transcripts_fts, rank) VALUES('integrity-check', 1)")
            ok = True
        except sqlite3.DatabaseError as e:
            ok = str(e)
        rows = db.execute("SELECT COUNT(*) FROM transcripts").fetchone()[0]
        fts_rows = db.execute("SELECT COUNT(*) FROM transcripts_fts_docsize").fetchone()[0]
        return {"integrity": ok, "transcripts": rows, "fts_rows": fts_rows}
    finally:
        db.close()


def clear_transcripts(db_path: Path) -> None:
    """Forget every stored transcript, as a writer would (the delete trigger keeps FTS in step)."""
    db = sqlite3.connect(db_path, timeout=30)
    db.execute("DELETE FROM transcripts")
    db.commit()
    db.close()


def equal_to_clean_rebuild(db_path: Path, work: Path) -> bool:
    """Whether the BM25 scores equal those of a copy whose full-text index is rebuilt from scratch."""
    clean = work / "clean.sqlite"
    shutil.copy(db_path, clean)
    db = sqlite3.connect(clean)
    db.execute("INSERT INTO transcripts_fts(transcripts_fts) VALUES('rebuild')")
    db.commit()
    db.close()
    return bm25(db_path) == bm25(clean)


def finish(report: dict, out: Path | None, work: Path) -> None:
    """Print and keep the report, clean up, and exit 0 only when every check held."""
    print(json.dumps(report, indent=1))
    if out:
        out.write_text(json.dumps(report, indent=1) + "\n")
    shutil.rmtree(work, ignore_errors=True)
    raise SystemExit(0 if not report["bad_rounds"] and not report["failed_searches"] and report["bm25_equal_to_clean_rebuild"] else 1)


def bm25(db_path: Path) -> dict:
    db = sqlite3.connect(db_path)
    try:
        return {w: [(i, round(s, 6)) for i, s in db.execute(
            "SELECT rowid, bm25(transcripts_fts) FROM transcripts_fts WHERE transcripts_fts MATCH ? ORDER BY rowid", (w,))]
            for w in WORDS}
    finally:
        db.close()


def kill_rounds(index: Path, kills: int, rerank: int, seed: int = 0) -> dict:
    import random
    import signal
    import subprocess
    import sys

    rng = random.Random(seed)
    db_path = index / "index.sqlite"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    bad, failed, killed_at, finished = [], [], [], 0
    for r in range(kills):
        clear_transcripts(db_path)
        cmd = [sys.executable, "-m", "clasp_cli", "search", QUERIES[r % len(QUERIES)], "--index", str(index),
               "--rerank", str(rerank), "--device", "cpu", "--json"]
        victim = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
        survivor = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env, text=True)
        delay = rng.uniform(3.0, 9.0)  # model load takes some seconds; the writes come after it
        try:
            victim.wait(timeout=delay)
            finished += 1  # it was done before its moment came: this round killed nothing
        except subprocess.TimeoutExpired:
            victim.send_signal(signal.SIGKILL)
            victim.wait()
            killed_at.append(round(delay, 2))
        if survivor.wait(timeout=300) != 0:
            failed.append({"round": r, "stderr": survivor.stderr.read()[-500:]})
        st = fts_state(db_path)
        if st["integrity"] is not True or st["fts_rows"] != st["transcripts"]:
            bad.append({"round": r, **st})
        print(f"kill round {r + 1}: {len(killed_at)} killed, {finished} finished first, {len(bad)} bad, {len(failed)} failed",
              flush=True)
    return {"rounds": kills, "killed_after_s": killed_at, "finished_before_the_kill": finished, "bad_rounds": bad,
            "failed_searches": failed}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--kills", type=int, default=0, help="kill rounds instead of barrier rounds")
    ap.add_argument("--rounds", type=int, default=100)
    ap.add_argument("--rerank", type=int, default=4)
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()
    from clasp_cli.indexer import index_paths

    work = Path(tempfile.mkdtemp(prefix="clasp-concurrent-"))
    index = work / "index"
    index_paths([ROOT / "examples" / "archive"], index, transcribe=False)
    db_path = index / "index.sqlite"
    if args.kills:
        t0 = time.perf_counter()
        report = kill_rounds(index, args.kills, args.rerank)
        report.update(bm25_equal_to_clean_rebuild=equal_to_clean_rebuild(db_path, work),
                      seconds=round(time.perf_counter() - t0, 1), machine=f"{platform.machine()} {os.cpu_count()} cores")
        finish(report, args.out, work)
    ctx = mp.get_context("spawn")
    barrier, results = ctx.Barrier(3), ctx.Queue()
    procs = [ctx.Process(target=searcher_process, args=(str(index), args.rounds, args.rerank, barrier, results)) for _ in range(2)]
    for p in procs:
        p.start()
    bad, errors, stored = [], [], []
    t0 = time.perf_counter()
    for r in range(args.rounds):
        clear_transcripts(db_path)
        barrier.wait()  # both searches start now
        barrier.wait()  # both are done
        answers = [results.get(timeout=300) for _ in range(2)]
        errors += [a for a in answers if a[1] != "ok"]
        st = fts_state(db_path)
        stored.append(st["transcripts"])
        if st["integrity"] is not True or st["fts_rows"] != st["transcripts"]:
            bad.append({"round": r, **st})
        if (r + 1) % 10 == 0:
            print(f"round {r + 1}: {len(bad)} bad, {len(errors)} failed searches, {time.perf_counter() - t0:.0f} s", flush=True)
    for p in procs:
        p.join()
    report = {"rounds": args.rounds, "rerank": args.rerank, "bad_rounds": bad, "failed_searches": errors,
              "transcripts_per_round": {"min": min(stored), "max": max(stored)},
              "bm25_equal_to_clean_rebuild": equal_to_clean_rebuild(db_path, work),
              "seconds": round(time.perf_counter() - t0, 1), "machine": f"{platform.machine()} {os.cpu_count()} cores"}
    finish(report, args.out, work)


if __name__ == "__main__":
    main()
