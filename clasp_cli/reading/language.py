"""One language per recording, from Whisper's language probabilities over all of its speech.

A window of two seconds is too little for Whisper to tell Czech from Slovak or Spanish from
Arabic; a recording's chunks together rarely are. The recording's language is the one with the
most probability, weighted by seconds of speech, over its chunks. Where that evidence is weak (a
short file, a mumbled prompt), the language most of the index is in, if this recording's speech
allows it at all, is taken instead. A long chunk is read in another language only when Whisper
clearly prefers it (an interview that changes language), and `--language` forces one.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

# The languages Whisper reads (its language tokens), the codes `--language` takes.
WHISPER_LANGUAGES = frozenset(
    "af am ar as az ba be bg bn bo br bs ca cs cy da de el en es et eu fa fi fo fr gl gu ha haw he hi hr ht hu hy id is "
    "it ja jw ka kk km kn ko la lb ln lo lt lv mg mi mk ml mn mr ms mt my ne nl nn no oc pa pl ps pt ro ru sa sd si sk sl "
    "sn so sq sr su sv sw ta te tg th tk tl tr tt uk ur uz vi yi yo zh yue".split())

# Evidence below either bound is weak: the index's prevailing language wins if the recording
# gives it at least PRIOR_FLOOR of its probability.
WEAK_SECONDS = 6.0
WEAK_PROBABILITY = 0.6
PRIOR_FLOOR = 0.02
# A chunk switches away from its recording's language only when, on at least SWITCH_SECONDS of
# speech, Whisper gives another language at least SWITCH_PROBABILITY and SWITCH_RATIO times the
# recording's. On Fish Fillets' Czech validation episodes (70 chunks, all Czech), Whisper-base
# was sure of Polish, Japanese, Bengali or Chinese on six chunks of 1-8 s (up to 0.999) and
# its most confident wrong guess on a longer chunk was Polish 0.47 against Czech 0.23 (19 s); a
# German stretch of 24 s in an English recording got German 0.52 against English 0.15.
SWITCH_PROBABILITY = 0.5
SWITCH_RATIO = 3.0
SWITCH_SECONDS = 10.0


@dataclass(frozen=True)
class Language:
    code: str
    probability: float  # the recording's weighted probability of `code` (1.0 when forced)
    source: str  # "forced", "detected" or "prior"


def recording_language(probs: Sequence[dict[str, float]], seconds: Sequence[float], prior: str | None = None,
                       forced: str | None = None) -> Language:
    """The language to read a recording in, from each chunk's language probabilities and length."""
    if forced:
        return Language(forced, 1.0, "forced")
    total = sum(seconds) or 1.0
    mass: dict[str, float] = {}
    for p, s in zip(probs, seconds):
        for code, v in p.items():
            mass[code] = mass.get(code, 0.0) + v * s / total
    if not mass:
        return Language(prior or "en", 0.0, "prior")
    code, best = max(mass.items(), key=lambda kv: kv[1])
    weak = sum(seconds) < WEAK_SECONDS or best < WEAK_PROBABILITY
    if weak and prior and prior != code and mass.get(prior, 0.0) >= PRIOR_FLOOR:
        return Language(prior, mass[prior], "prior")
    return Language(code, best, "detected")


def chunk_language(recording: Language, probs: dict[str, float], seconds: float) -> str:
    """The language one chunk is read in: its recording's, unless Whisper is confident of another."""
    if recording.source == "forced" or not probs:
        return recording.code
    code, p = max(probs.items(), key=lambda kv: kv[1])
    if (code != recording.code and seconds >= SWITCH_SECONDS and p >= SWITCH_PROBABILITY
            and p >= SWITCH_RATIO * probs.get(recording.code, 0.0)):
        return code
    return recording.code
