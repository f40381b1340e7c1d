"""The unit of text a corpus is built from, before it has audio."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Sentence:
    text: str
    domain: str
    lang: str = "en"
    # Translations of `text` keyed by language code ("de", "zh", ...), when the project has them.
    translations: dict[str, str] = field(default_factory=dict, hash=False, compare=False)
    source: str = ""  # where the sentence came from, e.g. "fortunes:science" or "bible-kjv:Genesis"
