"""Make clean synthetic speech sound more like real recordings: noise, a room, a lossy codec,
a telephone line, another speaking rate.

numpy does the signal processing; PyAV does the codec round trip. Every function takes an
``rng`` (a ``numpy.random.Generator`` or an int seed), so the same seed gives the same audio.
All functions keep the sample rate of their input, and all but `speed` its length.
"""

from __future__ import annotations

import io
from dataclasses import asdict, dataclass
from typing import Sequence

import numpy as np

from ..errors import UsageError

NOISE_KINDS = ("white", "babble", "none")
CODECS = ("mp3", "opus")


def _rng(rng: np.random.Generator | int | None) -> np.random.Generator:
    return rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)


def power(x: np.ndarray) -> float:
    x = np.asarray(x, dtype=np.float64)
    return float(np.mean(x * x)) if x.size else 0.0


def snr_db(clean: np.ndarray, noisy: np.ndarray) -> float:
    """Signal-to-noise ratio of `noisy` against `clean`, in dB (noise = noisy - clean)."""
    noise = np.asarray(noisy, np.float64) - np.asarray(clean, np.float64)
    pn = power(noise)
    return float("inf") if pn == 0 else 10.0 * np.log10(power(clean) / pn)


# -- noise ----------------------------------------------------------------------------------------


def white_noise(n: int, rng: np.random.Generator | int | None = None) -> np.ndarray:
    return _rng(rng).standard_normal(n).astype(np.float32)


def babble_noise(
    n: int, sources: Sequence[np.ndarray], rng: np.random.Generator | int | None = None, talkers: int = 4
) -> np.ndarray:
    """The sum of `talkers` other utterances, each at unit RMS, looped and offset at random."""
    rng = _rng(rng)
    usable = [np.asarray(s, np.float32) for s in sources if np.asarray(s).size and power(s) > 0]
    if not usable:
        raise UsageError("babble noise needs at least one non-silent source utterance")
    out = np.zeros(n, np.float64)
    for _ in range(max(1, talkers)):
        s = usable[int(rng.integers(len(usable)))]
        s = s / np.sqrt(power(s))
        reps = int(np.ceil((n + s.size) / s.size)) + 1
        looped = np.tile(s, reps)
        start = int(rng.integers(s.size))
        out += looped[start : start + n]
    return out.astype(np.float32)


def add_noise(
    x: np.ndarray,
    snr: float,
    rng: np.random.Generator | int | None = None,
    kind: str = "white",
    sources: Sequence[np.ndarray] | None = None,
) -> np.ndarray:
    """`x` plus noise scaled so that 10·log10(P(x)/P(noise)) equals `snr` dB over the whole clip."""
    x = np.asarray(x, np.float32)
    if kind == "none" or x.size == 0:
        return x.copy()
    rng = _rng(rng)
    if kind == "white":
        noise = white_noise(x.size, rng)
    elif kind == "babble":
        noise = babble_noise(x.size, sources or [], rng)
    else:
        raise UsageError(f"unknown noise kind {kind!r} (choose from {', '.join(NOISE_KINDS)})")
    ps, pn = power(x), power(noise)
    if ps == 0 or pn == 0:
        return x.copy()
    gain = np.sqrt(ps / (pn * 10.0 ** (snr / 10.0)))
    return (x + gain * noise).astype(np.float32)


# -- reverberation --------------------------------------------------------------------------------


def room_impulse_response(
    sample_rate: int, rt60: float, rng: np.random.Generator | int | None = None, predelay: float = 0.004
) -> np.ndarray:
    """A synthetic room: a direct path, then exponentially decaying noise (60 dB down after rt60 s)."""
    rng = _rng(rng)
    rt60 = float(max(rt60, 0.05))
    n = int(rt60 * sample_rate)
    t = np.arange(n) / sample_rate
    tail = rng.standard_normal(n) * np.exp(-6.9078 * t / rt60)  # ln(1000) = 6.9078 -> -60 dB
    # Early reflections are brighter than the late tail: smooth the tail a little (1-pole low-pass).
    alpha = 0.3
    tail = np.convolve(tail, [1 - alpha, alpha], mode="same")
    h = np.zeros(int(predelay * sample_rate) + n, np.float64)
    h[0] = 1.0
    h[int(predelay * sample_rate) :] += 0.5 * tail / (np.sqrt(np.sum(tail * tail)) + 1e-12)
    return h


def reverb(
    x: np.ndarray,
    sample_rate: int = 16_000,
    rng: np.random.Generator | int | None = None,
    rt60: float | None = None,
    rt60_range: tuple[float, float] = (0.2, 0.8),
) -> np.ndarray:
    """Convolve with a synthetic room impulse response; same length, same peak level as the input."""
    x = np.asarray(x, np.float32)
    if x.size == 0:
        return x.copy()
    rng = _rng(rng)
    if rt60 is None:
        rt60 = float(rng.uniform(*rt60_range))
    h = room_impulse_response(sample_rate, rt60, rng)
    n = x.size + h.size - 1
    nfft = 1 << (n - 1).bit_length()
    y = np.fft.irfft(np.fft.rfft(x, nfft) * np.fft.rfft(h, nfft), nfft)[: x.size]
    peak_in, peak_out = float(np.max(np.abs(x))), float(np.max(np.abs(y)))
    if peak_out > 0:
        y *= peak_in / peak_out
    return y.astype(np.float32)


# -- lossy codec ----------------------------------------------------------------------------------


def codec(
    x: np.ndarray,
    sample_rate: int = 16_000,
    fmt: str = "mp3",
    bitrate_kbps: int = 16,
) -> np.ndarray:
    """Encode to `fmt` (mp3 or opus) at `bitrate_kbps` and decode back: same length and rate."""
    import av

    x = np.asarray(x, np.float32)
    if x.size == 0:
        return x.copy()
    if fmt == "mp3":
        container_fmt, codec_name, rate = "mp3", "libmp3lame", sample_rate
    elif fmt == "opus":
        container_fmt, codec_name, rate = "ogg", "libopus", 48_000 if sample_rate not in (8000, 12000, 16000, 24000, 48000) else sample_rate
    else:
        raise UsageError(f"unknown codec {fmt!r} (choose from {', '.join(CODECS)})")
    src = x
    if rate != sample_rate:
        import soxr

        src = soxr.resample(x, sample_rate, rate).astype(np.float32)
    buf = io.BytesIO()
    with av.open(buf, mode="w", format=container_fmt) as out:
        stream = out.add_stream(codec_name, rate=rate)
        stream.bit_rate = int(bitrate_kbps * 1000)
        stream.layout = "mono"
        enc_fmt = "s16" if codec_name == "libopus" else "s16p"
        pcm = (np.clip(src, -1.0, 1.0) * 32767).astype(np.int16).reshape(1, -1)
        frame = av.AudioFrame.from_ndarray(pcm, format=enc_fmt, layout="mono")
        frame.sample_rate = rate
        for packet in stream.encode(frame):
            out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    buf.seek(0)
    parts: list[np.ndarray] = []
    with av.open(buf, mode="r") as inp:
        res = av.AudioResampler(format="flt", layout="mono", rate=sample_rate)
        for fr in inp.decode(audio=0):
            for o in res.resample(fr):
                parts.append(o.to_ndarray().reshape(-1))
        for o in res.resample(None):
            parts.append(o.to_ndarray().reshape(-1))
    y = np.concatenate(parts) if parts else np.zeros(0, np.float32)
    if y.size >= x.size:
        y = y[: x.size]
    else:
        y = np.concatenate([y, np.zeros(x.size - y.size, np.float32)])
    return y.astype(np.float32)


# -- telephone line and speaking rate -------------------------------------------------------------

PHONE_RATE = 8_000
PHONE_BAND_HZ = (300.0, 3400.0)


def _mu_law(x: np.ndarray, mu: float = 255.0) -> np.ndarray:
    """G.711 mu-law at 8 bits: what a digital phone line does to each sample."""
    x = np.clip(x, -1.0, 1.0)
    y = np.sign(x) * np.log1p(mu * np.abs(x)) / np.log1p(mu)
    y = np.round(y * 127.0) / 127.0
    return np.sign(y) * np.expm1(np.abs(y) * np.log1p(mu)) / mu


def telephone(x: np.ndarray, sample_rate: int = 16_000) -> np.ndarray:
    """A narrowband phone channel: down to 8 kHz, the 300-3400 Hz band, mu-law, and back.

    Recordings of phone calls, voicemail and IVR prompts (the Asterisk validation speech among
    them) sound like this; a model that only heard wideband speech has never met it."""
    import soxr

    x = np.asarray(x, np.float32)
    if x.size == 0:
        return x.copy()
    y = soxr.resample(x, sample_rate, PHONE_RATE).astype(np.float64) if sample_rate != PHONE_RATE else x.astype(np.float64)
    spec = np.fft.rfft(y)
    f = np.fft.rfftfreq(y.size, 1.0 / PHONE_RATE)
    lo, hi = PHONE_BAND_HZ
    # Raised-cosine skirts 100 Hz wide rather than a brick wall, which would ring.
    gain = np.clip((f - (lo - 100.0)) / 100.0, 0.0, 1.0) * np.clip(((hi + 100.0) - f) / 100.0, 0.0, 1.0)
    y = np.fft.irfft(spec * (0.5 - 0.5 * np.cos(np.pi * gain)), y.size)
    peak = float(np.max(np.abs(y)))
    if peak > 0.99:
        y *= 0.99 / peak
    y = _mu_law(y)
    if sample_rate != PHONE_RATE:
        y = soxr.resample(y.astype(np.float32), PHONE_RATE, sample_rate)
    out = np.zeros(x.size, np.float32)
    out[: min(x.size, y.size)] = y[: x.size]
    return out


SPEEDS = (0.9, 1.1)


def speed(x: np.ndarray, factor: float, sample_rate: int = 16_000) -> np.ndarray:
    """Play `factor` times faster, pitch and tempo together (Kaldi-style speed perturbation)."""
    import soxr

    x = np.asarray(x, np.float32)
    if x.size == 0 or factor == 1.0:
        return x.copy()
    return soxr.resample(x, sample_rate, sample_rate / float(factor)).astype(np.float32)


# -- the whole chain ------------------------------------------------------------------------------


@dataclass(frozen=True)
class AugmentConfig:
    """What to do to each clean utterance; probabilities are per utterance."""

    noise: str = "white"  # white | babble | none
    noise_prob: float = 0.5
    snr_db: tuple[float, float] = (5.0, 30.0)  # drawn uniformly; (x, x) for a fixed SNR
    reverb_prob: float = 0.3
    rt60: tuple[float, float] = (0.2, 0.8)
    codec_prob: float = 0.2
    codecs: tuple[str, ...] = CODECS
    bitrates_kbps: tuple[int, ...] = (16, 24)
    phone_prob: float = 0.0  # telephone line (8 kHz, 300-3400 Hz, mu-law)
    speed_prob: float = 0.0  # speed perturbation by one of `speeds`
    speeds: tuple[float, ...] = SPEEDS

    def __post_init__(self) -> None:
        if self.noise not in NOISE_KINDS:
            raise UsageError(f"unknown noise kind {self.noise!r} (choose from {', '.join(NOISE_KINDS)})")
        for name in ("noise_prob", "reverb_prob", "codec_prob", "phone_prob", "speed_prob"):
            p = getattr(self, name)
            if not 0.0 <= p <= 1.0:
                raise UsageError(f"{name.replace('_', ' ')} must be between 0 and 1 (got {p})")
        if self.snr_db[0] > self.snr_db[1]:
            raise UsageError(f"SNR range {self.snr_db} is reversed")
        for c in self.codecs:
            if c not in CODECS:
                raise UsageError(f"unknown codec {c!r} (choose from {', '.join(CODECS)})")

    @property
    def active(self) -> bool:
        return ((self.noise != "none" and self.noise_prob > 0) or self.reverb_prob > 0 or self.codec_prob > 0
                or self.phone_prob > 0 or self.speed_prob > 0)


@dataclass(frozen=True)
class AugmentPlan:
    """The draws for one utterance, made up front so a plan is reproducible and can be recorded."""

    rt60: float | None = None
    noise: str = "none"
    snr_db: float | None = None
    codec: str | None = None
    bitrate_kbps: int | None = None
    seed: int = 0
    phone: bool = False
    speed: float | None = None

    def key(self) -> dict:
        """What names this plan's audio. The telephone and speed fields appear only when used, so a
        corpus planned before they existed keeps its file names and is not rebuilt."""
        d = asdict(self)
        if not self.phone:
            del d["phone"]
        if self.speed is None:
            del d["speed"]
        return d

    def describe(self) -> str:
        parts = []
        if self.speed is not None:
            parts.append(f"speed x{self.speed:g}")
        if self.rt60 is not None:
            parts.append(f"reverb rt60={self.rt60:.2f}s")
        if self.noise != "none":
            parts.append(f"{self.noise} noise {self.snr_db:.1f} dB")
        if self.phone:
            parts.append("telephone")
        if self.codec:
            parts.append(f"{self.codec} {self.bitrate_kbps} kbps")
        return ", ".join(parts) or "clean"


def draw_plan(cfg: AugmentConfig, rng: np.random.Generator | int | None) -> AugmentPlan:
    """Decide, from `rng`, which augmentations one utterance gets. Always consumes the same draws
    for one config; the telephone and speed draws are made only when they can happen, so the
    plans of a config without them are what they were before they existed."""
    rng = _rng(rng)
    u = rng.random(3)
    rt60 = float(rng.uniform(*cfg.rt60))
    snr = float(rng.uniform(*cfg.snr_db))
    ci = int(rng.integers(len(cfg.codecs))) if cfg.codecs else 0
    bi = int(rng.integers(len(cfg.bitrates_kbps))) if cfg.bitrates_kbps else 0
    seed = int(rng.integers(2**31 - 1))
    use_noise = cfg.noise != "none" and u[1] < cfg.noise_prob
    use_codec = bool(cfg.codecs) and bool(cfg.bitrates_kbps) and u[2] < cfg.codec_prob
    phone, factor = False, None
    if cfg.phone_prob > 0 or cfg.speed_prob > 0:
        v = rng.random(2)
        si = int(rng.integers(len(cfg.speeds))) if cfg.speeds else 0
        phone = bool(v[0] < cfg.phone_prob)
        factor = float(cfg.speeds[si]) if cfg.speeds and v[1] < cfg.speed_prob else None
    return AugmentPlan(
        rt60=rt60 if u[0] < cfg.reverb_prob else None,
        noise=cfg.noise if use_noise else "none",
        snr_db=snr if use_noise else None,
        codec=cfg.codecs[ci] if use_codec else None,
        bitrate_kbps=cfg.bitrates_kbps[bi] if use_codec else None,
        seed=seed,
        phone=phone,
        speed=factor,
    )


def apply_plan(
    x: np.ndarray, plan: AugmentPlan, sample_rate: int = 16_000, babble_sources: Sequence[np.ndarray] | None = None
) -> np.ndarray:
    """Speaking rate, room, noise, phone line, codec: the order a real recording goes through them."""
    rng = np.random.default_rng(plan.seed)
    y = np.asarray(x, np.float32)
    if plan.speed is not None:
        y = speed(y, plan.speed, sample_rate)
    if plan.rt60 is not None:
        y = reverb(y, sample_rate, rng, rt60=plan.rt60)
    if plan.noise != "none" and plan.snr_db is not None:
        y = add_noise(y, plan.snr_db, rng, kind=plan.noise, sources=babble_sources)
    if plan.phone:
        y = telephone(y, sample_rate)
    if plan.codec:
        y = codec(y, sample_rate, plan.codec, plan.bitrate_kbps or 16)
    peak = float(np.max(np.abs(y))) if y.size else 0.0
    if peak > 0.99:  # noise can push past full scale; scale down rather than clip
        y = y * (0.99 / peak)
    return y.astype(np.float32, copy=False)


def augment(
    x: np.ndarray,
    cfg: AugmentConfig,
    rng: np.random.Generator | int | None = None,
    sample_rate: int = 16_000,
    babble_sources: Sequence[np.ndarray] | None = None,
) -> tuple[np.ndarray, AugmentPlan]:
    """Draw a plan from `rng` and apply it; returns the audio and what was done."""
    plan = draw_plan(cfg, rng)
    return apply_plan(x, plan, sample_rate, babble_sources), plan
