"""The systems compared: audio in, unit vectors out, in the text encoder's space; each encodes in its own process."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol, Sequence

import numpy as np

from ..errors import ClaspError, ModelError, UsageError
from .base import NOISE_BATCH, SAMPLE_RATE, BenchmarkError, Event, noop
from .cost import (
    Part, peak_rss_mb, disk_mb, hf_part, safetensors_param_count, speech_encoder_part, text_encoder_part, whisper_part,
)


# -- systems ----------------------------------------------------------------------------------------


class System(Protocol):
    name: str
    kind: str  # "clasp" | "asr"

    def encode(self, waves: Sequence[np.ndarray], langs: Sequence[str] | None = None) -> np.ndarray:
        """Mono 16 kHz waveforms -> L2-normalised [n, d] in the text encoder's space."""
        ...

    def parts(self) -> list[Part]:
        """What the pipeline is made of: parameters and files, for the cost table."""
        ...


def _unit(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float32)
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


class ClaspSystem:
    kind = "clasp"

    def __init__(self, model: str, device: str = "cpu"):
        from ..registry import load_model

        self.model = load_model(model, device=device)
        self.name = self.model.config.name
        self.model.speech  # noqa: B018 - load now, outside the timed encoding
        self.model.ready()  # the head the product runs: numpy on the CPU

    def encode(self, waves, langs=None) -> np.ndarray:
        return _unit(self.model.embed_audio(list(waves)))

    def parts(self) -> list[Part]:
        cfg = self.model.config
        d = Path(self.model.path)
        head_files = [d / "config.json", d / "model.safetensors"]
        return [
            speech_encoder_part(cfg.speech_encoder),
            Part("head", safetensors_param_count(d / "model.safetensors"), "safetensors headers", head_files),
            text_encoder_part(cfg.text_encoder),
        ]


class _TranscribeThenEmbed:
    """Shared half of the ASR systems: transcripts -> the CLASP model's own text encoder."""

    kind = "asr"
    last_transcripts: list[str]

    def _load_text(self, model: str, device: str) -> None:
        from ..registry import load_model

        clasp = load_model(model, device=device, require_weights=False)
        self.text_spec = clasp.config.text_encoder
        self.text = clasp.text  # the SAME text encoder as the CLASP model
        self.last_transcripts = []

    def transcribe(self, waves, langs=None) -> list[str]:
        raise NotImplementedError

    def encode(self, waves, langs=None) -> np.ndarray:
        self.last_transcripts = self.transcribe(list(waves), langs)
        return _unit(self.text.encode(self.last_transcripts))


# chunks: as `clasp index` reads (clasp_cli.reading; each clip one recording); batched: each clip
# alone, no padding to 30 s (clasp's reading up to 3a2ac35); faster-whisper: its transcribe().
ASR_READERS = ("chunks", "batched", "faster-whisper")


def check_asr_reader(reader: str) -> None:
    if reader not in ASR_READERS:
        raise UsageError(f"--asr-reader: choose one of {', '.join(ASR_READERS)} (got {reader!r})")


def asr_reader(transcriber, reader: str):
    """The Transcriber method that reads clips the way `reader` names (ASR_READERS)."""
    check_asr_reader(reader)
    if reader == "chunks":
        from ..reading.reader import ChunkReader
        from ..reading.recording import read_clips

        chunk_reader = ChunkReader(transcriber)
        return lambda waves, langs=None: read_clips(chunk_reader, waves, langs)
    return transcriber.transcribe_batch if reader == "batched" else transcriber.transcribe


class WhisperASRSystem(_TranscribeThenEmbed):
    """Whisper, then the text encoder. `reader` "chunks" reads as `clasp index` and `--rerank` do;
    "batched" each clip alone without padding to 30 s (clasp's reader up to 3a2ac35, several times
    faster than faster-whisper's, see benchmarks/asr_speed.py); "faster-whisper" is its stock
    `transcribe()`, clip by clip."""

    def __init__(self, asr_model: str, clasp_model: str, device: str = "cpu", beam_size: int = 1, reader: str = "chunks"):
        from ..transcribe import Transcriber

        check_asr_reader(reader)
        self.reader = reader
        self.asr_model = asr_model
        # All cores, as the CLASP speech encoder uses: the speed comparison is like for like.
        self.asr = Transcriber(asr_model, device=device, beam_size=beam_size)
        self.whisper = self.asr.whisper
        self.multilingual = self.asr.multilingual
        self._read = asr_reader(self.asr, reader)
        self.beam_size = beam_size
        self._load_text(clasp_model, device)
        suffix = "" if reader == "chunks" else f" ({reader})"
        self.name = f"{Path(asr_model).name}+{self.text_spec}{suffix}"

    def transcribe(self, waves, langs=None) -> list[str]:
        return self._read(waves, langs)

    def parts(self) -> list[Part]:
        return [whisper_part(self.asr_model, encoder_only=False), text_encoder_part(self.text_spec)]


class CTCASRSystem(_TranscribeThenEmbed):
    MAX_SECONDS = 30

    def __init__(self, ctc_model: str, clasp_model: str, device: str = "cpu"):
        from ..extras import require

        require("hf", f"the CTC baseline {ctc_model}")
        import torch
        from transformers import AutoModelForCTC, AutoProcessor

        self.ctc_model = ctc_model
        try:
            from transformers.utils import logging as hf_logging

            hf_logging.disable_progress_bar()  # stderr belongs to the benchmark's own progress
        except Exception:  # pragma: no cover - older transformers
            pass
        try:
            self.processor = AutoProcessor.from_pretrained(ctc_model)
            # use_safetensors=True: never fall back to torch.load on a pickle.
            self.ctc = AutoModelForCTC.from_pretrained(ctc_model, use_safetensors=True).to(device).eval()
        except Exception as e:
            first = str(e).splitlines()[0] if str(e) else type(e).__name__
            raise ModelError(f"cannot load CTC model {ctc_model!r}: {first}") from None
        self._torch = torch
        self.device = device
        self._load_text(clasp_model, device)
        self.name = f"{Path(ctc_model).name}+{self.text_spec}"

    def transcribe(self, waves, langs=None) -> list[str]:
        torch = self._torch
        out = []
        step = self.MAX_SECONDS * SAMPLE_RATE
        with torch.inference_mode():
            for w in waves:
                w = np.asarray(w, dtype=np.float32)
                words = []
                for s in range(0, max(1, w.size), step):
                    x = w[s : s + step]
                    if x.size < 400:
                        x = np.pad(x, (0, 400 - x.size))
                    inputs = self.processor(x, sampling_rate=SAMPLE_RATE, return_tensors="pt")
                    values = inputs["input_values"].to(self.device)
                    ids = self.ctc(values).logits.argmax(-1)
                    words.append(self.processor.batch_decode(ids.cpu())[0])
                out.append(" ".join(words).strip().lower())
        return out

    def parts(self) -> list[Part]:
        return [hf_part(self.ctc_model, self.ctc), text_encoder_part(self.text_spec)]


@dataclass(frozen=True)
class SystemSpec:
    """How to build a system inside a worker process (picklable)."""

    backend: str  # "clasp" | "whisper" | "ctc"
    model: str  # the CLASP model: the system itself, or whose text encoder an ASR system uses
    asr_model: str = ""
    device: str = "cpu"
    beam_size: int = 1
    reader: str = "chunks"  # Whisper systems: how the clips are read (ASR_READERS)

    def build(self) -> System:
        if self.backend == "clasp":
            return ClaspSystem(self.model, self.device)
        if self.backend == "whisper":
            return WhisperASRSystem(self.asr_model, self.model, self.device, self.beam_size, self.reader)
        if self.backend == "ctc":
            return CTCASRSystem(self.asr_model, self.model, self.device)
        raise UsageError(f"unknown system backend {self.backend!r}")

    @property
    def label(self) -> str:
        return {"clasp": "CLASP", "whisper": "Whisper ASR", "ctc": "CTC ASR"}[self.backend]


# -- what a worker encodes ---------------------------------------------------------------------------


@dataclass
class EncodeJob:
    paths: list[str]  # main manifest audio, already checked to decode
    langs: list[str]
    noise_idx: list[int] = field(default_factory=list)  # subset of paths for the noise sweep
    noise_kinds: tuple[str, ...] = ()
    snrs: tuple[float, ...] = ()
    babble_pool: list[int] = field(default_factory=list)
    seed: int = 0
    ml_paths: list[str] = field(default_factory=list)
    ml_langs: list[str] = field(default_factory=list)

    @property
    def units(self) -> int:
        return len(self.paths) + len(self.noise_idx) * len(self.noise_kinds) * len(self.snrs) + len(self.ml_paths)


def noisy_wave(wave: np.ndarray, utt: int, kind_i: int, snr_i: int, kind: str, snr: float, seed: int,
               pool: dict[int, np.ndarray]) -> np.ndarray:
    """The same noisy copy of utterance `utt` in every process: seeded by (seed, kind, SNR, utterance)."""
    from ..data.augment import add_noise

    rng = np.random.default_rng([seed, kind_i, snr_i, utt])
    sources = [w for j, w in pool.items() if j != utt] or list(pool.values())
    return add_noise(wave, snr, rng=rng, kind=kind, sources=sources)


def encode_system(spec: SystemSpec, job: EncodeJob, post: Event = noop) -> dict:
    """Build one system and encode everything the job asks for, timing the clean pass.

    Clean utterances are encoded one at a time (batch size 1), so each call's wall time is one
    utterance's latency; audio decoding is outside the timed region.
    """
    from ..audio import load_audio

    t0 = time.perf_counter()
    system = spec.build()
    system.encode([np.zeros(SAMPLE_RATE, dtype=np.float32)], ["en"])  # warm-up: lazy init, first-call costs
    load_s = time.perf_counter() - t0
    post("system_loaded", name=system.name, seconds=load_s)

    emb, latency, audio_s, transcripts = [], [], 0.0, []
    for path, lang in zip(job.paths, job.langs):
        w = load_audio(path, SAMPLE_RATE)
        audio_s += w.size / SAMPLE_RATE
        t = time.perf_counter()
        emb.append(system.encode([w], [lang])[0])
        latency.append(time.perf_counter() - t)
        if system.kind == "asr":
            transcripts.append(system.last_transcripts[0])
        post("advance", n=1)
    emb_arr = np.stack(emb).astype(np.float32)

    noise: dict[str, np.ndarray] = {}
    noise_transcripts: dict[str, list[str]] = {}
    if job.noise_idx and job.noise_kinds and job.snrs:
        pool = {j: load_audio(job.paths[j], SAMPLE_RATE) for j in job.babble_pool}
        clean = {j: load_audio(job.paths[j], SAMPLE_RATE) for j in job.noise_idx}
        for ki, kind in enumerate(job.noise_kinds):
            for si, snr in enumerate(job.snrs):
                out = []
                for s in range(0, len(job.noise_idx), NOISE_BATCH):
                    group = job.noise_idx[s : s + NOISE_BATCH]
                    waves = [noisy_wave(clean[j], j, ki, si, kind, snr, job.seed, pool) for j in group]
                    out.append(system.encode(waves, [job.langs[j] for j in group]))
                    if system.kind == "asr":
                        noise_transcripts.setdefault(f"{kind}@{snr:g}", []).extend(system.last_transcripts)
                    post("advance", n=len(group))
                noise[f"{kind}@{snr:g}"] = np.concatenate(out).astype(np.float32)

    ml_emb, ml_transcripts = None, []
    if job.ml_paths:
        out = []
        for s in range(0, len(job.ml_paths), NOISE_BATCH):
            paths = job.ml_paths[s : s + NOISE_BATCH]
            out.append(system.encode([load_audio(p, SAMPLE_RATE) for p in paths], job.ml_langs[s : s + NOISE_BATCH]))
            if system.kind == "asr":
                ml_transcripts += system.last_transcripts
            post("advance", n=len(paths))
        ml_emb = np.concatenate(out).astype(np.float32)

    parts = system.parts()
    files = [f for p in parts for f in p.files]
    encode_s = float(sum(latency))
    lat_ms = np.asarray(latency) * 1000.0
    return {
        "name": system.name,
        "kind": system.kind,
        "emb": emb_arr,
        "noise": noise,
        "noise_transcripts": noise_transcripts,
        "ml_emb": ml_emb,
        "transcripts": transcripts,
        "ml_transcripts": ml_transcripts,
        "cost": {
            "throughput_x_realtime": round(audio_s / encode_s, 2) if encode_s > 0 else 0.0,
            "params": int(sum(p.params for p in parts)),
            "disk_mb": disk_mb(files),
            "params_source": "; ".join(f"{p.name}: {p.source}" for p in parts),
            "params_parts": {p.name: p.params for p in parts},
            "latency_ms_p50": round(float(np.percentile(lat_ms, 50)), 1),
            "latency_ms_p95": round(float(np.percentile(lat_ms, 95)), 1),
            "peak_rss_mb": peak_rss_mb(),
            "load_s": round(load_s, 2),
            "encode_s": round(encode_s, 2),
            "audio_s": round(audio_s, 2),
        },
    }


_QUEUE = None


def _worker_init(queue) -> None:
    global _QUEUE
    _QUEUE = queue


def _worker_post(kind: str, **d) -> None:
    if _QUEUE is not None:
        _QUEUE.put((kind, d))


def _worker_main(spec: SystemSpec, job: EncodeJob) -> dict:
    """Entry point in the spawned process. User errors come back as data (some do not pickle)."""
    try:
        return encode_system(spec, job, _worker_post)
    except ClaspError as e:
        return {"error": str(e), "exit_code": e.exit_code}


def run_isolated(spec: SystemSpec, job: EncodeJob, on_event: Event = noop) -> dict:
    """encode_system in a fresh spawned process, relaying its progress events."""
    import multiprocessing
    import queue as queue_mod
    from concurrent.futures import ProcessPoolExecutor
    from concurrent.futures.process import BrokenProcessPool

    ctx = multiprocessing.get_context("spawn")
    q = ctx.Queue()

    def drain(timeout: float) -> None:
        try:
            kind, d = q.get(timeout=timeout)
            on_event(kind, **d)
            while True:
                kind, d = q.get_nowait()
                on_event(kind, **d)
        except queue_mod.Empty:
            pass

    with ProcessPoolExecutor(1, mp_context=ctx, initializer=_worker_init, initargs=(q,)) as pool:
        fut = pool.submit(_worker_main, spec, job)
        while not fut.done():
            drain(0.1)
        try:
            result = fut.result()
        except BrokenProcessPool:
            raise BenchmarkError(f"{spec.label}: the worker process died (out of memory?)") from None
        drain(0.0)
    q.close()
    if "error" in result:
        raise BenchmarkError(result["error"], result["exit_code"])
    return result
