"""The next CLASP model's ablation: each training change alone and combined, chosen on validation.

Every variant trains on the same manifests with the same budget and seed (a finished variant is
skipped on a rerun; a stopped one resumes from its checkpoint). Each is then scored on the
validation sets only, the vector alone (no ASR): real recorded speech (Asterisk it and ru phone
prompts, never trained on), the Kokoro validation splits (training voices, unseen sentences) and
the synthetic validation split. `--test MODEL` scores one chosen model on the test sets instead:
Asterisk en/fr/es, the synthetic test splits and the Kokoro held-out voices.

    .venv/bin/python benchmarks/model_v3.py --out runs/v3 --results benchmarks/results/model-v3-val.json
    .venv/bin/python benchmarks/model_v3.py --test runs/v3/bank --results benchmarks/results/model-v3-test.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

TRAIN = ["data/kokoro-en/train.jsonl", "data/kokoro-ml/train.jsonl", "data/synth/train.jsonl", "data/synth-ml/train.jsonl"]
VAL = ["data/kokoro-en/val.jsonl", "data/kokoro-ml/val.jsonl", "data/synth/val.jsonl"]
VAL_SETS = {"asterisk-it": "data/asterisk/it.jsonl", "asterisk-ru": "data/asterisk/ru.jsonl",
            "kokoro-en-val": "data/kokoro-en/val.jsonl", "kokoro-ml-val": "data/kokoro-ml/val.jsonl",
            "synth-val": "data/synth/val.jsonl"}
TEST_SETS = {"asterisk-en": "data/asterisk/en.jsonl", "asterisk-fr": "data/asterisk/fr.jsonl",
             "asterisk-es": "data/asterisk/es.jsonl", "synth-test": "data/synth/test.jsonl",
             "synth-test-ml": "data/synth-ml/test.jsonl", "kokoro-en-test": "data/kokoro-en/test.jsonl",
             "kokoro-ml-test": "data/kokoro-ml/test.jsonl"}
# Fine-tuning the shipped head: the shipped model's schedule, shorter, at a lower rate.
COMMON = dict(init="clasp-base", epochs=6, patience=3, batch_size=256, lr=3e-4, augment=True, seed=0, calibrate=False)
VARIANTS = {
    "shipped": None,  # clasp-base as it is: the row every change is measured against
    "ft": {},
    "ft-bank": dict(negatives="bank"),
    "ft-cos": dict(cosine_weight=0.5),
    "ft-multi": dict(negatives="bank", positives="translations"),
    "ft-mean": dict(target="mean"),
    "ft-bank-cos-multi": dict(negatives="bank", positives="translations", cosine_weight=0.5),
    # The same, on a schedule two and a half times as long: do more passes over the data help?
    "ft-bank-cos-multi-long": dict(negatives="bank", positives="translations", cosine_weight=0.5, epochs=15, patience=4),
}


def summarise(ev: dict) -> dict:
    """HITS@1 and MRR per query kind of one evaluate_manifest result."""
    return {k: {"n": v["n"], "hits@1": round(v["hits@1"], 4), "mrr": round(v["mrr"], 4)}
            for k, v in ev.items() if isinstance(v, dict) and "hits@1" in v}


# The table's columns: (set, query kind), the validation rows a choice is made on.
COLUMNS = [("asterisk-it", "native"), ("asterisk-ru", "native"), ("asterisk-it", "en"), ("asterisk-ru", "en"),
           ("kokoro-en-val", "en"), ("kokoro-ml-val", "native"), ("kokoro-ml-val", "en"), ("synth-val", "en")]


def table(results: dict) -> str:
    """HITS@1 of every row on the validation columns, as Markdown."""
    head = ["variant", "best epoch", *(f"{s} {q}" for s, q in COLUMNS)]
    lines = ["| " + " | ".join(head) + " |", "|---|---:|" + "---:|" * len(COLUMNS)]
    for r in results["rows"]:
        cells = [r.get("variant") or r.get("model", "?"), str(r.get("best_epoch", ""))]
        for s, q in COLUMNS:
            v = r["sets"].get(s, {}).get(q)
            cells.append(f"{v['hits@1']:.3f}" if v else "")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    from clasp_cli.registry import load_model
    from clasp_cli.train import TrainConfig, evaluate_manifest, train

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, default=Path("runs/v3"))
    ap.add_argument("--results", type=Path, default=Path("benchmarks/results/model-v3-val.json"))
    ap.add_argument("--train", default=",".join(TRAIN), help="comma list of training manifests (missing ones are left out)")
    ap.add_argument("--val", default=",".join(VAL), help="comma list of validation manifests for early stopping")
    ap.add_argument("--only", default=None, help="comma list of variant names")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                    help="override a training setting of every variant (e.g. warmup_steps=20 when the training "
                    "set is small enough that the default warm-up outlasts the schedule)")
    ap.add_argument("--score", action="append", default=[], metavar="NAME=MANIFEST",
                    help="one more validation set to score every variant on (e.g. fillets-val=data/fillets/val.jsonl)")
    ap.add_argument("--test", default=None, help="score this model on the test sets instead of training")
    ap.add_argument("--table", action="store_true", help="print the results file as a Markdown table of HITS@1, then stop")
    ap.add_argument("--featurize", action="store_true", help="only fill the feature cache for the training and "
                    "validation manifests (while other corpora are still being built), then stop")
    args = ap.parse_args()

    if args.table:
        if not args.results.exists():
            ap.error(f"--table: no results file {args.results}")
        print(table(json.loads(args.results.read_text())))
        return
    for kv in args.score:
        name, _, path = kv.partition("=")
        if not path:
            ap.error(f"--score: expected NAME=MANIFEST, got {kv!r}")
        VAL_SETS[name] = path
    common = dict(COMMON)
    for kv in args.set:
        key, _, value = kv.partition("=")
        if key not in TrainConfig.__dataclass_fields__:
            ap.error(f"--set: no training setting {key!r}")
        try:
            common[key] = json.loads(value)  # numbers, true/false, lists
        except ValueError:
            common[key] = value
    results = json.loads(args.results.read_text()) if args.results.exists() else {"rows": []}
    results.update(machine=f"{platform.node()}: {os.cpu_count()} CPU cores, {platform.processor() or platform.machine()}",
                   command="python " + " ".join(sys.argv))
    train_m = [m for m in args.train.split(",") if Path(m).exists()]
    val_m = [m for m in args.val.split(",") if Path(m).exists()]
    results["train"], results["val"], results["common"] = train_m, val_m, common

    if args.featurize:
        from clasp_cli.paths import cache_dir
        from clasp_cli.train import featurize
        from clasp_cli.manifest import read_manifest

        model = load_model("clasp-base")
        for m in [*train_m, *val_m, *(p for p in VAL_SETS.values() if Path(p).exists())]:
            featurize(model, read_manifest(m), Path(m).resolve().parent, cache_dir() / "features")
            print(f"featurized {m}", flush=True)
        return

    def save() -> None:
        args.results.parent.mkdir(parents=True, exist_ok=True)
        args.results.write_text(json.dumps(results, indent=1))

    def score(model_ref: str, sets: dict[str, str]) -> dict:
        model = load_model(model_ref)
        return {name: summarise(evaluate_manifest(model, path, nonsense=0)) for name, path in sets.items() if Path(path).exists()}

    if args.test:
        results["rows"] = [r for r in results["rows"] if r["model"] != args.test]
        results["rows"].append({"model": args.test, "sets": score(args.test, TEST_SETS)})
        save()
        return
    done = {r["variant"] for r in results["rows"]}
    for name, over in VARIANTS.items():
        if (args.only and name not in args.only.split(",")) or name in done:
            continue
        t0 = time.perf_counter()
        row: dict = {"variant": name, "settings": over}
        if over is None:
            ref = "clasp-base"
        else:
            res = train(TrainConfig(manifest=train_m, val=val_m, out=str(args.out / name), **{**common, **over}))
            ref = str(args.out / name)
            row.update(best_epoch=res.best_epoch, val_mrr=round(res.best.get("mrr", 0.0), 4), train_s=round(res.seconds, 1))
        row["sets"] = score(ref, VAL_SETS)
        row["seconds"] = round(time.perf_counter() - t0, 1)
        print(json.dumps(row), flush=True)
        results["rows"].append(row)
        save()


if __name__ == "__main__":
    main()
