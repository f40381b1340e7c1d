"""Non-English text for training and testing the speech side in other languages, all offline.

Sources:
- gettext catalogues (`/usr/share/locale/<lang>/LC_MESSAGES/*.mo`): every installed program's
  user-facing messages with their translations, i.e. parallel sentences. Each gives a native
  sentence *and* its English original, so English queries can be tested on foreign audio.
- Debian `fortunes-de`, `-es`, `-it`, `-ru`: native sentences without a translation.

Splits are by meaning: a sentence's group is its English original when it has one, so the
same message can never be spoken in German in training and in French in test.
"""

from __future__ import annotations

import gettext
import hashlib
import re
import unicodedata
from collections.abc import Iterable
from pathlib import Path

from .corpus import MAX_WORDS, paragraphs, clean_sentence, dedup_key
from .sentences import Sentence

LOCALE_DIR = Path("/usr/share/locale")
FORTUNE_DIR = Path("/usr/share/games/fortunes")
# Languages the offline text encoder (USE multilingual) knows and espeak-ng/festival can speak.
TRAIN_LANGS = ("de", "es", "fr", "it", "nl", "pl", "pt", "ru", "tr")
# One held-out voice per language, never heard in training. Italian holds out a festival voice
# (it has two); elsewhere an espeak-ng variant, so festival's only Russian voice stays in train.
TEST_VOICES = {
    "de": "espeak:de+m3", "es": "espeak:es+m3", "fr": "espeak:fr-fr+m3", "it": "festival:pc_diphone",
    "nl": "espeak:nl+m3", "pl": "espeak:pl+m3", "pt": "espeak:pt+m3", "ru": "espeak:ru+m3", "tr": "espeak:tr+m3",
}
# Languages only Kokoro speaks here (through its own Japanese G2P): asked for by name, never in
# "all", so the espeak-ng corpus `--langs all` builds stays what it was.
KOKORO_LANGS = ("ja",)
TEST_VOICES["ja"] = "kokoro:jf_nezumi"
# Scripts without spaces between words: length is counted in characters, about two per word.
_UNSPACED = {"ja"}
_JA_END = ("。", "!", "?", "…")
# Catalogue folders per language: Brazilian and European Portuguese are one language here.
_LOCALES = {"pt": ("pt", "pt_BR")}
_FORTUNE_LANGS = ("de", "es", "it", "ru")
# Messages are UI text: format strings, markup, paths and key names are not speech.
_NOT_SPEECH = re.compile(r"[%{}<>\\_$&|/=@#*\[\]~^`]|--|\t|\bhttps?:|\.\.\.$")
# A sentence end before a capital in any script the languages above use.
_END = re.compile(r"""(\.\.\.|…|[.!?])+["'”’»)\]]*\s+(?=["“'‘«(\[]*[^\W\d_])""")
_MIN_WORDS = 4
TEST_FRACTION = 0.08


def _speakable(s: str, lang: str = "en") -> bool:
    if "\n" in s or _NOT_SPEECH.search(s):
        return False
    words = len("".join(s.split())) / 2 if lang in _UNSPACED else len(s.split())
    return _MIN_WORDS <= words <= MAX_WORDS


def _clean_unspaced(s: str) -> str | None:
    """Japanese needs its own cleaning: its full stop is 。, and Latin text inside (program
    names, options) is read letter by letter, so a message that is mostly Latin is not kept."""
    s = " ".join(unicodedata.normalize("NFKC", s).split())
    if not s or "\ufffd" in s:
        return None
    visible = "".join(s.split())
    if sum(c.isascii() and c.isalpha() for c in visible) > 0.2 * len(visible):
        return None
    return s if s.endswith(_JA_END) else s + "。"


def gettext_pairs(lang: str, locale_dir: Path = LOCALE_DIR) -> list[Sentence]:
    """Whole-sentence messages of every installed catalogue: native text, English in translations."""
    out: list[Sentence] = []
    for folder in _LOCALES.get(lang, (lang,)):
        for mo in sorted((locale_dir / folder / "LC_MESSAGES").glob("*.mo")):
            try:
                with open(mo, "rb") as fh:
                    catalog = gettext.GNUTranslations(fh)._catalog  # noqa: SLF001 - the only way to list messages
            except Exception:  # noqa: BLE001 - a damaged or oddly encoded catalogue is skipped, not fatal
                continue
            for en, native in catalog.items():
                if not isinstance(en, str) or not isinstance(native, str) or not en or not native or en == native:
                    continue
                if not (_speakable(en) and _speakable(native, lang)) or not en.rstrip().endswith((".", "!", "?")):
                    continue
                en_c = clean_sentence(en)
                native_c = _clean_unspaced(native) if lang in _UNSPACED else clean_sentence(native)
                if en_c and native_c:
                    out.append(Sentence(native_c, "software", lang=lang, translations={"en": en_c}, source=f"gettext:{mo.stem}"))
    return out


def fortune_sentences(lang: str, fortune_dir: Path = FORTUNE_DIR) -> list[Sentence]:
    """Sentences of the Debian fortunes-<lang> files (no translations)."""
    folder = fortune_dir / lang
    out: list[Sentence] = []
    if not folder.is_dir():
        return out
    for path in sorted(p for p in folder.iterdir() if p.is_file() and not p.suffix):
        text = path.read_text(encoding="utf-8", errors="replace")
        for entry in re.split(r"^%\s*$", text, flags=re.M):
            entry = re.split(r"^(?:\s+--|--\s*\S)", entry, maxsplit=1, flags=re.M)[0]
            for paragraph in paragraphs(entry):
                for piece in _split(paragraph):
                    s = clean_sentence(piece)
                    if s and _speakable(s):
                        out.append(Sentence(s, f"fortunes-{lang}:{path.name}", lang=lang, source=f"fortunes-{lang}:{path.name}"))
    return out


def _split(paragraph: str) -> list[str]:
    parts, start = [], 0
    for m in _END.finditer(paragraph):
        parts.append(paragraph[start : m.end()].strip())
        start = m.end()
    if paragraph[start:].strip():
        parts.append(paragraph[start:].strip())
    return parts


def meaning_key(s: Sentence) -> str:
    """What makes two sentences 'the same' for splitting: the English original when known."""
    return dedup_key(s.translations.get("en") or s.text)


def is_test(s: Sentence, fraction: float = TEST_FRACTION) -> bool:
    """A stable draw by meaning: the same sentence is on the same side in every build and language."""
    h = int(hashlib.sha256(meaning_key(s).encode("utf-8")).hexdigest()[:8], 16)
    return h < fraction * 0x1_0000_0000


def foreign_corpus(
    langs: Iterable[str] = TRAIN_LANGS, fraction: float = TEST_FRACTION, per_lang: int | None = 1500,
) -> tuple[list[Sentence], list[Sentence]]:
    """(train+val pool, test pool) of distinct non-English sentences, languages interleaved.

    Within a language, gettext pairs and fortunes alternate; `per_lang` caps each language's
    training pool so that German's 25k fortunes don't drown Dutch's 800 messages."""
    pool: list[list[Sentence]] = []
    test: list[list[Sentence]] = []
    for lang in langs:
        seen: set[str] = set()
        tr, te = [], []
        for s in _round_robin([gettext_pairs(lang), fortune_sentences(lang)]):
            k = dedup_key(s.text)
            if k in seen:
                continue
            seen.add(k)
            (te if is_test(s, fraction) else tr).append(s)
        pool.append(tr[:per_lang] if per_lang else tr)
        test.append(te)
    return _round_robin(pool), _round_robin(test)


def _round_robin(queues: list[list[Sentence]]) -> list[Sentence]:
    longest = max(map(len, queues), default=0)
    return [q[i] for i in range(longest) for q in queues if i < len(q)]
