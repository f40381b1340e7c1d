"""Warm `/api/search` latency of `clasp serve` over HTTP (a timing, so a benchmark and not a test).

Indexes examples/archive (or uses --index), starts `clasp serve` on a free loopback port, warms
it with one query, then times --queries text queries one after another and writes p50/p90/p99.
Then, --rerank-rounds times, it starts a `--rerank 12` search (which transcribes) and times a
plain search sent while that one runs: the plain lane never waits behind the rerank.

    python benchmarks/serve_latency.py --out benchmarks/results/serve-latency.json
"""

from __future__ import annotations

import argparse
import json
import platform
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
QUERIES = [
    "rain at the weekend", "the budget for the library", "how are stars born", "tomato soup recipe",
    "the football match ended in a draw", "how do I get to the station", "sleep and health", "a new product launch",
    "das Wetter am Wochenende", "la recette de la soupe", "el partido de fútbol", "星星是怎么形成的",
]


def serve(index: Path) -> tuple[subprocess.Popen, str]:
    proc = subprocess.Popen([sys.executable, "-m", "clasp_cli", "serve", "--index", str(index), "--port", "0", "--device", "cpu"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    for line in proc.stderr:
        found = re.search(r"http://\S+/", line)
        if found:
            return proc, found.group(0)
    raise SystemExit("clasp serve exited before it was ready")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--index", type=Path, help="an existing index (default: examples/archive, indexed into a temp folder)")
    ap.add_argument("--queries", type=int, default=200)
    ap.add_argument("--rerank-rounds", type=int, default=5)
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks/results/serve-latency.json")
    a = ap.parse_args()
    import httpx

    with tempfile.TemporaryDirectory() as tmp:
        index = a.index
        if index is None:
            index = Path(tmp) / "idx"
            subprocess.run([sys.executable, "-m", "clasp_cli", "index", str(ROOT / "examples/archive"), "--index", str(index),
                            "--device", "cpu"], check=True, capture_output=True)
        proc, url = serve(index)
        try:
            with httpx.Client(timeout=60) as c:
                c.get(url + "api/search", params={"q": "warm up"}).raise_for_status()
                times = []
                for i in range(a.queries):
                    t = time.perf_counter()
                    c.get(url + "api/search", params={"q": f"{QUERIES[i % len(QUERIES)]} {i}", "top_k": 10}).raise_for_status()
                    times.append(time.perf_counter() - t)
                beside, overtaken = [], 0
                for i in range(a.rerank_rounds):
                    done = threading.Event()

                    def rerank(i: int = i) -> None:
                        httpx.get(url + "api/search", params={"q": f"tomato soup {i}", "rerank": 12},
                                  headers={"X-Clasp-Request": "1"}, timeout=600)
                        done.set()

                    th = threading.Thread(target=rerank)
                    th.start()
                    t = time.perf_counter()
                    c.get(url + "api/search", params={"q": f"rain at the weekend {i}"}).raise_for_status()
                    beside.append(time.perf_counter() - t)
                    overtaken += not done.is_set()
                    th.join()
        finally:
            proc.terminate()
            proc.wait()
    ms = sorted(t * 1000 for t in times)
    res = {"machine": f"{platform.machine()}, {__import__('os').cpu_count()} cores", "queries": a.queries,
           "p50_ms": round(statistics.median(ms), 1), "p90_ms": round(ms[int(0.9 * len(ms)) - 1], 1),
           "p99_ms": round(ms[int(0.99 * len(ms)) - 1], 1),
           "beside_rerank": {"rounds": a.rerank_rounds, "answered_before_the_rerank": overtaken,
                             "median_ms": round(statistics.median(beside) * 1000, 1) if beside else None,
                             "max_ms": round(max(beside) * 1000, 1) if beside else None}}
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text(json.dumps(res, indent=1) + "\n")
    print(json.dumps(res))


if __name__ == "__main__":
    main()
