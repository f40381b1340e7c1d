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

Modules: base (configuration, constants), systems (what is compared and how it encodes), cost
(parameters, disk, memory, machine), scoring (metrics, WER, result rows), run (the whole job).
"""

from __future__ import annotations

from .base import NOISE_KINDS, SNRS_DB, BenchmarkConfig, BenchmarkError
from .cost import ct2_param_count, disk_mb, machine_info, npz_param_count, safetensors_param_count
from .run import load_usable, run_benchmark
from .scoring import BenchmarkResult, SystemResult, grouped_scores, translation_rows, word_error_rate
from .systems import ClaspSystem, CTCASRSystem, WhisperASRSystem, encode_system, noisy_wave

__all__ = [
    "NOISE_KINDS", "SNRS_DB", "BenchmarkConfig", "BenchmarkError", "BenchmarkResult", "ClaspSystem", "CTCASRSystem",
    "SystemResult", "WhisperASRSystem", "ct2_param_count", "disk_mb", "encode_system", "grouped_scores", "load_usable",
    "machine_info", "noisy_wave", "npz_param_count", "run_benchmark", "safetensors_param_count", "translation_rows",
    "word_error_rate",
]
