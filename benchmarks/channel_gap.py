"""How much of the speech vector's loss on real phone recordings is the phone line itself?

Takes the first N utterances of a validation manifest, passes each through the telephone channel
that training augments with (`clasp_cli.data.augment.telephone`: 8 kHz, 300-3400 Hz, mu-law),
and scores the vector alone on the clean and the phone copies with the same candidates and
queries. Validation speech only; nothing here is trained.

    .venv/bin/python benchmarks/channel_gap.py -m data/synth/val.jsonl --n 400 --model clasp-base \
        --out data/channel-gap --results benchmarks/results/channel-gap.json
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import sys
from pathlib import Path


def main() -> None:
    import soundfile as sf

    from clasp_cli.audio import load_audio
    from clasp_cli.data.augment import telephone
    from clasp_cli.manifest import read_manifest, write_manifest
    from clasp_cli.registry import load_model
    from clasp_cli.train import evaluate_manifest

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("-m", "--manifest", type=Path, required=True)
    ap.add_argument("--n", type=int, default=400)
    ap.add_argument("--model", action="append", default=None, help="registry name or model directory (repeat)")
    ap.add_argument("--out", type=Path, default=Path("data/channel-gap"), help="where the two copies are written")
    ap.add_argument("--results", type=Path, default=Path("benchmarks/results/channel-gap.json"))
    args = ap.parse_args()

    utts = read_manifest(args.manifest)[: args.n]
    root = args.manifest.resolve().parent
    copies = {}
    for kind in ("clean", "phone"):
        folder = args.out / kind
        folder.mkdir(parents=True, exist_ok=True)
        rows = []
        for u in utts:
            dst = folder / f"{u.id}.flac"
            if not dst.exists():  # resumable: a copy is written once
                x = load_audio(u.audio_path(root))
                sf.write(dst, telephone(x) if kind == "phone" else x, 16_000)
            rows.append(dataclasses.replace(u, audio=dst.name))
        write_manifest(folder / "manifest.jsonl", rows)
        copies[kind] = folder / "manifest.jsonl"

    results = {"machine": f"{platform.node()}: {os.cpu_count()} CPU cores", "command": "python " + " ".join(sys.argv),
               "manifest": str(args.manifest), "n": len(utts), "rows": []}
    for ref in args.model or ["clasp-base"]:
        model = load_model(ref)
        row = {"model": ref}
        for kind, path in copies.items():
            ev = evaluate_manifest(model, path, nonsense=0)
            row[kind] = {k: {"n": v["n"], "hits@1": round(v["hits@1"], 4), "mrr": round(v["mrr"], 4)}
                         for k, v in ev.items() if isinstance(v, dict) and "hits@1" in v}
        print(json.dumps(row), flush=True)
        results["rows"].append(row)
    args.results.parent.mkdir(parents=True, exist_ok=True)
    args.results.write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
