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
    from model_v3 import summarise  # the sibling script's HITS@1/MRR rows, so both results files read alike

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("-m", "--manifest", type=Path, required=True)
    ap.add_argument("--n", type=int, default=400)
    ap.add_argument("--model", action="append", default=None, help="registry name or model directory (repeat)")
    ap.add_argument("--out", type=Path, default=Path("data/channel-gap"), help="where the phone copies and both manifests are written")
    ap.add_argument("--results", type=Path, default=Path("benchmarks/results/channel-gap.json"))
    args = ap.parse_args()
    if not args.manifest.is_file():
        ap.error(f"{args.manifest}: no such manifest")

    utts = read_manifest(args.manifest)[: args.n]
    root = args.manifest.resolve().parent
    args.out.mkdir(parents=True, exist_ok=True)
    # The clean side reads the original recordings; only the phone side is written.
    clean = [dataclasses.replace(u, audio=str(u.audio_path(root).resolve())) for u in utts]
    phone = []
    for u in utts:
        dst = args.out / f"{u.id}.phone.flac"
        if not dst.exists():  # resumable: a copy is written once
            sf.write(dst, telephone(load_audio(u.audio_path(root))), 16_000)
        phone.append(dataclasses.replace(u, audio=dst.name))
    copies = {"clean": args.out / "clean.jsonl", "phone": args.out / "phone.jsonl"}
    write_manifest(copies["clean"], clean)
    write_manifest(copies["phone"], phone)

    results = {"machine": f"{platform.node()}: {os.cpu_count()} CPU cores", "command": "python " + " ".join(sys.argv),
               "manifest": str(args.manifest), "n": len(utts), "rows": []}
    for ref in args.model or ["clasp-base"]:
        model = load_model(ref)
        row = {"model": ref}
        for kind, path in copies.items():
            row[kind] = summarise(evaluate_manifest(model, path, nonsense=0))
        print(json.dumps(row), flush=True)
        results["rows"].append(row)
    args.results.parent.mkdir(parents=True, exist_ok=True)
    args.results.write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
