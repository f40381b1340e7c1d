"""Cut long recordings into timed passages at pauses.

Two streaming passes over the file: the first measures frame energies (a few MB for hours of
audio) and plans passages at pauses; the second cuts those spans out. Neither holds more than
one block plus one passage of audio.

Passages cover speech regions merged up to `max_seconds`; consecutive passages share their
boundary region, so a sentence cut at one boundary is whole in the neighbouring passage.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Iterator

import numpy as np

from .audio import SAMPLE_RATE, stream_audio
from .errors import AudioError


@dataclass(frozen=True)
class PassageConfig:
    min_seconds: float = 3.0
    max_seconds: float = 12.0
    min_pause: float = 0.3  # silence shorter than this does not end a speech region
    min_speech: float = 0.2  # shorter bursts (clicks) are ignored
    hard_overlap: float = 1.5  # overlap when speech runs past max_seconds without a pause
    frame_seconds: float = 0.02
    silence_dbfs: float = -55.0  # a file whose loudest frame is below this is silent


@dataclass(frozen=True)
class Span:
    start: float
    end: float

    @property
    def duration(self) -> float:
        return self.end - self.start


def _levels(x: np.ndarray, hop: int) -> np.ndarray:
    n = x.size // hop
    frames = x[: n * hop].reshape(n, hop)
    return 10 * np.log10(np.mean(frames.astype(np.float64) ** 2, axis=1) + 1e-12)


def has_speech(wave: np.ndarray, sample_rate: int = SAMPLE_RATE, cfg: PassageConfig = PassageConfig()) -> bool:
    """Whether a waveform holds anything loud enough to be speech (the test indexing applies)."""
    return bool(speech_regions(_levels(np.asarray(wave, np.float32), int(cfg.frame_seconds * sample_rate)), cfg))


def frame_levels(path: str | Path, cfg: PassageConfig, sample_rate: int = SAMPLE_RATE) -> tuple[np.ndarray, float]:
    """dBFS per frame, and the file's duration in seconds."""
    hop = int(cfg.frame_seconds * sample_rate)
    levels, carry, total = [], np.zeros(0, np.float32), 0
    for block in stream_audio(path, sample_rate):
        total += block.size
        x = np.concatenate([carry, block])
        n = x.size // hop
        frames = x[: n * hop].reshape(n, hop)
        levels.append(10 * np.log10(np.mean(frames.astype(np.float64) ** 2, axis=1) + 1e-12))
        carry = x[n * hop :]
    if carry.size:
        levels.append(np.array([10 * np.log10(np.mean(carry.astype(np.float64) ** 2) + 1e-12)]))
    return np.concatenate(levels) if levels else np.zeros(0), total / sample_rate


def speech_regions(levels: np.ndarray, cfg: PassageConfig) -> list[Span]:
    """Runs of frames loud enough to be speech, with short pauses bridged."""
    if levels.size == 0 or levels.max() < cfg.silence_dbfs:
        return []
    # Adaptive threshold: well above the noise floor, but never more than 45 dB under the peak.
    floor = np.percentile(levels, 10)
    threshold = max(floor + 10.0, np.percentile(levels, 99) - 45.0, cfg.silence_dbfs)
    voiced = levels > threshold
    fs = cfg.frame_seconds
    edges = np.flatnonzero(np.diff(np.concatenate([[0], voiced.astype(np.int8), [0]])))
    runs = [(float(a * fs), float(b * fs)) for a, b in zip(edges[::2], edges[1::2])]
    return bridge_pauses(runs, cfg.min_pause, cfg.min_speech)


def bridge_pauses(runs: list, min_pause: float, min_speech: float) -> list[Span]:
    """Speech runs (start, end) with pauses shorter than min_pause bridged; bursts under min_speech dropped."""
    merged: list[list[float]] = []
    for a, b in runs:
        if merged and a - merged[-1][1] < min_pause:
            merged[-1][1] = b
        else:
            merged.append([a, b])
    return [Span(a, b) for a, b in merged if b - a >= min_speech]


def plan_passages(regions: list[Span], duration: float, cfg: PassageConfig) -> list[Span]:
    """Merge speech regions into passages of about min..max seconds, cutting only at pauses."""
    pieces: list[Span] = []
    step = cfg.max_seconds - cfg.hard_overlap
    for r in regions:  # speech with no pause for longer than max: fixed windows with overlap
        if r.duration <= cfg.max_seconds:
            pieces.append(r)
            continue
        s = r.start
        while s < r.end:
            e = min(s + cfg.max_seconds, r.end)
            pieces.append(Span(s, e))
            if e >= r.end:
                break
            s += step
    passages: list[Span] = []
    i = 0
    while i < len(pieces):
        j = i
        while j + 1 < len(pieces) and pieces[j + 1].end - pieces[i].start <= cfg.max_seconds:
            j += 1
        passages.append(Span(pieces[i].start, pieces[j].end))
        if j + 1 >= len(pieces):
            break
        # Share the boundary piece with the next passage unless this passage is that piece alone.
        i = j if j > i and pieces[j].duration < cfg.min_seconds else j + 1
    # Pad short passages with surrounding context (pauses included) up to min_seconds.
    out = []
    for p in passages:
        if p.duration < cfg.min_seconds:
            pad = (cfg.min_seconds - p.duration) / 2
            p = Span(max(0.0, p.start - pad), min(duration, p.end + pad))
        out.append(Span(round(float(p.start), 3), round(float(p.end), 3)))
    return out


def find_passages(path: str | Path, cfg: PassageConfig = PassageConfig()) -> tuple[list[Span], float]:
    """Passages of a recording and its duration. A silent file raises AudioError."""
    levels, duration = frame_levels(path, cfg)
    regions = speech_regions(levels, cfg)
    if not regions:
        raise AudioError(path, "no speech found (silent or too quiet)")
    return plan_passages(regions, duration, cfg), duration


def iter_passage_audio(path: str | Path, spans: list[Span], sample_rate: int = SAMPLE_RATE) -> Iterator[tuple[Span, np.ndarray]]:
    """Yield each span with its samples, streaming the file once (spans sorted by start)."""
    buf = np.zeros(0, np.float32)
    buf_start = 0  # sample index of buf[0]
    k = 0
    blocks = stream_audio(path, sample_rate, block_seconds=30.0)
    done = False
    while k < len(spans):
        a, b = int(spans[k].start * sample_rate), int(spans[k].end * sample_rate)
        while not done and buf_start + buf.size < b:
            try:
                buf = np.concatenate([buf, next(blocks)])
            except StopIteration:
                done = True
        yield spans[k], buf[max(0, a - buf_start) : b - buf_start].copy()
        k += 1
        if k < len(spans):  # drop audio no later span needs
            keep_from = int(spans[k].start * sample_rate) - buf_start
            if keep_from > 0:
                buf, buf_start = buf[keep_from:], buf_start + keep_from


# -- sentence-scale windows (voice activity from Silero VAD) -------------------------------------


@dataclass(frozen=True)
class WindowConfig:
    """Windows about one sentence long: a one-sentence query then meets one sentence of speech,
    not two or three that dilute the match."""

    min_seconds: float = 1.0  # shorter speech joins its neighbour (or is padded with context)
    max_seconds: float = 6.0  # longer speech with no pause is covered by overlapping windows
    overlap: float = 2.0
    min_pause: float = 0.25  # a pause at least this long ends a sentence
    min_speech: float = 0.25
    pad: float = 0.1  # context kept on each side of the speech
    vad_on: float = 0.5  # speech starts where the probability rises above this ...
    vad_off: float = 0.35  # ... and ends where it falls below this


def vad_regions(probs: np.ndarray, chunk_seconds: float, cfg: WindowConfig) -> list[Span]:
    """Speech runs from per-chunk speech probabilities, with hysteresis and short pauses bridged."""
    runs: list[list[float]] = []
    on = False
    for i, p in enumerate(probs):
        if not on and p >= cfg.vad_on:
            on, start = True, i
        elif on and p < cfg.vad_off:
            on = False
            runs.append([start * chunk_seconds, i * chunk_seconds])
    if on:
        runs.append([start * chunk_seconds, len(probs) * chunk_seconds])
    return bridge_pauses(runs, cfg.min_pause, cfg.min_speech)


def plan_windows(regions: list[Span], duration: float, cfg: WindowConfig) -> list[Span]:
    """One window per sentence-like speech region, long ones split with overlap, short ones joined."""
    joined: list[Span] = []
    for r in regions:
        prev = joined[-1] if joined else None
        if prev is not None and (prev.duration < cfg.min_seconds or r.duration < cfg.min_seconds) \
                and r.end - prev.start <= cfg.max_seconds:
            joined[-1] = Span(prev.start, r.end)
        else:
            joined.append(r)
    windows: list[Span] = []
    step = max(cfg.max_seconds - cfg.overlap, cfg.max_seconds / 2)  # a tiny --max-seconds still advances
    for r in joined:
        if r.duration <= cfg.max_seconds:
            windows.append(r)
            continue
        n = int(np.ceil((r.duration - cfg.max_seconds) / step)) + 1
        # Evenly spread starts: the last window ends exactly at the region's end.
        for s in np.linspace(r.start, r.end - cfg.max_seconds, n):
            windows.append(Span(float(s), float(s) + cfg.max_seconds))
    out = []
    for w in windows:
        a, b = max(0.0, w.start - cfg.pad), min(duration, w.end + cfg.pad)
        if b - a < cfg.min_seconds:
            extra = (cfg.min_seconds - (b - a)) / 2
            a, b = max(0.0, a - extra), min(duration, b + extra)
        out.append(Span(round(a, 3), round(b, 3)))
    return out


def find_windows(path: str | Path, cfg: WindowConfig = WindowConfig(), vad_model: Path | None = None) -> tuple[list[Span], float]:
    """Sentence-scale windows of a recording and its duration; a file without speech raises AudioError.
    `vad_model`: another Silero ONNX file than the shipped one (benchmarks compare them)."""
    from .vad import CHUNK_SECONDS, SileroVAD

    vad = SileroVAD(model=vad_model)
    total = 0
    parts = []
    for block in stream_audio(path, SAMPLE_RATE):
        total += block.size
        parts.append(vad.feed(block))
    parts.append(vad.flush())
    duration = total / SAMPLE_RATE
    regions = vad_regions(np.concatenate(parts), CHUNK_SECONDS, cfg)
    if not regions:
        raise AudioError(path, "no speech found (silent or too quiet)")
    return plan_windows(regions, duration, cfg), duration


def find_spans(path: str | Path, cfg: "PassageConfig | WindowConfig") -> tuple[list[Span], float]:
    """The spans a config asks for: sentence windows (WindowConfig) or pause-cut passages."""
    if isinstance(cfg, WindowConfig):
        return find_windows(path, cfg)
    return find_passages(path, cfg)


# How an index cuts its recordings, by the name `clasp index --segmentation` takes. Windows are
# the default: on the validation archive (benchmarks/segmentation.py) clasp-base finds the right
# sentence for 0.744 of queries with them against 0.591 with 3-12 s passages.
SEGMENTATIONS: dict[str, type] = {"windows": WindowConfig, "passages": PassageConfig}
DEFAULT_SEGMENTATION = "windows"


def segmentation_name(cfg: "PassageConfig | WindowConfig") -> str:
    return "windows" if isinstance(cfg, WindowConfig) else "passages"


def segmentation_to_json(cfg: "PassageConfig | WindowConfig") -> str:
    return json.dumps({"kind": segmentation_name(cfg), **asdict(cfg)}, sort_keys=True)


def segmentation_from_json(text: str) -> "PassageConfig | WindowConfig":
    """What an index recorded; settings this version does not know are dropped, missing ones default.
    ValueError when the text is not a segmentation."""
    try:
        d = json.loads(text)
        cls = SEGMENTATIONS[d.get("kind", "passages")]
        known = {f.name for f in fields(cls)}
        return cls(**{k: float(v) for k, v in d.items() if k in known})
    except (ValueError, KeyError, TypeError, AttributeError) as e:
        raise ValueError(f"not a segmentation setting: {text[:80]!r}") from e
