"""One encoder pass or two: where a window's CLASP vector comes from when the index also reads.

- window: Whisper's encoder over the window alone (padded to a whole second), as `clasp index`
  embeds today and as the CLASP head was trained;
- chunk: the window's frames sliced from its reading chunk's encoder output (the chunk padded as
  the reader pads it), so reading and embedding share one pass.

CLASP-vector HITS@1 over every window of the archive's programs (brute force), with each
sentence's own text and its translations as queries, and the encoder seconds of each way.

    python benchmarks/encoder_pass.py --archive data/arch-read-asterisk-it --out benchmarks/results/encoder-pass-asterisk-it.json
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
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--archive", type=Path, required=True, help="a folder built by build_archive (archive.json)")
    ap.add_argument("--model", default=None, help="CLASP model (default: the shipped one)")
    ap.add_argument("--langs", default=None, help="query languages, comma-separated (default: all the archive has)")
    ap.add_argument("--out", type=Path, required=True)
    a = ap.parse_args()

    from clasp_cli.archive import load_archive, queries, rank_windows, scores_by_lang
    from clasp_cli.audio import load_audio
    from clasp_cli.model import AudioFeatures
    from clasp_cli.passages import WindowConfig
    from clasp_cli.pipeline import cut_windows
    from clasp_cli.reading.chunks import reading_chunks
    from clasp_cli.reading.queue import plan_pieces
    from clasp_cli.reading.reader import SAMPLE_RATE, ChunkReader
    from clasp_cli.registry import load_model
    from clasp_cli.transcribe import shared_transcriber, whisper_for

    model = load_model(a.model, device="cpu") if a.model else load_model(device="cpu")
    reader = ChunkReader(shared_transcriber(whisper_for(model.config.speech_encoder)))
    programs = load_archive(a.archive)
    paths, spans, vecs = [], [], {"window": [], "chunk": []}
    secs = {"window": 0.0, "chunk": 0.0}
    audio_s = 0.0
    for p in programs:
        path = (a.archive / p.path).resolve()
        duration, windows = cut_windows(path, WindowConfig(), SAMPLE_RATE)
        windows = list(windows)
        sp = [(s.start, s.end) for s, _ in windows]
        waves = [w for _, w in windows]
        audio_s += duration
        if not sp:
            continue
        t0 = time.perf_counter()
        vecs["window"].append(model.embed_audio(waves))
        secs["window"] += time.perf_counter() - t0
        wave = load_audio(path, SAMPLE_RATE)
        t0 = time.perf_counter()
        plan = plan_pieces(reading_chunks(sp))
        encoded = reader.encode([wave[int(round(s * SAMPLE_RATE)) : int(round(e * SAMPLE_RATE))] for _, s, e in plan])
        feats = []
        for start, end in sp:
            # The piece that holds the window (a window is in one chunk; a chunk over 30 s is cut in pieces).
            k = max((k for k, (_, s, e) in enumerate(plan) if s <= start + 1e-6 and start < e), key=lambda k: plan[k][1])
            s0 = plan[k][1]
            lo = int(round((start - s0) * 50))
            hi = max(lo + 1, min(encoded[k].shape[0], int(round((end - s0) * 50))))
            feats.append(AudioFeatures(np.ascontiguousarray(encoded[k][lo:hi], dtype=np.float32), None))
        vecs["chunk"].append(model.embed_features(feats))
        secs["chunk"] += time.perf_counter() - t0
        paths += [str(path)] * len(sp)
        spans += sp
    langs = a.langs.split(",") if a.langs else None
    qs = queries(programs, a.archive, langs)
    q = model.embed_text([x.text for x in qs])
    rows = {}
    for name, v in vecs.items():
        rows[name] = {"scores": scores_by_lang(rank_windows(q, np.concatenate(v), paths, spans, qs, 10), qs),
                      "seconds": round(secs[name], 1), "x_realtime": round(audio_s / max(secs[name], 1e-9), 1)}
        print(name, {k: v["hits@1"] for k, v in rows[name]["scores"].items()}, rows[name]["seconds"], "s")
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text(json.dumps({"archive": str(a.archive), "programs": len(programs), "windows": len(spans),
                                 "queries": len(qs), "audio_s": round(audio_s, 1),
                                 "machine": f"{platform.machine()}, {os.cpu_count()} cores", "rows": rows}, indent=1) + "\n")


if __name__ == "__main__":
    main()
