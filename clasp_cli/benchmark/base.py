"""What every part of the benchmark shares: constants, the event hook, its error, its configuration."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from ..defaults import DEFAULT_MODEL
from ..errors import ClaspError

SAMPLE_RATE = 16_000
SNRS_DB = (20.0, 10.0, 5.0, 0.0)
NOISE_KINDS = ("white", "babble")
BABBLE_POOL = 8  # utterances the babble noise is drawn from
NOISE_BATCH = 16
Event = Callable[..., None]


def noop(*_a, **_k) -> None:
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
    model: str = DEFAULT_MODEL  # CLASP registry name or model directory
    asr_model: str = "whisper-tiny.en"  # bundled name or a CTranslate2 Whisper directory
    ctc_model: str | None = None  # Hugging Face CTC hub id or directory
    limit: int | None = None  # first N usable, text-unique utterances
    multilingual: str | None = None  # second manifest of non-English audio
    noise: bool = False
    noise_n: int = 300
    snrs: tuple[float, ...] = SNRS_DB
    noise_kinds: tuple[str, ...] = NOISE_KINDS
    beam_size: int = 1
    asr_reader: str = "chunks"  # how Whisper reads each clip (benchmark.systems.ASR_READERS): as `clasp index` does
    device: str = "auto"
    seed: int = 0
    nonsense: int = 300  # nonsense queries checked against the CLASP model's default --min-score
    isolate: bool = True  # each system in its own spawned process (honest peak RSS)
