"""Index and search performance, the numbers in the README's "Performance" table.

    .venv/bin/python benchmarks/index_search.py [--parts index,cold,warm,recall] [--model clasp-tiny]

- index:  indexing speed (x real time), CLASP vectors only (--no-transcribe), on >= 10 minutes of real speech: the example archive's
          recordings joined into 3-minute files (a fresh index; model load included in "cli").
- cold:   `clasp search` from a new process to printed JSON, median of 9 (after one warm-up);
          --code DIR (repeatable) times other checkouts in the same run, alternating, for a before/after.
- warm:   in-process query latency (text embedding + HNSW + SQLite) at 100,000 passages;
          passage vectors are synthetic (clustered), the query path is the real one.
- fused:  the same at 100,000 windows that also have transcripts (sentences of the built-in
          corpus) and transcript vectors (synthetic, clustered): the default hybrid query path,
          CLASP graph + transcript graph + FTS5 keyword list + fusion, warm, p50/p95; with e5 vectors
          (synthetic, 384-d) as well, timed with e5 off (USE alone, as before) and on, in the same run.
- recall: HNSW recall@10 against exact search at 1,000,000 synthetic vectors, with the
          store's own HNSW settings (M, ef_construction, ef).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
QUERIES = ["the weather this weekend", "how stars are born", "budget for the library", "tomato soup recipe",
           "how many hours of sleep", "directions to the office", "a bug that drains the battery", "penalty saved"]


def machine() -> str:
    cpu = platform.processor()
    try:
        cpu = next(l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name"))
    except Exception:
        pass
    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return f"{cpu}, {os.cpu_count()} cores, {mem:.0f} GiB RAM, Python {platform.python_version()}"


def clustered(n: int, dim: int, rng: np.random.Generator, centers: np.ndarray) -> np.ndarray:
    x = centers[rng.integers(0, len(centers), n)] + 0.5 * rng.standard_normal((n, dim), dtype=np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def make_long_files(work: Path, minutes: float) -> list[Path]:
    import soundfile as sf

    from clasp_cli.audio import load_audio

    clips = [load_audio(p) for p in sorted((ROOT / "examples/archive").rglob("*")) if p.is_file()]
    rng = np.random.default_rng(0)
    out, total, k = [], 0.0, 0
    while total < minutes * 60:
        parts, length = [], 0
        while length < 180 * 16000:
            c = clips[rng.integers(len(clips))]
            parts += [c, np.zeros(int(0.8 * 16000), np.float32)]
            length += c.size + int(0.8 * 16000)
        p = work / f"long-{k:02d}.flac"
        sf.write(p, np.concatenate(parts), 16000)
        out.append(p)
        total += length / 16000
        k += 1
    return out


def bench_index(work: Path, model: str) -> dict:
    src = work / "audio"
    src.mkdir(parents=True, exist_ok=True)
    files = sorted(src.glob("*.flac")) or make_long_files(src, 10.5)
    idx = work / "index"
    subprocess.run(["rm", "-rf", str(idx)], check=True)
    t = time.perf_counter()
    # CLASP vectors only, as the README's indexing row states; transcripts: benchmarks/transcribe_speed.py.
    r = subprocess.run([sys.executable, "-m", "clasp_cli", "index", str(src), "--index", str(idx), "--model", model,
                        "--no-transcribe", "--json"],
                       capture_output=True, text=True, check=True)
    wall = time.perf_counter() - t
    s = json.loads(r.stdout)
    audio = s["audio_hours"] * 3600
    return {"part": "index", "files": len(files), "audio_minutes": round(audio / 60, 1), "passages": s["passages"],
            "x_realtime_indexing": round(s["x_realtime"], 1), "x_realtime_cli": round(audio / wall, 1), "cli_seconds": round(wall, 1)}


def bench_cold(work: Path, code: list[Path] | None = None, runs: int = 9) -> list[dict]:
    """Median wall time of `clasp search --json` in a new process, per checkout in `code` (default: this one).

    Runs alternate between checkouts, so a machine that gets busier part-way affects each alike;
    one warm-up run each first (it also builds the text-encoder cache where a checkout has one).
    """
    idx = work / "index"
    code = code or [ROOT]
    times: dict[Path, list[float]] = {c: [] for c in code}
    cpu: dict[Path, list[float]] = {c: [] for c in code}

    def run(c: Path, q: str) -> tuple[float, float]:
        import resource

        env = {**os.environ, "PYTHONPATH": str(c)}
        r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
        t = time.perf_counter()
        subprocess.run([sys.executable, "-m", "clasp_cli", "search", q, "--index", str(idx), "--json"],
                       capture_output=True, check=True, env=env, cwd=c)
        wall = time.perf_counter() - t
        r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
        return wall, (r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime)

    for c in code:
        run(c, QUERIES[0])
    for i in range(runs):
        for c in code:
            wall, used = run(c, QUERIES[i % len(QUERIES)])
            times[c].append(wall)
            cpu[c].append(used)
    load = os.getloadavg()[0]
    # CPU seconds are what an idle machine's wall time approaches; wall time on a busy one is inflated by others.
    return [{"part": "cold", "code": str(c), "runs": runs, "median_s": round(float(np.median(t)), 3),
             "min_s": round(min(t), 3), "max_s": round(max(t), 3), "cpu_median_s": round(float(np.median(cpu[c])), 3),
             "load_avg_1m": round(load, 2)} for c, t in times.items()]


def bench_warm(work: Path, model_name: str, n: int = 100_000) -> dict:
    from clasp_cli.registry import load_model
    from clasp_cli.store import Store

    model = load_model(model_name)
    idx = work / f"warm-{n}"
    rng = np.random.default_rng(1)
    if not (idx / "index.sqlite").exists():
        centers = rng.standard_normal((2000, model.dim), dtype=np.float32)
        with Store.open(idx, write=True, model_id=model.id, dim=model.dim) as st:
            with st.transaction():
                st.set_meta("model_ref", model_name)
            per_file = 100
            for f in range(n // per_file):
                spans = [(i * 5.0, i * 5.0 + 5.0) for i in range(per_file)]
                st.replace_file(f"/synthetic/file-{f:05d}.wav", 1, 1.0, None, per_file * 5.0, spans, clustered(per_file, model.dim, rng, centers))
    return {"part": "warm", "passages": n, **warm_latency(idx, model)}


def warm_latency(idx: Path, model, e5: bool | None = None) -> dict:
    """p50/p95 of 200 queries on an index the process already holds open (after 20 warm-up queries)."""
    from clasp_cli.search import Searcher

    lat = []
    with Searcher(idx, model=model, e5=e5) as searcher:
        for i in range(220):
            t = time.perf_counter()
            res = searcher.search(QUERIES[i % len(QUERIES)] + f" {i}", top_k=10)
            lat.append(time.perf_counter() - t)
            assert len(res.results) == 10
    lat = np.array(lat[20:]) * 1000
    return {"p50_ms": round(float(np.percentile(lat, 50)), 2), "p95_ms": round(float(np.percentile(lat, 95)), 2)}


def bench_fused(work: Path, model_name: str, n: int = 100_000) -> dict:
    from clasp_cli.data.corpus import builtin_corpus
    from clasp_cli.registry import load_model
    from clasp_cli.store import Store

    from clasp_cli.store import E5, TEXT_SPACES

    model = load_model(model_name)
    idx = work / f"fused-e5-{n}"
    rng = np.random.default_rng(2)
    if not (idx / "index.sqlite").exists():
        # Built under a temp name and renamed when complete, so an interrupted build is never timed.
        tmp = idx.with_name(idx.name + ".partial")
        subprocess.run(["rm", "-rf", str(tmp)], check=True)
        texts = [s.text for s in builtin_corpus()]
        centers = rng.standard_normal((2000, model.dim), dtype=np.float32)
        with Store.open(tmp, write=True, model_id=model.id, dim=model.dim) as st:
            with st.transaction():
                st.set_meta("model_ref", model_name)
                st.set_meta("transcribe", "1")
            per_file = 100
            for f in range(n // per_file):
                spans = [(i * 5.0, i * 5.0 + 5.0) for i in range(per_file)]
                said = [texts[int(k)] for k in rng.integers(0, len(texts), per_file)]
                ids = st.replace_file(f"/synthetic/file-{f:05d}.wav", 1, 1.0, None, per_file * 5.0, spans,
                                      clustered(per_file, model.dim, rng, centers), texts=said,
                                      text_vectors=clustered(per_file, model.dim, rng, centers))
                e5_dim = TEXT_SPACES[E5].dim
                st.put_transcript_vectors(dict(zip(ids, clustered(per_file, e5_dim, rng, centers[:, :e5_dim]))), space=E5)
            st.transcript_graph()  # both transcript graphs built and written now, not at every open
            st.transcript_graph(E5)
        subprocess.run(["rm", "-rf", str(idx)], check=True)
        tmp.rename(idx)
    return {"part": "fused", "passages": n, "use_only": warm_latency(idx, model, e5=False),
            "with_e5": warm_latency(idx, model, e5=True)}


def bench_recall(n: int = 1_000_000, dim: int = 512, queries: int = 1000) -> dict:
    from clasp_cli.store import HNSW_EF_CONSTRUCTION, HNSW_EF_SEARCH, HNSW_M, new_graph

    rng = np.random.default_rng(2)
    centers = rng.standard_normal((5000, dim), dtype=np.float32)
    g = new_graph(dim, n)
    t = time.perf_counter()
    data = np.empty((n, dim), np.float32)
    for s in range(0, n, 100_000):
        data[s : s + 100_000] = clustered(min(100_000, n - s), dim, rng, centers)
        g.add_items(data[s : s + 100_000], np.arange(s, min(n, s + 100_000)))
    build = time.perf_counter() - t
    q = clustered(queries, dim, rng, centers)
    exact = np.empty((queries, 10), np.int64)
    for s in range(0, queries, 100):
        sims = q[s : s + 100] @ data.T
        exact[s : s + 100] = np.argsort(-sims, axis=1)[:, :10]
    g.set_ef(max(HNSW_EF_SEARCH, 20))  # what Store.search uses for k=10
    t = time.perf_counter()
    labels, _ = g.knn_query(q, k=10)
    per_query = (time.perf_counter() - t) / queries
    recall = np.mean([len(set(a) & set(b)) / 10 for a, b in zip(labels, exact)])
    return {"part": "recall", "vectors": n, "dim": dim, "M": HNSW_M, "ef_construction": HNSW_EF_CONSTRUCTION, "ef": HNSW_EF_SEARCH,
            "recall_at_10": round(float(recall), 4), "build_s": round(build), "query_ms": round(per_query * 1000, 3)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--parts", default="index,cold,warm,recall")
    ap.add_argument("--model", default="clasp-tiny")
    ap.add_argument("--work", type=Path, default=Path("/tmp/clasp-bench-index"))
    ap.add_argument("--recall-n", type=int, default=1_000_000)
    ap.add_argument("--code", type=Path, action="append", help="cold: a checkout to time (repeatable), e.g. a worktree of "
                    "the previous release for a before/after; default this one")
    ap.add_argument("--cold-runs", type=int, default=9)
    args = ap.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    print(f"machine: {machine()}", flush=True)
    for part in args.parts.split(","):
        if part == "index":
            r = bench_index(args.work, args.model)
        elif part == "cold":
            for r in bench_cold(args.work, args.code, args.cold_runs):
                print(json.dumps(r), flush=True)
            continue
        elif part == "warm":
            r = bench_warm(args.work, args.model)
        elif part == "fused":
            r = bench_fused(args.work, args.model)
        elif part == "recall":
            r = bench_recall(args.recall_n)
        else:
            raise SystemExit(f"unknown part {part!r}")
        print(json.dumps(r), flush=True)


if __name__ == "__main__":
    main()
