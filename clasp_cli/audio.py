"""Decode any common audio format to mono 16 kHz float32, whole or in blocks.

soundfile (libsndfile) reads wav/flac/ogg/opus/mp3 quickly; everything else ffmpeg knows
(m4a, mp4, webm, aac, ...) goes through PyAV. Long files are streamed block by block so a
3-hour recording never sits in memory at once.
"""

from __future__ import annotations

import contextlib
import math
import os
import sys
import re
import threading
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np

from .errors import AudioError, PartialAudioWarning

SAMPLE_RATE = 16_000


@dataclass(frozen=True)
class AudioInfo:
    path: str
    duration: float  # seconds; estimated from the header where the container gives one
    sample_rate: int
    channels: int
    backend: str  # "soundfile" or "pyav"


def _check_file(path: Path) -> None:
    """Fail early, with a reason a person understands, before any decoder sees the file."""
    if path.is_symlink() and not path.exists():
        raise AudioError(path, "broken symbolic link")
    if not path.exists():
        raise AudioError(path, "file not found")
    if path.is_dir():
        raise AudioError(path, "is a directory, not an audio file")
    if not os.access(path, os.R_OK):
        raise AudioError(path, "permission denied")
    try:
        size = path.stat().st_size
    except OSError as e:
        raise AudioError(path, e.strerror or str(e)) from None
    if size == 0:
        raise AudioError(path, "empty file (0 bytes)")


def _open_soundfile(path: Path):
    import soundfile as sf

    try:
        with _quiet_native_stderr():
            return sf.SoundFile(str(path))
    except Exception:
        return None


class _NativeStderr:
    """fd 2 is one for the process: threads that open files at once (the speaker pass beside the
    embedding and the reading) share one hush. The first to enter sends fd 2 to /dev/null and the
    last to leave restores it; two independent save-and-restore pairs, interleaved, would leave
    it on /dev/null for good, and every later error and note with it."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._depth = 0
        self._saved: int | None = None

    def hush(self) -> None:
        with self._lock:
            self._depth += 1
            if self._depth > 1:
                return
            try:
                saved = os.dup(2)
            except OSError:
                return  # nothing hushed: the libraries' lines show, nothing is lost
            try:
                sys.stderr.flush()
                null = os.open(os.devnull, os.O_WRONLY)
                try:
                    os.dup2(null, 2)
                finally:
                    os.close(null)
            except OSError:
                os.close(saved)
                return
            self._saved = saved

    def restore(self) -> None:
        with self._lock:
            self._depth -= 1
            if self._depth == 0 and self._saved is not None:
                os.dup2(self._saved, 2)
                os.close(self._saved)
                self._saved = None


_native_stderr = _NativeStderr()


@contextlib.contextmanager
def _quiet_native_stderr():
    """libmpg123 prints its own lines ("Warning: Xing stream size off...") straight to fd 2 while
    an MP3 is opened; clasp says what matters about a file in its own words, so hush fd 2 for
    that moment (a progress bar redraw lost meanwhile is redrawn)."""
    _native_stderr.hush()
    try:
        yield
    finally:
        _native_stderr.restore()


def _av_error(path: Path, exc: Exception) -> AudioError:
    msg = str(exc).strip() or type(exc).__name__
    # PyAV messages carry errno and path noise; keep the human part.
    msg = re.sub(r"^\[Errno -?\d+\]\s*", "", msg.split(": '", 1)[0])
    return AudioError(path, f"not a readable audio file ({msg})")


def audio_info(path: str | Path) -> AudioInfo:
    """Read the header only: duration, native rate and channel count."""
    path = Path(path)
    _check_file(path)
    f = _open_soundfile(path)
    if f is not None:
        with f:
            if f.frames == 0:
                raise AudioError(path, "contains no audio samples")
            return AudioInfo(str(path), f.frames / f.samplerate, f.samplerate, f.channels, "soundfile")
    import av

    try:
        with av.open(str(path)) as c:
            if not c.streams.audio:
                raise AudioError(path, "has no audio stream")
            s = c.streams.audio[0]
            if c.duration is not None:
                dur = c.duration / 1_000_000
            elif s.duration is not None and s.time_base is not None:
                dur = float(s.duration * s.time_base)
            else:
                dur = float("nan")
            return AudioInfo(str(path), dur, s.rate or 0, s.channels or 0, "pyav")
    except AudioError:
        raise
    except Exception as e:
        raise _av_error(path, e) from None


def _soundfile_chunks(f, path: Path, block: int, sample_rate: int, warn: bool = True) -> Iterator[np.ndarray]:
    import soxr

    resampler = None
    if f.samplerate != sample_rate:
        resampler = soxr.ResampleStream(f.samplerate, sample_rate, 1, dtype="float32")
    # Read in native-rate chunks sized so each yields about one output block.
    native = max(1, math.ceil(block * f.samplerate / sample_rate))
    done = 0  # native frames read and yielded
    try:
        while True:
            try:
                x = f.read(native, dtype="float32", always_2d=True)
            except Exception as e:
                # A damaged tail: go back to the last good block and read on in small steps, so
                # everything up to the damage is kept (a truncated download is mostly fine).
                x, detail = _read_up_to_damage(f, done, str(e))
                if done + x.shape[0] == 0:
                    raise
                if warn:
                    warnings.warn(PartialAudioWarning(path, (done + x.shape[0]) / f.samplerate, detail), stacklevel=2)
                native = -1  # marks the last chunk
            last = native < 0 or x.shape[0] < native
            done += x.shape[0]
            if last and native > 0:
                short = _cut_short(f, path, done)
                if short and warn:
                    warnings.warn(PartialAudioWarning(path, done / f.samplerate, short), stacklevel=2)
            mono = x.mean(axis=1) if x.shape[1] > 1 else x[:, 0]
            if resampler is not None:
                mono = resampler.resample_chunk(np.ascontiguousarray(mono), last=last)
            if mono.size:
                yield mono.astype(np.float32, copy=False)
            if last:
                return
    except AudioError:
        raise
    except Exception as e:
        raise AudioError(path, f"decoding failed ({_short(e)})") from None


_WAV_BYTES = {"PCM_U8": 1, "PCM_S8": 1, "PCM_16": 2, "PCM_24": 3, "PCM_32": 4, "FLOAT": 4, "DOUBLE": 8, "ULAW": 1, "ALAW": 1}


def _cut_short(f, path: Path, done: int) -> str | None:
    """Why a file that decoded without an error still ended early, or None. A truncated WAV or
    MP3 keeps its header, which declares the full length; a truncated Ogg stream's last page
    lacks the end-of-stream flag."""
    declared = f.frames
    # A little slack: MP3 length estimates are off by encoder delay and padding.
    if declared > 0 and declared - done > max(0.5 * f.samplerate, 0.02 * declared):
        return f"the file ends early: its header declares {declared / f.samplerate:.1f} s"
    if f.format == "WAV":
        # libsndfile trims a WAV's length to the bytes present; the data chunk still says what was meant.
        try:
            with open(path, "rb") as fh:
                head = fh.read(65536)
                size = os.fstat(fh.fileno()).st_size
        except OSError:
            return None
        at = head.find(b"data", 12)
        if at >= 0 and at + 8 <= len(head):
            meant = int.from_bytes(head[at + 4 : at + 8], "little")
            present = size - (at + 8)
            frame_bytes = max(1, f.channels * _WAV_BYTES.get(f.subtype, 2))
            if meant != 0xFFFFFFFF and (meant - present) / frame_bytes > max(0.5 * f.samplerate, 0.02 * meant / frame_bytes):
                return f"the file ends early: its header declares {meant / frame_bytes / f.samplerate:.1f} s"
    if f.format == "OGG":
        try:
            with open(path, "rb") as fh:
                fh.seek(max(0, os.fstat(fh.fileno()).st_size - 65536))
                tail = fh.read()
        except OSError:
            return None
        at = tail.rfind(b"OggS")
        if at >= 0 and at + 5 < len(tail) and not tail[at + 5] & 0x04:
            return "the file ends early: its last Ogg page does not end the stream"
    return None


def _read_up_to_damage(f, good: int, error: str) -> tuple[np.ndarray, str]:
    step = 1024
    parts = []
    try:
        f.seek(good)
        while True:
            x = f.read(step, dtype="float32", always_2d=True)
            parts.append(x)
            if x.shape[0] < step:
                break
    except Exception:
        pass
    out = np.concatenate(parts) if parts else np.zeros((0, f.channels), np.float32)
    return out, _short(error)


def _short(e: object) -> str:
    # libsndfile says "Error : flac decoder lost sync."; keep the part a person reads.
    return re.sub(r"^(Error\s*:\s*)", "", str(e).strip()).rstrip(".") or type(e).__name__


def _pyav_chunks(path: Path, sample_rate: int, warn: bool = True) -> Iterator[np.ndarray]:
    import av

    try:
        container = av.open(str(path))
    except Exception as e:
        raise _av_error(path, e) from None
    with container:
        if not container.streams.audio:
            raise AudioError(path, "has no audio stream")
        stream = container.streams.audio[0]
        resampler = av.AudioResampler(format="flt", layout="mono", rate=sample_rate)
        got_any = False
        decoded = [0]  # output samples so far, for the warning naming where decoding stopped

        def frames():
            try:
                for frame in container.decode(stream):
                    yield from resampler.resample(frame)
            except av.error.InvalidDataError as e:
                # A damaged tail (interrupted download): keep what decoded, like ffmpeg does.
                if not got_any:
                    raise
                detail = re.sub(r"^\[Errno -?\d+\]\s*", "", str(e).split(": '", 1)[0])
                if warn:
                    warnings.warn(PartialAudioWarning(path, decoded[0] / sample_rate, detail), stacklevel=2)
            yield from resampler.resample(None)

        try:
            for fr in frames():
                a = fr.to_ndarray().reshape(-1).astype(np.float32, copy=False)
                if a.size:
                    got_any = True
                    decoded[0] += a.size
                    yield a
        except AudioError:
            raise
        except Exception as e:
            raise _av_error(path, e) from None


def _rebuffer(chunks: Iterator[np.ndarray], block: int) -> Iterator[np.ndarray]:
    """Turn chunks of any size into blocks of exactly `block` samples (the last may be shorter)."""
    pending: list[np.ndarray] = []
    have = 0
    for c in chunks:
        pending.append(c)
        have += c.size
        if have >= block:
            buf = np.concatenate(pending)
            n_full = buf.size // block
            for i in range(n_full):
                yield buf[i * block : (i + 1) * block]
            rest = buf[n_full * block :]
            pending, have = ([rest] if rest.size else []), rest.size
    if have:
        yield np.concatenate(pending)


def stream_audio(
    path: str | Path, sample_rate: int = SAMPLE_RATE, block_seconds: float = 60.0, warn: bool = True
) -> Iterator[np.ndarray]:
    """Yield consecutive mono float32 blocks of `block_seconds` at `sample_rate` (the last may be shorter).

    Raises AudioError naming the file when it cannot be read or holds no samples. A file that
    decodes only up to some point warns with PartialAudioWarning, unless `warn` is False (a
    second pass over a file whose first already warned, as on another thread: the warnings
    machinery is one for the whole process).
    """
    path = Path(path)
    _check_file(path)
    block = max(1, int(round(block_seconds * sample_rate)))
    f = _open_soundfile(path)
    chunks = (_soundfile_chunks(f, path, block, sample_rate, warn) if f is not None
              else _pyav_chunks(path, sample_rate, warn))
    empty = True
    try:
        for b in _rebuffer(chunks, block):
            empty = False
            yield b
    finally:
        if f is not None:
            f.close()
    if empty:
        raise AudioError(path, "contains no audio samples")


def load_audio(path: str | Path, sample_rate: int = SAMPLE_RATE, max_seconds: float | None = None) -> np.ndarray:
    """Decode a whole file (or its first `max_seconds`) to one mono float32 array."""
    parts: list[np.ndarray] = []
    have = 0
    limit = None if max_seconds is None else int(max_seconds * sample_rate)
    for b in stream_audio(path, sample_rate, block_seconds=30.0):
        parts.append(b)
        have += b.size
        if limit is not None and have >= limit:
            break
    out = np.concatenate(parts)
    return out[:limit] if limit is not None else out
