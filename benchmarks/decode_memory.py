"""Peak memory while decoding a 3-hour recording block by block (issue: long files never sit in memory).

Writes a 3-hour 44.1 kHz stereo FLAC (tone + noise, so resampling and downmixing both run) and a
3-hour AAC .m4a (the PyAV path) once under --work, then decodes each in a fresh process with
clasp_cli.audio.stream_audio and reports peak RSS (ru_maxrss) and speed.

    .venv/bin/python benchmarks/decode_memory.py [--hours 3] [--work /tmp/clasp-bench]
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

RATE = 44_100


def _chunk(i: int, n: int, channels: int) -> np.ndarray:
    t = (np.arange(n) + i * n) / RATE
    rng = np.random.default_rng(i)
    x = 0.2 * np.sin(2 * np.pi * (200 + 50 * np.sin(t / 7)) * t) + 0.01 * rng.standard_normal(n)
    return np.repeat(x[:, None], channels, axis=1).astype(np.float32)


def write_flac(path: Path, hours: float) -> None:
    import soundfile as sf

    n = RATE * 60
    with sf.SoundFile(path, "w", RATE, 2, format="FLAC") as f:
        for i in range(int(hours * 60)):
            f.write(_chunk(i, n, 2))


def write_m4a(path: Path, hours: float) -> None:
    import av

    n = RATE * 60
    with av.open(str(path), "w") as c:
        s = c.add_stream("aac", rate=RATE, bit_rate=64000)
        s.layout = "stereo"
        for i in range(int(hours * 60)):
            x = _chunk(i, n, 2)
            for j in range(0, n, 1024 * 64):
                fr = av.AudioFrame.from_ndarray(np.ascontiguousarray(x[j : j + 1024 * 64].T), format="fltp", layout="stereo")
                fr.sample_rate = RATE
                for p in s.encode(fr):
                    c.mux(p)
        for p in s.encode(None):
            c.mux(p)


CHILD = """
import resource, sys, time
from clasp_cli.audio import stream_audio
t = time.perf_counter(); n = 0; peak = 0.0
for b in stream_audio(sys.argv[1], block_seconds=60.0):
    n += b.size; peak = max(peak, float(abs(b).max()))
dt = time.perf_counter() - t
print(n / 16000, dt, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
"""


def measure(path: Path) -> dict:
    out = subprocess.run([sys.executable, "-c", CHILD, str(path)], capture_output=True, text=True, check=True).stdout.split()
    seconds, elapsed, rss_mb = map(float, out)
    return {"file": path.name, "size_mb": round(path.stat().st_size / 2**20, 1), "audio_hours": round(seconds / 3600, 3),
            "decode_s": round(elapsed, 1), "x_realtime": round(seconds / elapsed), "peak_rss_mb": round(rss_mb)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--hours", type=float, default=3.0)
    ap.add_argument("--work", type=Path, default=Path("/tmp/clasp-bench"))
    args = ap.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    rows = []
    for name, writer in (("long.flac", write_flac), ("long.m4a", write_m4a)):
        p = args.work / f"{args.hours:g}h-{name}"
        if not p.exists():
            t = time.perf_counter()
            writer(p.with_suffix(".part" + p.suffix), args.hours)
            p.with_suffix(".part" + p.suffix).rename(p)
            print(f"wrote {p} in {time.perf_counter() - t:.0f} s", file=sys.stderr)
        rows.append(measure(p))
    print(f"machine: {platform.processor() or platform.machine()}, {__import__('os').cpu_count()} cores, Python {platform.python_version()}")
    for r in rows:
        print(json.dumps(r))


if __name__ == "__main__":
    main()
