"""The README's ablation table: fusion x pooling, without the spectrogram branch, InfoNCE vs Huber.

Each variant trains on the same (optionally limited) training split with the same budget and
seed; the best epoch is chosen on the validation split only. The table reports the held-out test
split (sentences and voices never seen in training): English queries against every test
recording, and the translated queries (de, fr, es, zh, ja) against the same candidates.

    .venv/bin/python benchmarks/ablation.py --data data/synth --limit 8000 --epochs 8
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

VARIANTS = [
    ("concat-mean", dict(fusion="concat", pooling="mean")),
    ("concat-attn", dict(fusion="concat", pooling="attention")),
    ("gating-mean", dict(fusion="gating", pooling="mean")),
    ("gating-attn", dict(fusion="gating", pooling="attention")),
    ("attention-mean", dict(fusion="attention", pooling="mean")),
    ("attention-attn", dict(fusion="attention", pooling="attention")),
    ("concat-mean-nospec", dict(fusion="concat", pooling="mean", use_spectrogram=False)),
    ("concat-mean-huber", dict(fusion="concat", pooling="mean", loss="huber")),
]


def main() -> None:
    from clasp_cli.registry import load_model
    from clasp_cli.train import TrainConfig, evaluate_manifest, train

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=Path("data/synth"))
    ap.add_argument("--out", type=Path, default=Path("runs/ablation"))
    ap.add_argument("--limit", type=int, default=None)
    ap.add_argument("--epochs", type=int, default=8)
    ap.add_argument("--only", default=None, help="comma-separated variant names")
    args = ap.parse_args()
    rows = []
    for name, over in VARIANTS:
        if args.only and name not in args.only.split(","):
            continue
        t = time.perf_counter()
        cfg = TrainConfig(manifest=str(args.data / "train.jsonl"), val=str(args.data / "val.jsonl"), out=str(args.out / name),
                          epochs=args.epochs, limit=args.limit, patience=3, **over)
        res = train(cfg)
        ev = evaluate_manifest(load_model(args.out / name), args.data / "test.jsonl")
        row = {"variant": name, "best_epoch": res.best_epoch, "val_mrr": round(res.best["mrr"], 4),
               "train_s": round(time.perf_counter() - t), **{k: v for k, v in ev.items()}}
        rows.append(row)
        print(json.dumps(row), flush=True)
    (args.out / "ablation.json").write_text(json.dumps(rows, indent=1))
    langs = [k for k in rows[0] if k not in ("variant", "best_epoch", "val_mrr", "train_s", "candidates", "en")] if rows else []
    print(f"\n| variant | val MRR | test HITS@1 | MRR | meanR | " + " | ".join(f"{l} HITS@1" for l in langs) + " |")
    print("|---|---|---|---|---|" + "---|" * len(langs))
    for r in rows:
        e = r["en"]
        print(f"| {r['variant']} | {r['val_mrr']:.3f} | {e['hits@1']:.3f} | {e['mrr']:.3f} | {e['meanr']:.1f} | "
              + " | ".join(f"{r[l]['hits@1']:.3f}" for l in langs) + " |")


if __name__ == "__main__":
    main()
