"""Held-out retrieval of one model: English queries and each translated language, all candidates.

    .venv/bin/python benchmarks/evaluate.py [--model clasp-tiny] [--manifest data/synth/test.jsonl] [--nonsense 300]
"""

from __future__ import annotations

import argparse
import json


def main() -> None:
    from clasp_cli.registry import load_model
    from clasp_cli.train import evaluate_manifest

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="clasp-tiny")
    ap.add_argument("--manifest", default="data/synth/test.jsonl")
    ap.add_argument("--nonsense", type=int, default=300, help="nonsense queries for the --min-score check (0: none)")
    args = ap.parse_args()
    print(json.dumps(evaluate_manifest(load_model(args.model), args.manifest, nonsense=args.nonsense)))


if __name__ == "__main__":
    main()
