"""Where usearch's recall is lost at 3M windows: the search breadth, or how many candidates are rescored?

Builds the shipped usearch graph (int8, connectivity 16, expansion_add 128, added in chunks of
10,000 as store.rebuild_graph does) on benchmarks/ann_scale.py's 3M vectors, then measures
recall@10 after rescoring the top `count` candidates exactly, for search breadths 512 and 1024.

  python benchmarks/ann_rescore_sweep.py --work /tmp/ann-work --out benchmarks/results/ann-rescore-sweep-3m.json

Needs `ann_scale.py --sizes 3000000` to have written the vectors, queries and truth first.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import numpy as np


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--work", default="/tmp/ann-work")
    ap.add_argument("--n", type=int, default=3_000_000)
    ap.add_argument("--queries", type=int, default=200)
    ap.add_argument("--out", default="benchmarks/results/ann-rescore-sweep-3m.json")
    a = ap.parse_args()
    from clasp_cli import ann_usearch as au

    Index = au.index_class()  # never a bare usearch import: it must come after onnxruntime

    work = Path(a.work)
    mm = np.load(work / f"vectors-{a.n}.f16", mmap_mode="r")
    q, gt = np.load(work / f"queries-{a.n}.npy"), np.load(work / f"truth-{a.n}.npy")
    path = work / f"sweep-{a.n}.usearch"
    res = {"n": a.n, "connectivity": au.CONNECTIVITY, "expansion_add": au.EXPANSION_ADD, "dtype": au.DTYPE, "rows": []}
    if not path.exists():
        idx = Index(ndim=mm.shape[1], metric="cos", dtype=au.DTYPE, connectivity=au.CONNECTIVITY,
                    expansion_add=au.EXPANSION_ADD, expansion_search=au.EXPANSION_SEARCH)
        t = time.time()
        for s in range(0, a.n, 10_000):
            idx.add(np.arange(s, min(a.n, s + 10_000)), np.asarray(mm[s : s + 10_000], dtype=np.float32), threads=os.cpu_count())
        res["build_s"] = round(time.time() - t, 1)
        idx.save(str(path))
    idx = Index.restore(str(path), view=True)
    for ef in (512, 1024):
        for count in (10, 40, 100, 200, 400):
            idx.expansion_search = max(ef, count)
            rec, lat = [], []
            for i in range(a.queries):
                t = time.perf_counter()
                m = idx.search(q[i], count, threads=1)
                keys = np.asarray(m.keys)
                top = keys[np.argsort(-(np.asarray(mm[keys], dtype=np.float32) @ q[i]))[:10]]
                lat.append(time.perf_counter() - t)
                rec.append(len(set(top.tolist()) & set(gt[i].tolist())) / 10)
            row = {"ef": ef, "rescored": count, "recall_at_10": round(float(np.mean(rec)), 4),
                   "p50_ms": round(float(np.median(lat)) * 1000, 2)}
            res["rows"].append(row)
            print(json.dumps(row), flush=True)
    Path(a.out).write_text(json.dumps(res, indent=1))


if __name__ == "__main__":
    main()
