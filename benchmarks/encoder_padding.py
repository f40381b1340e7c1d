"""How finely the Whisper encoder's inputs are padded: speed against search quality, chosen on
archives built from the VALIDATION splits, never on test.

    .venv/bin/python benchmarks/encoder_padding.py --model clasp-base --programs 40 --out benchmarks/results/encoder-padding-clasp-base.json

Each window goes to the encoder padded with silence up to a multiple of `pad_seconds` (clips of
one padded length share a batch); only its true frames reach the head. Coarser padding makes
bigger batches, finer padding encodes less silence. Each program is cut into sentence windows
once; for every padding the windows are embedded again (timed: encoder and head, the part
indexing pays per window) and every query (each sentence, and on the multilingual archive each
translation) ranks every window of every program. Rows: passage HITS@1 / MRR per query language,
and windows' audio seconds embedded per second.
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
    from clasp_cli.archive import VALIDATION_MANIFESTS, queries, rank_windows, scores_by_lang, tuning_archive
    from clasp_cli.passages import WindowConfig, find_windows, iter_passage_audio
    from clasp_cli.registry import load_model

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="clasp-base")
    ap.add_argument("--manifest", type=Path, action="append", default=None,
                    help="validation manifest (repeatable; default: the English and multilingual val splits)")
    ap.add_argument("--programs", type=int, default=40, help="programs per manifest")
    ap.add_argument("--pads", default="1.0,0.5,0.2", help="padding quanta to compare, seconds")
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()
    manifests = args.manifest or list(VALIDATION_MANIFESTS)

    model = load_model(args.model, device="cpu")
    waves, paths, spans, qs, owner = [], [], [], [], []
    for man in manifests:
        work, programs = tuning_archive(man, args.programs)
        mine = queries(programs, work)
        qs += mine
        owner += [str(man)] * len(mine)
        for p in programs:
            path = (work / p.path).resolve()
            windows = find_windows(path, WindowConfig())[0]
            waves.append([w for _, w in iter_passage_audio(path, windows, model.config.sample_rate)])
            paths += [str(path)] * len(windows)
            spans += [(w.start, w.end) for w in windows]
    audio_s = sum(w.size for ws in waves for w in ws) / model.config.sample_rate
    qv = model.embed_text([q.text for q in qs])
    model.embed_audio(waves[0][:4])  # load the encoder and head outside the timed runs
    rows = []  # a list: the same padding may be timed twice (first and last), to show the drift
    for pad in [float(x) for x in args.pads.split(",")]:
        model.speech.pad_seconds = pad
        t = time.perf_counter()
        vecs = np.concatenate([model.embed_audio(ws) for ws in waves])
        took = time.perf_counter() - t
        ranks = rank_windows(qv, vecs, paths, spans, qs, top_k=10)
        by_archive = {}
        for m in manifests:
            keep = [i for i, o in enumerate(owner) if o == str(m)]
            by_archive[m.parent.name] = scores_by_lang([ranks[i] for i in keep], [qs[i] for i in keep])
        rows.append({"pad_seconds": pad, "embed_s": round(took, 1), "x_realtime": round(audio_s / took, 1), "archives": by_archive})
        print(f"pad {pad:4.2f} s: {audio_s / took:5.1f}x real time  ",
              "  ".join(f"{a}: " + " ".join(f"{k}:{v['hits@1']:.3f}" for k, v in sc.items()) for a, sc in by_archive.items()),
              flush=True)
    result = {
        "model": args.model, "manifests": [str(m) for m in manifests], "programs_per_manifest": args.programs,
        "queries": len(qs), "windows": len(spans), "window_audio_s": round(audio_s, 1),
        "machine": f"{platform.machine()} {os.cpu_count()} cores", "rows": rows,
    }
    if args.out:
        args.out.write_text(json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    main()
