"""Which languages each text encoder covers: the one place clasp writes this down.

Codes are ISO 639-1, as Whisper names the languages it reads (`clasp info` lists them per index).
A query in a language its encoder was not trained on still gets a vector, but one that lands
near nothing in particular: search must know which encoder to trust for which query.
"""

from __future__ import annotations

# Universal Sentence Encoder multilingual v3: 16 languages (Chinese counted twice, simplified and
# traditional). The CLASP head is trained into this space, so a CLASP vector is only as
# multilingual as USE.
USE_LANGUAGES = ("ar", "de", "en", "es", "fr", "it", "ja", "ko", "nl", "pl", "pt", "ru", "th", "tr", "zh")

# multilingual-e5-small: XLM-RoBERTa's pre-training languages (CC-100), about 100 counting scripts
# twice, then fine-tuned on multilingual pairs.
E5_LANGUAGES = (
    "af", "am", "ar", "as", "az", "be", "bg", "bn", "br", "bs", "ca", "cs", "cy", "da", "de", "el", "en", "eo", "es",
    "et", "eu", "fa", "fi", "fr", "fy", "ga", "gd", "gl", "gu", "ha", "he", "hi", "hr", "hu", "hy", "id", "is", "it",
    "ja", "jv", "ka", "kk", "km", "kn", "ko", "ku", "ky", "la", "lo", "lt", "lv", "mg", "mk", "ml", "mn", "mr", "ms",
    "my", "ne", "nl", "no", "om", "or", "pa", "pl", "ps", "pt", "ro", "ru", "sa", "sd", "si", "sk", "sl", "so", "sq",
    "sr", "su", "sv", "sw", "ta", "te", "th", "tl", "tr", "ug", "uk", "ur", "uz", "vi", "xh", "yi", "zh",
)

COVERAGE = {"use-multilingual": USE_LANGUAGES, "e5-small": E5_LANGUAGES}


def covered(encoder_id: str) -> tuple[str, ...]:
    """The languages an encoder covers (empty for one clasp knows nothing about, e.g. st:...)."""
    return COVERAGE.get(encoder_id, ())


def searchable(encoder_ids: list[str] | tuple[str, ...]) -> list[str]:
    """Languages a text query can be asked in with these encoders, in code order."""
    return sorted({code for e in encoder_ids for code in covered(e)})
