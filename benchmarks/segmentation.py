"""Which spans to embed: passage-level search on an archive built from the VALIDATION split.

Joins val utterances into programs (one voice, ten sentences, natural pauses), then scores
English sentence queries against every span of every program, in memory, for the earlier
3-12 s passages, 1-6 s passages and VAD sentence windows; with --asr also transcribe-then-embed
on the windows. Defaults are chosen here, never on the test split.

    .venv/bin/python benchmarks/segmentation.py --manifest data/synth/val.jsonl --model clasp-tiny --programs 20 --asr
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path


def main() -> None:
    from clasp_cli.archive import ArchiveConfig, build_archive, evaluate_segmentation, queries
    from clasp_cli.passages import PassageConfig, WindowConfig, find_passages, find_windows
    from clasp_cli.registry import load_model
    from clasp_cli.transcribe import Transcriber, whisper_for

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--manifest", type=Path, default=Path("data/synth/val.jsonl"))
    ap.add_argument("--work", type=Path, default=Path("data/arch-val"))
    ap.add_argument("--model", default="clasp-tiny")
    ap.add_argument("--programs", type=int, default=20)
    ap.add_argument("--asr", action="store_true", help="also transcribe-then-embed on the windows")
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()

    programs = build_archive(ArchiveConfig(manifest=args.manifest, out=args.work))[: args.programs]
    model = load_model(args.model, device="cpu")
    qs = queries(programs, args.work, langs=("en",))
    asr = Transcriber(whisper_for(model.config.speech_encoder)) if args.asr else None
    rows = {}
    for name, segment in [
        ("passages 3-12 s", lambda p: find_passages(p, PassageConfig())[0]),
        ("passages 1-6 s", lambda p: find_passages(p, PassageConfig(min_seconds=1, max_seconds=6))[0]),
        ("VAD windows", lambda p: find_windows(p, WindowConfig())[0]),
    ]:
        t = time.time()
        rows[name] = evaluate_segmentation(model, programs, args.work, segment, qs,
                                           transcriber=asr if name == "VAD windows" else None)
        rows[name]["seconds"] = round(time.time() - t, 1)
        print(name, json.dumps(rows[name]), flush=True)
    out = args.out or Path("benchmarks/results") / f"segmentation-{args.model}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({
        "machine": f"{platform.machine()} {os.cpu_count()} cores", "model": args.model, "manifest": str(args.manifest),
        "programs": len(programs), "queries": len(qs), "rows": rows,
    }, indent=1) + "\n")


if __name__ == "__main__":
    main()
