"""Indexing throughput on one device: encode only (CLASP vectors) and encode + decode (with
transcripts), at encoder batches of 8, 32 and 64, on the windows of examples/archive repeated
to about 20 minutes of speech. Reports real-time factors, hours of audio per device-hour and the
peak GPU memory (nvidia-smi, sampled every 50 ms: CTranslate2's allocations are not torch's).

  python benchmarks/gpu_throughput.py --device cuda --out gpu-throughput.json

benchmarks/gpu_check.sh runs this on a lent GPU machine; on 2 CPU cores `--device cpu` gives
the row it is compared with.
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def gpu_memory_sampler():
    peak, stop = [0], threading.Event()

    def run() -> None:
        while not stop.is_set():
            try:
                out = subprocess.run(["nvidia-smi", "--query-gpu=memory.used", "--format=csv,noheader,nounits"],
                                     capture_output=True, text=True, timeout=5).stdout
                peak[0] = max(peak[0], max(int(x) for x in out.split()))
            except (OSError, ValueError, subprocess.SubprocessError):
                return
            stop.wait(0.05)

    t = threading.Thread(target=run, daemon=True)
    t.start()
    return peak, stop


def windows(minutes: float, sample_rate: int):
    from clasp_cli.indexer import cut_windows, scan
    from clasp_cli.passages import DEFAULT_SEGMENTATION, SEGMENTATIONS

    cfg = SEGMENTATIONS[DEFAULT_SEGMENTATION]()
    files, _ = scan([ROOT / "examples" / "archive"])
    one = []
    for f in files:
        one += [w for _, w in cut_windows(f, cfg, sample_rate)[1]]
    seconds = sum(w.size for w in one) / sample_rate
    return one * max(1, int(minutes * 60 // seconds))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--minutes", type=float, default=20.0)
    ap.add_argument("--batches", default="8,32,64")
    ap.add_argument("--out", default="gpu-throughput.json")
    a = ap.parse_args()
    import numpy as np

    from clasp_cli.reading.reader import ChunkReader
    from clasp_cli.reading.recording import read_recording, wave_audio
    from clasp_cli.registry import load_model
    from clasp_cli.transcribe import shared_transcriber, whisper_for

    model = load_model(device=a.device)
    model.ready()
    transcriber = shared_transcriber(whisper_for(model.config.speech_encoder), model.device)
    waves = windows(a.minutes, model.config.sample_rate)
    audio_s = sum(w.size for w in waves) / model.config.sample_rate
    # The same windows as one recording, half a second apart: what the reader reads in chunks.
    sr, gap = model.config.sample_rate, np.zeros(model.config.sample_rate // 2, dtype=np.float32)
    joined, spans, t = [], [], 0.0
    for w in waves:
        joined += [w, gap]
        spans.append((t, t + w.size / sr))
        t += (w.size + gap.size) / sr
    recording = np.concatenate(joined)
    peak, stop = gpu_memory_sampler() if a.device == "cuda" else ([0], threading.Event())
    speech = model.speech
    encode = speech.encode
    rows = []
    model.embed_audio(waves[:8])  # warm-up: kernels, allocator
    for b in (int(x) for x in a.batches.split(",")):
        speech.encode = lambda w, batch_size=8, keep_outputs=False, _b=b: encode(w, batch_size=_b, keep_outputs=keep_outputs)
        for mode in ("encode", "encode+read"):
            t = time.perf_counter()
            for s in range(0, len(waves), 64):  # the indexer's batch of windows
                model.embed_audio(waves[s : s + 64])
            if mode == "encode+read":
                read_recording(ChunkReader(transcriber, batch_size=b), spans, wave_audio(recording))
            wall = time.perf_counter() - t
            rows.append({"batch": b, "mode": mode, "audio_s": round(audio_s, 1), "wall_s": round(wall, 2),
                         "x_realtime": round(audio_s / wall, 1), "audio_hours_per_device_hour": round(audio_s / wall, 1)})
            print(json.dumps(rows[-1]), flush=True)
    stop.set()
    res = {"device": a.device, "machine": platform.node(), "model": model.id, "rows": rows,
           "peak_gpu_memory_mib": peak[0] if a.device == "cuda" else None}
    Path(a.out).write_text(json.dumps(res, indent=1))
    print(json.dumps(res))


if __name__ == "__main__":
    main()
