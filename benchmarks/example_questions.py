"""The example questions over examples/archive, per language: how many find their recording
first, with the default search and with USE alone (issue 39).

    .venv/bin/python benchmarks/example_questions.py --out benchmarks/results/example-questions.json

examples/questions.json asks 12 questions in en, de, fr, es and it; examples/questions-more-
languages.json asks the same 12 in sv, da, fi, cs, hu, el, ro, hi and uk, languages USE does not
cover (translated for clasp, never tuned on). The archive is indexed once the way `clasp index`
does by default; "USE alone" is the same index searched with e5 switched off (Searcher(e5=False)).
tests/test_e5.py asserts at least 11 of 12 per language for the default.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    from clasp_cli.indexer import index_paths
    from clasp_cli.registry import load_model
    from clasp_cli.search import Searcher

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()
    model = load_model(device="cpu")
    res: dict[str, dict[str, int]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        idx = Path(tmp) / "index"
        index_paths([ROOT / "examples" / "archive"], idx, model=model, transcribe=None)
        for name in ("questions.json", "questions-more-languages.json"):
            qs = json.loads((ROOT / "examples" / name).read_text(encoding="utf-8"))
            for variant, e5 in (("default", None), ("USE alone", False)):
                with Searcher(idx, model=model, e5=e5) as s:
                    for q in qs:
                        hits = s.search(q["query"], top_k=1).results
                        right = bool(hits) and hits[0].path.endswith(q["answer"])
                        res.setdefault(variant, {}).setdefault(q["lang"], 0)
                        res[variant][q["lang"]] += right
    for variant, by in res.items():
        print(f"{variant:10s}", " ".join(f"{k}:{v}" for k, v in by.items()))
    if args.out:
        args.out.write_text(json.dumps({"of": 12, "first": res}, indent=1) + "\n")


if __name__ == "__main__":
    main()
