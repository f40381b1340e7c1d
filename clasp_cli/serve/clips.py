"""A passage's audio, cut from its recording on the server, and the media type of whole recordings.

Cuts seek instead of decoding from the top, so a hit near the end of a three-hour recording
costs as much as one at its start. They keep the recording's own sample rate and channels:
the page is for listening, not for the model.
"""

from __future__ import annotations

import io
import mimetypes
from pathlib import Path

import numpy as np

from ..errors import AudioError

PREROLL_S = 0.5

# What browsers expect for the formats people archive; mimetypes misses or misnames several.
MEDIA_TYPES = {
    ".wav": "audio/wav", ".flac": "audio/flac", ".mp3": "audio/mpeg", ".ogg": "audio/ogg", ".oga": "audio/ogg",
    ".opus": "audio/ogg", ".m4a": "audio/mp4", ".mp4": "audio/mp4", ".aac": "audio/aac", ".webm": "audio/webm",
}


def media_type(path: str | Path) -> str:
    ext = Path(path).suffix.lower()
    return MEDIA_TYPES.get(ext) or mimetypes.guess_type(str(path))[0] or "application/octet-stream"


def cut(path: str | Path, start: float, end: float) -> tuple[np.ndarray, int]:
    """Samples [frames, channels] float32 from `start` to `end` seconds, at the file's own rate."""
    import soundfile as sf

    path = Path(path)
    if not path.is_file():
        raise AudioError(path, "file not found")
    try:
        f = sf.SoundFile(str(path))
    except Exception:
        return _cut_pyav(path, start, end)  # formats libsndfile lacks (m4a, webm, ...)
    with f:
        sr = f.samplerate
        first = min(int(round(start * sr)), f.frames)
        f.seek(first)
        return f.read(max(0, int(round(end * sr)) - first), dtype="float32", always_2d=True), sr


def _cut_pyav(path: Path, start: float, end: float) -> tuple[np.ndarray, int]:
    import av

    try:
        with av.open(str(path)) as c:
            if not c.streams.audio:
                raise AudioError(path, "has no audio stream")
            stream = c.streams.audio[0]
            # Seek half a second early: lossy decoders (AAC, Opus) need a frame or two of pre-roll
            # before their output is right. Frame timestamps then say how much to drop.
            # Passage times count from the first sample, as the indexer decoded; timestamps count from the stream's start.
            origin = float(stream.start_time * stream.time_base) if stream.start_time is not None else 0.0
            c.seek(int(max(0.0, origin + start - PREROLL_S) * av.time_base), any_frame=False, backward=True)
            channels = 2 if (stream.channels or 1) > 1 else 1
            resampler = av.AudioResampler(format="flt", layout="stereo" if channels == 2 else "mono", rate=stream.rate)
            parts: list[np.ndarray] = []
            sr = stream.rate
            t0: float | None = None
            have = 0.0
            for frame in c.decode(stream):
                if t0 is None:
                    t0 = float(frame.pts * frame.time_base) - origin if frame.pts is not None else 0.0
                for out in resampler.resample(frame):
                    parts.append(out.to_ndarray().reshape(-1, channels))
                    have += out.samples / sr
                if t0 + have >= end:
                    break
    except AudioError:
        raise
    except Exception as e:
        raise AudioError(path, f"not a readable audio file ({e})") from None
    if not parts:
        return np.zeros((0, channels), dtype=np.float32), sr
    x = np.concatenate(parts)
    skip = max(0, int(round((start - (t0 or 0.0)) * sr)))
    return x[skip : skip + max(0, int(round((end - start) * sr)))], sr


def wav_bytes(samples: np.ndarray, sample_rate: int) -> bytes:
    import soundfile as sf

    buf = io.BytesIO()
    sf.write(buf, samples, sample_rate, format="WAV", subtype="PCM_16")
    return buf.getvalue()
