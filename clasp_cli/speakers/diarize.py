"""The voices of one recording, their turns, and the voice and speaker vector of each window.

The recording is heard 10 s at a time. In each chunk the segmentation model says which of up
to three local speakers speaks in each frame. CAM++ then hears, for each local speaker, the
`crop_s` seconds of the chunk where it speaks alone most, and gives it a vector (hearing all of
every chunk ran at 49-63x real time on 2 cores, 2 s crops at 102x, and told the Fish Fillets
training voices apart as well: docs/speakers.md). Those vectors,
clustered (cluster.ahc), tie the chunks' local speakers into the recording's voices. Each window
takes the voice that speaks alone in most of it, and the vector of that voice's local speaker in
the chunk where it speaks most of the window: what query by voice compares.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass, field
from typing import Iterable, Sequence

import numpy as np

from .cluster import ahc, centroids
from .embed import MIN_SAMPLES, SpeakerEncoder, Stats, trunk_times
from .segment import CHUNK_SAMPLES, FRAME_CENTRE, FRAME_STEP, FRAMES, LOCAL_SPEAKERS, SAMPLE_RATE, Segmenter, frame_times

CHUNK_S = CHUNK_SAMPLES / SAMPLE_RATE
FRAME_S = FRAME_STEP / SAMPLE_RATE


@dataclass(frozen=True)
class DiarizeConfig:
    """How voices are heard and told apart (chosen on the Fish Fillets training levels: docs/speakers.md)."""

    same_voice: float = 0.3  # average cosine at which two groups of one recording are one voice
    min_embed_s: float = 1.0  # a local speaker with less speech alone in its crop is assigned, not clustered
    crop_s: float = 2.0  # seconds of a chunk CAM++ hears per local speaker
    min_turn_s: float = 0.25  # shorter bursts are not turns
    overlap_at: float = 1.0  # a frame whose pair classes are this likely together is two voices (Segmenter.activity)
    bridge_s: float = 0.5  # a voice silent for less than this keeps its turn
    max_clustered: int = 400  # longest local speakers clustered; the rest join the nearest voice
    batch: int = 8  # chunks per segmentation call


@dataclass
class Voice:
    vector: np.ndarray  # unit, 192-d
    seconds: float  # speech, alone or overlapped


@dataclass
class Turn:
    start: float
    end: float
    voice: int  # index into Diarization.voices
    overlap: bool  # another voice speaks during part of it


@dataclass
class Diarization:
    voices: list[Voice]
    turns: list[Turn]
    window_voice: list[int | None]  # per window: index into voices, None where no voice was found
    window_vectors: np.ndarray  # per window: its speaker vector (zeros where None)
    seconds: float = 0.0  # of audio heard


@dataclass
class _Local:
    chunk: int
    k: int
    solo: Stats  # CAM++ frames of the crop where it speaks alone
    active: Stats  # ... where it speaks at all
    seconds: float  # active in the whole chunk, in segmentation frames


@dataclass
class _WindowFrames:
    """Segmentation frames of one window, per (chunk, local speaker): alone, and at all."""

    solo: dict[tuple[int, int], int] = field(default_factory=dict)
    active: dict[tuple[int, int], int] = field(default_factory=dict)


@dataclass
class Heard:
    """What the models heard in one recording (Diarizer.hear), to decide its voices from."""

    acts: list[np.ndarray]  # per chunk: (FRAMES, 3) local speaker activity
    locals: list[_Local]
    windows: list[_WindowFrames]
    seconds: float


class Diarizer:
    """Both models, loaded once; call it on each recording."""

    def __init__(self, cfg: DiarizeConfig = DiarizeConfig(), threads: int | None = None):
        self.cfg = cfg
        self.segmenter = Segmenter(threads)
        self.encoder = SpeakerEncoder(threads)

    def __call__(self, blocks: Iterable[np.ndarray], windows: Sequence[tuple[float, float]]) -> Diarization:
        """blocks: the recording at 16 kHz in consecutive 10 s blocks (audio.stream_audio with
        block_seconds=10); windows: (start, end) seconds, sorted by start."""
        return self.decide(self.hear(blocks, windows))

    def hear(self, blocks: Iterable[np.ndarray], windows: Sequence[tuple[float, float]]) -> Heard:
        """What both models make of a recording, before any choice of how alike is the same voice."""
        cfg = self.cfg
        starts = [w[0] for w in windows]
        wframes = [_WindowFrames() for _ in windows]
        acts: list[np.ndarray] = []
        locals_: list[_Local] = []
        pending: list[np.ndarray] = []
        heard = 0.0

        def run(batch: list[np.ndarray]) -> None:
            first = len(acts)
            padded = np.zeros((len(batch), CHUNK_SAMPLES), dtype=np.float32)
            for i, b in enumerate(batch):
                padded[i, :b.size] = b
            act = self.segmenter.activity(padded, cfg.overlap_at)
            crops: list[tuple[int, int, int, int]] = []  # (chunk in batch, local speaker, first sample, last)
            for i, b in enumerate(batch):
                a = act[i] & (frame_times() < b.size / SAMPLE_RATE)[:, None]
                acts.append(a)
                self._window_frames(first + i, a, windows, starts, wframes)
                crops += [(i, k, *span) for k, span in self._crops(a, b.size)]
            # Crops of one length (most are crop_s long) run as one batch.
            feats = self.encoder.frames([batch[i][s:e] for i, _, s, e in crops])
            for (i, k, s, e), f in zip(crops, feats):
                a = act[i]
                t = s / SAMPLE_RATE + trunk_times(len(f))
                idx = np.clip(np.rint((t * SAMPLE_RATE - FRAME_CENTRE) / FRAME_STEP).astype(int), 0, FRAMES - 1)
                on = a[idx]
                solo, al = Stats(), Stats()
                solo.add(f[on[:, k] & (on.sum(axis=1) == 1)])
                al.add(f[on[:, k]])
                locals_.append(_Local(first + i, k, solo, al, float(acts[first + i][:, k].sum() * FRAME_S)))

        for block in blocks:
            heard += block.size / SAMPLE_RATE
            pending.append(np.asarray(block, dtype=np.float32))
            if len(pending) == cfg.batch:
                run(pending)
                pending = []
        if pending:
            run(pending)
        return Heard(acts, locals_, wframes, heard)

    def _crops(self, act: np.ndarray, n_samples: int) -> list[tuple[int, tuple[int, int]]]:
        """For each local speaker heard in a chunk: the crop_s of samples where it speaks alone most."""
        width = min(int(self.cfg.crop_s / FRAME_S), FRAMES)
        out = []
        solo = act & (act.sum(axis=1) == 1)[:, None]
        for k in range(LOCAL_SPEAKERS):
            if not act[:, k].any():
                continue
            weight = solo[:, k] if solo[:, k].any() else act[:, k]
            run = np.convolve(weight.astype(np.int32), np.ones(width, dtype=np.int32), mode="valid")
            f0 = int(np.argmax(run))
            s = max(0, f0 * FRAME_STEP)
            e = min(n_samples, s + int(self.cfg.crop_s * SAMPLE_RATE))
            s = max(0, e - int(self.cfg.crop_s * SAMPLE_RATE))  # full length where the chunk allows
            if e - s >= MIN_SAMPLES:
                out.append((k, (s, e)))
        return out

    @staticmethod
    def _window_frames(c: int, act: np.ndarray, windows, starts, wframes: list[_WindowFrames]) -> None:
        t0 = c * CHUNK_S
        t = t0 + frame_times()
        solo = act & (act.sum(axis=1) == 1)[:, None]
        lo = max(0, bisect.bisect_right(starts, t0) - 1)
        while lo > 0 and windows[lo - 1][1] > t0:
            lo -= 1
        for w in range(lo, len(windows)):
            ws, we = windows[w]
            if ws >= t0 + CHUNK_S:
                break
            inside = (t >= ws) & (t < we)
            if not inside.any():
                continue
            for k in range(LOCAL_SPEAKERS):
                n_solo, n_act = int((inside & solo[:, k]).sum()), int((inside & act[:, k]).sum())
                if n_solo:
                    wframes[w].solo[(c, k)] = n_solo
                if n_act:
                    wframes[w].active[(c, k)] = n_act

    def decide(self, h: Heard, cfg: DiarizeConfig | None = None) -> Diarization:
        """The voices, turns and window voices of a recording heard (cfg: this Diarizer's by default)."""
        cfg, enc = cfg or self.cfg, self.encoder
        acts, locals_, wframes, heard = h.acts, h.locals, h.windows, h.seconds
        if not locals_:
            return Diarization([], [], [None] * len(wframes), np.zeros((len(wframes), enc.dim), np.float32), heard)
        vecs = enc.pool([lo.solo if lo.solo.seconds >= 0.2 else lo.active for lo in locals_])
        solo_s = np.array([lo.solo.seconds for lo in locals_])
        strong = np.flatnonzero(solo_s >= cfg.min_embed_s)
        if len(strong) == 0:
            strong = np.flatnonzero(solo_s >= solo_s.max())
        strong = strong[np.argsort(-solo_s[strong], kind="stable")[:cfg.max_clustered]]
        labels_strong = ahc(vecs[strong], cfg.same_voice, weights=solo_s[strong])
        cent = centroids(vecs[strong], labels_strong, solo_s[strong])
        label = np.argmax(vecs @ cent.T, axis=1)
        label[strong] = labels_strong
        index_of = {(lo.chunk, lo.k): i for i, lo in enumerate(locals_)}
        voice_of = {key: int(label[i]) for key, i in index_of.items()}
        n_voices = len(cent)
        seconds = np.zeros(n_voices)
        for i, lo in enumerate(locals_):
            seconds[label[i]] += lo.seconds
        voices = [Voice(cent[v].astype(np.float32), float(seconds[v])) for v in range(n_voices)]
        turns = _turns(acts, voice_of, n_voices, cfg)
        window_voice: list[int | None] = []
        wvecs = np.zeros((len(wframes), enc.dim), dtype=np.float32)
        for w, wf in enumerate(wframes):
            counts = {key: n for key, n in (wf.solo or wf.active).items() if key in voice_of}
            if not counts:
                window_voice.append(None)
                continue
            per: dict[int, int] = {}
            for key, n in counts.items():
                per[voice_of[key]] = per.get(voice_of[key], 0) + n
            v = max(per, key=lambda x: per[x])
            window_voice.append(v)
            best = max((key for key in counts if voice_of[key] == v), key=lambda key: counts[key])
            wvecs[w] = vecs[index_of[best]]
        return Diarization(voices, turns, window_voice, wvecs, heard)


def _turns(acts: list[np.ndarray], voice_of: dict, n_voices: int, cfg: DiarizeConfig) -> list[Turn]:
    if not acts:
        return []
    frames = np.zeros((len(acts) * FRAMES, n_voices), dtype=bool)
    for c, a in enumerate(acts):
        for k in range(LOCAL_SPEAKERS):
            v = voice_of.get((c, k))
            if v is not None:
                frames[c * FRAMES:(c + 1) * FRAMES, v] |= a[:, k]
    times = (np.arange(len(frames)) // FRAMES) * CHUNK_S + frame_times()[np.arange(len(frames)) % FRAMES]
    bridge = int(round(cfg.bridge_s / FRAME_S))
    turns: list[Turn] = []
    for v in range(n_voices):
        on = frames[:, v].copy()
        idx = np.flatnonzero(on)
        if len(idx) == 0:
            continue
        gaps = np.flatnonzero(np.diff(idx) > 1)
        for g in gaps:  # a short silence inside a turn is bridged
            if idx[g + 1] - idx[g] - 1 <= bridge:
                on[idx[g]:idx[g + 1]] = True
        edges = np.flatnonzero(np.diff(np.concatenate([[0], on.astype(np.int8), [0]])))
        for a, b in zip(edges[::2], edges[1::2]):
            start, end = times[a] - FRAME_S / 2, times[b - 1] + FRAME_S / 2
            if end - start < cfg.min_turn_s:
                continue
            others = np.delete(frames[a:b], v, axis=1)
            turns.append(Turn(round(float(start), 3), round(float(end), 3), v, bool(others.any())))
    turns.sort(key=lambda t: (t.start, t.voice))
    return turns

