"""ANN engines at archive scale: usearch int8 shards (memory-mapped) against hnswlib float32.

Both run through clasp's own graph code (graph.new_graph / save_graph / load_graph, the shipped
parameters, usearch's exact rescoring of its candidates), on synthetic clustered 512-d vectors:
clusters with a 24-dimensional spread each plus a little isotropic noise, so neighbours are
separated the way sentence embeddings are (not near-ties). The exact float vectors sit in a
float16 memory-mapped file standing in for SQLite's copy.

Per engine and size it reports build time, recall@10 against exact search, p50/p99 latency of
one query at a time (one thread), bytes per window on disk, and the RSS the loaded graph adds to
the process after the queries ran (each measured in a fresh child process).

  python benchmarks/ann_scale.py --sizes 100000,1000000,3000000 --hnsw-up-to 1000000 \
      --out benchmarks/results/ann-scale.json --work /tmp/ann-work
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

DIM = 512
INTRINSIC = 24
K = 10


def _status(field: str) -> int:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    return 0


def rss_bytes() -> tuple[int, int]:
    """(anonymous, file-backed) resident bytes: a mapped shard's pages are the second kind, which
    the kernel can drop and re-read; hnswlib's graph is all the first."""
    return _status("RssAnon"), _status("RssFile")


def _generator(n: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    clusters = max(1000, n // 1000)
    centres = rng.standard_normal((clusters, DIM)).astype(np.float32)
    bases = rng.standard_normal((clusters, INTRINSIC, DIM), dtype=np.float32) / np.sqrt(INTRINSIC)

    def sample(m: int, rs: np.random.Generator) -> np.ndarray:
        lab = rs.integers(0, clusters, m)
        z = rs.standard_normal((m, INTRINSIC), dtype=np.float32)
        out = centres[lab]
        for s in range(0, m, 4000):  # bases[lab] of a whole chunk would not fit in memory
            out[s : s + 4000] += np.einsum("mi,mid->md", z[s : s + 4000], bases[lab[s : s + 4000]])
        out += 0.1 * rs.standard_normal(out.shape).astype(np.float32)
        return out / np.linalg.norm(out, axis=1, keepdims=True)

    return sample


def make_data(work: Path, n: int, queries: int) -> tuple[Path, Path, Path]:
    """The n vectors (float16 memmap), the queries and the exact top-10, made once per size."""
    vec, qf, gtf = work / f"vectors-{n}.f16", work / f"queries-{n}.npy", work / f"truth-{n}.npy"
    if vec.exists() and qf.exists() and gtf.exists():
        return vec, qf, gtf
    sample = _generator(n)
    rs = np.random.default_rng(1)
    mm = np.lib.format.open_memmap(work / f".vectors-{n}.tmp.npy", mode="w+", dtype=np.float16, shape=(n, DIM))
    for s in range(0, n, 100_000):
        mm[s : s + 100_000] = sample(min(100_000, n - s), rs)
    mm.flush()
    q = sample(queries, np.random.default_rng(2))
    best_s = np.full((queries, K), -np.inf, dtype=np.float32)
    best_i = np.zeros((queries, K), dtype=np.int64)
    for s in range(0, n, 200_000):
        block = np.asarray(mm[s : s + 200_000], dtype=np.float32)
        sc = q @ block.T
        top = np.argpartition(-sc, K, axis=1)[:, :K]
        cand_s = np.concatenate([best_s, np.take_along_axis(sc, top, 1)], axis=1)
        cand_i = np.concatenate([best_i, top + s], axis=1)
        keep = np.argsort(-cand_s, axis=1)[:, :K]
        best_s, best_i = np.take_along_axis(cand_s, keep, 1), np.take_along_axis(cand_i, keep, 1)
    del mm
    os.replace(work / f".vectors-{n}.tmp.npy", vec)
    np.save(qf, q)
    np.save(gtf, best_i)
    return vec, qf, gtf


def _state(n: int):
    from clasp_cli.graph import DbState

    return DbState("ann-bench", n, n, n * (n + 1) // 2)  # ids 1..n, as SQLite numbers them


def _graph_params(connectivity: int | None, expansion_add: int | None) -> None:
    """A benchmark run may try other usearch build settings than the shipped ones."""
    from clasp_cli import ann_usearch

    if connectivity:
        ann_usearch.CONNECTIVITY = connectivity
    if expansion_add:
        ann_usearch.EXPANSION_ADD = expansion_add


def child_build(engine: str, vec: Path, out_dir: Path) -> dict:
    from clasp_cli.graph import new_graph, save_graph

    mm = np.load(vec, mmap_mode="r")
    n = len(mm)
    exact = lambda ids: np.asarray(mm[np.asarray(ids, dtype=np.int64) - 1], dtype=np.float32)  # noqa: E731
    out_dir.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    g = new_graph(DIM, n, engine, exact)
    for s in range(0, n, 10_000):  # the chunks store.rebuild_graph adds in
        ids = np.arange(s + 1, min(n, s + 10_000) + 1, dtype=np.int64)
        g.add_items(exact(ids), ids)
    built = time.perf_counter() - t0
    save_graph(out_dir, g, _state(n), np.arange(1, n + 1, dtype=np.int64))
    saved = time.perf_counter() - t0 - built
    disk = sum(p.stat().st_size for p in out_dir.iterdir() if p.suffix in (".hnsw", ".usearch"))
    return {"build_s": round(built, 1), "save_s": round(saved, 1), "disk_bytes": disk, "peak_rss_build": _peak_rss()}


def _peak_rss() -> int:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    return 0


def child_query(engine: str, vec: Path, qf: Path, gtf: Path, out_dir: Path) -> dict:
    from clasp_cli.graph import load_graph

    mm = np.load(vec, mmap_mode="r")
    n, offset = len(mm), mm.offset
    del mm
    fd = os.open(vec, os.O_RDONLY)

    def exact(ids) -> np.ndarray:  # read() like SQLite, so the vectors' pages count in no RSS
        size = DIM * 2
        return np.stack([np.frombuffer(os.pread(fd, size, offset + (int(i) - 1) * size), dtype=np.float16)
                         for i in ids]).astype(np.float32)

    q, gt = np.load(qf), np.load(gtf) + 1
    import hnswlib  # noqa: F401  (both libraries loaded before the baseline: only the graph is counted)

    from clasp_cli.ann_usearch import index_class

    index_class()  # usearch, after onnxruntime (never a bare import: see index_class)

    base_anon, base_file = rss_bytes()
    t0 = time.perf_counter()
    # A reader's open: stamp and checksums checked, usearch shards mapped (view), hnswlib loaded.
    loaded = load_graph(out_dir, DIM, _state(n), np.arange(1, n + 1, dtype=np.int64), exact, engine=engine, view=True)
    load_s = time.perf_counter() - t0
    assert not loaded.rebuilt, loaded.reasons
    g = loaded.graph
    g.set_ef(128)
    lat, recall = [], []
    for i in range(len(q)):
        t = time.perf_counter()
        labels, _ = g.knn_query(q[i : i + 1], k=K)
        lat.append(time.perf_counter() - t)
        recall.append(len(set(labels[0].tolist()) & set(gt[i].tolist())) / K)
    lat_ms = np.asarray(lat) * 1000
    sweep = {}
    if engine == "usearch":  # recall and time against the search breadth, for extrapolating to larger shards
        from clasp_cli import ann_usearch

        for ef in (128, 256, 512, 1024, 2048):
            ann_usearch.EXPANSION_BY_SIZE = ((None, ef),)
            r, t = [], []
            for i in range(min(200, len(q))):
                t0 = time.perf_counter()
                labels, _ = g.knn_query(q[i : i + 1], k=K)
                t.append(time.perf_counter() - t0)
                r.append(len(set(labels[0].tolist()) & set(gt[i].tolist())) / K)
            sweep[str(ef)] = {"recall_at_10": round(float(np.mean(r)), 4), "p50_ms": round(float(np.median(t)) * 1000, 3)}
    return {"load_s": round(load_s, 2), "recall_at_10": round(float(np.mean(recall)), 4), "ef_sweep": sweep,
            "p50_ms": round(float(np.percentile(lat_ms, 50)), 3), "p99_ms": round(float(np.percentile(lat_ms, 99)), 3),
            "rss_graph_bytes": sum(rss_bytes()) - base_anon - base_file, "rss_anon_bytes": rss_bytes()[0] - base_anon,
            "rss_file_bytes": rss_bytes()[1] - base_file}


def _run_child(*args: str, params: tuple[str, ...] = ()) -> dict:
    env = dict(os.environ)
    r = subprocess.run([sys.executable, __file__, *params, "--child", *args], capture_output=True, text=True, env=env)
    if r.returncode:
        raise SystemExit(f"child {args[:2]} failed:\n{r.stderr[-3000:]}")
    return json.loads(r.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="100000,1000000")
    ap.add_argument("--hnsw-up-to", type=int, default=1_000_000, help="largest size hnswlib is built at (time)")
    ap.add_argument("--queries", type=int, default=500)
    ap.add_argument("--work", default="/tmp/ann-work")
    ap.add_argument("--out", default="benchmarks/results/ann-scale.json")
    ap.add_argument("--connectivity", type=int, help="usearch links per node (default: the shipped value)")
    ap.add_argument("--expansion-add", type=int, help="usearch build breadth (default: the shipped value)")
    ap.add_argument("--child", nargs="+")
    a = ap.parse_args()
    _graph_params(a.connectivity, a.expansion_add)
    if a.child:
        kind, engine, *paths = a.child
        fn = child_build if kind == "build" else child_query
        print(json.dumps(fn(engine, *map(Path, paths))))
        return
    work = Path(a.work)
    work.mkdir(parents=True, exist_ok=True)
    out = Path(a.out)
    results = json.loads(out.read_text()) if out.exists() else {"rows": []}
    results.update({"machine": f"{platform.node()}: {os.cpu_count()} CPU cores, {platform.processor() or platform.machine()}",
                    "dim": DIM, "queries": a.queries, "k": K,
                    "command": "python " + " ".join(sys.argv)})
    from clasp_cli import ann_usearch

    built_with = {"connectivity": ann_usearch.CONNECTIVITY, "expansion_add": ann_usearch.EXPANSION_ADD}
    params = tuple(f"--{k.replace('_', '-')}={v}" for k, v in built_with.items())

    def key(r: dict) -> tuple:
        # Rows from before the settings were recorded were built at 16 / 128.
        return (r["engine"], r["n"]) + ((r.get("connectivity", 16), r.get("expansion_add", 128)) if r["engine"] == "usearch" else ())

    done = {key(r) for r in results["rows"]}
    for n in (int(s) for s in a.sizes.split(",")):
        vec, qf, gtf = make_data(work, n, a.queries)
        for engine in ("usearch", "hnsw"):
            row = {"engine": engine, "n": n, **(built_with if engine == "usearch" else {})}
            if key(row) in done or (engine == "hnsw" and n > a.hnsw_up_to):
                continue
            gdir = work / f"{engine}-{n}"
            row.update(_run_child("build", engine, str(vec), str(gdir), params=params))
            row.update(_run_child("query", engine, str(vec), str(qf), str(gtf), str(gdir), params=params))
            row["disk_bytes_per_window"] = round(row["disk_bytes"] / n, 1)
            row["rss_bytes_per_window"] = round(row["rss_graph_bytes"] / n, 1)
            print(json.dumps(row), flush=True)
            results["rows"].append(row)
            out.parent.mkdir(parents=True, exist_ok=True)
            out.write_text(json.dumps(results, indent=1))  # after every row: a stopped run resumes
            for p in gdir.iterdir():
                p.unlink()
            gdir.rmdir()


if __name__ == "__main__":
    main()
