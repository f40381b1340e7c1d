"""How many clips the Whisper encoder should take per call: throughput by clip length and batch size.

    .venv/bin/python benchmarks/encoder_batch.py --model whisper-base --out benchmarks/results/encoder-batch-whisper-base.json

Clips are cut from real speech (the validation manifest's recordings, joined and sliced), 240 s
of audio per clip length, each set encoded whole at every batch size, twice (the faster pass is
kept). Encoder compute does not depend on what is said, so one speaker's audio serves; what
changes is how CTranslate2 fills the cores for a given number of frames per call.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

import numpy as np


def main() -> None:
    from clasp_cli.audio import load_audio
    from clasp_cli.encoders.speech import WhisperCT2Encoder
    from clasp_cli.manifest import iter_manifest

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="whisper-base")
    ap.add_argument("--manifest", type=Path, default=Path("data/synth/val.jsonl"))
    ap.add_argument("--lengths", default="2,4,6,10", help="clip lengths, seconds")
    ap.add_argument("--batches", default="1,2,4,8,16,32")
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()

    speech, have = [], 0
    for u in iter_manifest(args.manifest):
        w = load_audio(u.audio_path(args.manifest.parent), 16_000)
        speech.append(w)
        have += w.size
        if have >= 16_000 * 260:
            break
    audio = np.concatenate(speech)
    enc = WhisperCT2Encoder(args.model)
    enc.encode([audio[:16_000]] * 2)  # first-call costs outside the timings
    rows = []
    for sec in [float(x) for x in args.lengths.split(",")]:
        n = int(240 // sec)
        size = int(sec * 16_000)
        clips = [audio[i * size : (i + 1) * size] for i in range(n)]
        row = {"clip_s": sec, "clips": n, "x_realtime": {}}
        for bs in [int(x) for x in args.batches.split(",")]:
            best = float("inf")
            for _ in range(2):
                t = time.perf_counter()
                enc.encode(clips, batch_size=bs)
                best = min(best, time.perf_counter() - t)
            row["x_realtime"][str(bs)] = round(n * sec / best, 1)
        rows.append(row)
        print(f"{sec:4.1f} s clips: " + "  ".join(f"batch {b}: {x:5.1f}x" for b, x in row["x_realtime"].items()), flush=True)
    result = {"model": args.model, "machine": f"{platform.machine()} {os.cpu_count()} cores", "rows": rows}
    if args.out:
        args.out.write_text(json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    main()
