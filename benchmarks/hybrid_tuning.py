"""How much a keyword hit should count in `--mode hybrid`: chosen on archives built from the
VALIDATION splits, never on test.

    .venv/bin/python benchmarks/hybrid_tuning.py --programs 40 --out benchmarks/results/hybrid-tuning-clasp-base.json

Each validation archive (the English one, and the multilingual one whose English queries meet
foreign-language transcripts) is indexed with the default model and `--transcribe` through the
real indexer, then every query is searched through the real Searcher in vector mode and in
hybrid mode for each coverage power p: a keyword hit counts (share of the query's words in its
transcript) ** p in the reciprocal-rank fusion; p = 0 is plain fusion.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
from pathlib import Path


def main() -> None:
    import clasp_cli.search as search_mod
    from clasp_cli.archive import VALIDATION_MANIFESTS, hit_rank, queries, scores_by_lang, tuning_archive
    from clasp_cli.indexer import index_paths
    from clasp_cli.registry import load_model

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default=None, help="default: the default model")
    ap.add_argument("--manifest", type=Path, action="append", default=None)
    ap.add_argument("--programs", type=int, default=40, help="programs per manifest")
    ap.add_argument("--powers", default="0,0.5,1,2,4")
    ap.add_argument("--top-k", type=int, default=10)
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()
    manifests = args.manifest or list(VALIDATION_MANIFESTS)
    model = load_model(args.model, device="cpu")
    powers = [float(x) for x in args.powers.split(",")]

    rows: dict[str, dict] = {}
    for man in manifests:
        work, programs = tuning_archive(man, args.programs)  # as rerank_tuning picks them
        qs = queries(programs, work)
        index = Path("data") / f"hybrid-tune-{man.parent.name}-{man.stem}-{model.config.name}"
        index_paths([work / p.path for p in programs], index, model=model, transcribe=True)  # resumes where it stopped
        print(f"{man}: {len(programs)} programs, {len(qs)} queries", flush=True)
        variants = [("vector", None)] + [(f"hybrid p={p:g}", p) for p in powers]
        with search_mod.Searcher(index, model=model) as s:
            for name, power in variants:
                if power is not None:
                    search_mod.HYBRID_COVERAGE_POWER = power
                ranks = [hit_rank(q, [(r.path, r.start, r.end) for r in s.search(
                    q.text, top_k=args.top_k, mode="vector" if power is None else "hybrid").results]) for q in qs]
                rows.setdefault(name, {})[man.parent.name] = scores_by_lang(ranks, qs)
    for name, by in rows.items():
        print(f"{name:14s}", "  ".join(f"{a}: " + " ".join(f"{k}:{v['hits@1']:.3f}" for k, v in sc.items()) for a, sc in by.items()),
              flush=True)
    if args.out:
        args.out.write_text(json.dumps({"model": model.config.name, "manifests": [str(m) for m in manifests],
                                        "programs_per_manifest": args.programs,
                                        "machine": f"{platform.machine()} {os.cpu_count()} cores", "rows": rows}, indent=1) + "\n")


if __name__ == "__main__":
    main()
