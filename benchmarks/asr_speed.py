"""Whisper's two reading paths on the same clips: speed (x real time) and word error rate.

    .venv/bin/python benchmarks/asr_speed.py --model whisper-tiny.en --manifest data/synth/val.jsonl --n 80

`transcribe` is faster-whisper one clip at a time, each padded to 30 s (what a transcribe-then-
search pipeline does, and the benchmark's ASR baseline); `transcribe_batch` is CTranslate2 with
clips batched by length and not padded to 30 s (what `--rerank` and `index --transcribe` use).
Clips are every k-th utterance of a validation manifest; each path warms up once before timing.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="whisper-tiny.en")
    ap.add_argument("--manifest", type=Path, default=Path("data/synth/val.jsonl"))
    ap.add_argument("--n", type=int, default=80)
    ap.add_argument("--out", type=Path, default=None, help="append the result as one JSON line")
    args = ap.parse_args()

    from clasp_cli.audio import load_audio
    from clasp_cli.benchmark.scoring import word_error_rate
    from clasp_cli.manifest import read_manifest
    from clasp_cli.transcribe import Transcriber

    utts = read_manifest(args.manifest)
    utts = utts[:: max(1, len(utts) // args.n)][: args.n]
    waves = [load_audio(args.manifest.resolve().parent / u.audio) for u in utts]
    langs = [u.lang for u in utts]
    audio_s = sum(w.size for w in waves) / 16000
    asr = Transcriber(args.model)
    row = {"model": args.model, "manifest": str(args.manifest), "clips": len(waves), "audio_s": round(audio_s, 1),
           "machine": f"{platform.machine()} {os.cpu_count()} cores"}
    for name, fn in (("transcribe", asr.transcribe), ("transcribe_batch", asr.transcribe_batch)):
        fn(waves[:2])
        for told in (False, True) if asr.multilingual else (False,):
            t = time.perf_counter()
            hyp = fn(waves, langs if told else None)
            dt = time.perf_counter() - t
            key = f"{name}{' (language given)' if told else ''}"
            row[key] = {"seconds": round(dt, 1), "x_realtime": round(audio_s / dt, 1),
                        "wer": round(word_error_rate([u.text for u in utts], hyp), 3)}
            print(key, row[key], flush=True)
    print(json.dumps(row))
    if args.out:
        with open(args.out, "a") as f:
            f.write(json.dumps(row) + "\n")


if __name__ == "__main__":
    main()
