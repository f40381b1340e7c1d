"""Built-in English text for a Speech-Brown-style synthetic speech corpus.

Sources, all offline: the Debian `fortunes` files (one category per file), the King James
Bible (Debian `bible-kjv`, which reads the compressed text in `bible-kjv-text`) and short
texts the project writes itself under `texts/`. A fixed, translated test subset of 200
sentences lives in `texts/test_sentences.jsonl`; it is held out of `builtin_corpus()`.
"""

from __future__ import annotations

import functools
import json
import re
import shutil
import subprocess
import unicodedata
from collections.abc import Iterable
from pathlib import Path

from clasp_cli.data.sentences import Sentence
from clasp_cli.errors import ManifestError, UsageError

TEXTS = Path(__file__).with_name("texts")
FORTUNE_DIR = Path("/usr/share/games/fortunes")
BIBLE_DATA = Path("/usr/lib/bible.data")
MIN_WORDS = 4
MAX_WORDS = 47  # Speech Brown's limit: longer sentences make unwieldy TTS clips
TEST_LANGS = ("de", "fr", "es", "zh", "ja")
# Japanese is left out: espeak-ng reads kana only and mangles kanji.
ESPEAK_LANGS = ("de", "fr", "es", "zh")

# Tokens whose trailing period does not end a sentence. "etc." is not here on purpose: it often
# does end one, and when it does not, the next word is lowercase and no split happens anyway.
_ABBREVIATIONS = frozenset(
    "mr mrs ms dr st jr sr prof rev gen col lt sgt capt gov sen rep hon mt ft vs vol "
    "pp fig approx dept univ inc ltd corp jan feb mar apr jun jul aug sep sept oct nov dec".split()
)
# A candidate end: terminal punctuation (or an ellipsis), closing quotes, space, then something
# that can start a sentence. Requiring the capital keeps "e.g. this" and "Wait... what" whole.
_END = re.compile(r"""(\.\.\.|…|[.!?])+["'”’)\]]*\s+(?=["“'‘(\[]*[A-Z0-9])""")
_DOTTED = re.compile(r"(?:[A-Za-z]\.)+[A-Za-z]")  # e.g, i.e, U.S (the last dot is the match)
_QUOTES = str.maketrans({"“": '"', "”": '"', "„": '"', "«": '"', "»": '"', "‘": "'", "’": "'", "`": "'"})
_ATTRIBUTION = re.compile(r"^(--|—|–)\s*\S")
# "... yourself. -- Robert Louis Stevenson": a name has no final period, a dashed clause does.
_TRAILING_ATTRIBUTION = re.compile(r"\s(--|—)\s*[A-Z][\w.' ,]*\w$")
_ENUMERATOR = re.compile(r"^(?:\(\d+\)|\d+[.)]|\d+:\d+|\d+(?=\s+[A-Z])|[-*•])\s+")
_URL = re.compile(r"https?://|www\.|\S@\S|\.(?:com|org|net|edu)\b", re.I)
_CODE = re.compile(r"[{}<>\[\]|\\_=#*~^@]")


def split_sentences(text: str) -> list[str]:
    """Split prose into sentences; blank lines and indented lines start new paragraphs."""
    sentences: list[str] = []
    for paragraph in paragraphs(text):
        start = 0
        for m in _END.finditer(paragraph):
            single_period = m.group(0).startswith(".") and not m.group(0).startswith("...")
            if single_period and _is_abbreviation(paragraph[start : m.start()]):
                continue
            sentences.append(paragraph[start : m.end()].strip())
            start = m.end()
        if paragraph[start:].strip():
            sentences.append(paragraph[start:].strip())
    return sentences


def paragraphs(text: str) -> list[str]:
    # Wrapped lines are joined; an indented line after an unindented one is a new paragraph
    # (fortune files indent the first line of a paragraph, and titles sit above the body).
    paragraphs: list[list[str]] = [[]]
    previous_indented = False
    for line in text.splitlines():
        indented = line[:1].isspace()
        if not line.strip():
            paragraphs.append([])
        elif indented and not previous_indented:
            paragraphs.append([line])
        else:
            paragraphs[-1].append(line)
        previous_indented = indented and bool(line.strip())
    return [" ".join(" ".join(p).split()) for p in paragraphs if p]


def _is_abbreviation(before: str) -> bool:
    word = before.rsplit(None, 1)[-1].lstrip("\"'“‘([") if before.strip() else ""
    initial = len(word) == 1 and word.isalpha()  # "J. R. R. Tolkien"
    return word.lower() in _ABBREVIATIONS or initial or bool(_DOTTED.fullmatch(word))


_UNSPEAKABLE = frozenset(("Cc", "Cf", "Co", "Cs"))  # control, format, private-use and surrogate characters


def clean_sentence(s: str) -> str | None:
    """Normalise one sentence for speech, or return None if it should not be spoken.

    Cleaning a cleaned sentence returns it unchanged.
    """
    s = " ".join(unicodedata.normalize("NFKC", s).translate(_QUOTES).replace("''", '"').split())
    s = _ENUMERATOR.sub("", _balance(_balance(s, '"', '"'), "(", ")"))
    if _ATTRIBUTION.match(s):
        return None
    s = _TRAILING_ATTRIBUTION.sub("", s)
    s = " ".join(re.sub(r"--+", " — ", s).split())
    if not s or s[-1] in ",;:-—":
        return None  # a fragment: a split went wrong, or a heading or list item
    if not s.rstrip("\"')").endswith((".", "!", "?", "…")):
        s += "."
    s = s[0].upper() + s[1:]
    if _URL.search(s) or _CODE.search(s):
        return None
    # Character counts through map() over str methods: per-character generator loops made loading the
    # 55k-sentence corpus take about 5 s on 2 cores.
    if "\ufffd" in s or not _UNSPEAKABLE.isdisjoint(map(unicodedata.category, s)):
        return None  # mojibake and control characters: the source was mis-encoded
    visible = "".join(s.split())
    upper = sum(map(str.isupper, visible))
    cased = upper + sum(map(str.islower, visible))
    if sum(map(str.isalpha, visible)) < 0.75 * len(visible):
        return None  # numbers, tables, ASCII art
    if cased >= 4 and upper > 0.6 * cased:
        return None  # headers and shouting
    if not MIN_WORDS <= len(s.split()) <= MAX_WORDS:
        return None
    return s


def _balance(s: str, opening: str, closing: str) -> str:
    # An unbalanced quote or bracket is a leftover from splitting; it is silent anyway.
    if opening == closing:
        unbalanced = s.count(opening) % 2 == 1
    else:
        unbalanced = s.count(opening) != s.count(closing)
    return s.replace(opening, "").replace(closing, "").strip() if unbalanced else s


def dedup_key(text: str) -> str:
    """The text with case and punctuation removed: two sentences with the same key are one."""
    return " ".join(re.sub(r"[\W_]+", " ", text.casefold()).split())


def deduplicate(sentences: Iterable[Sentence], exclude: Iterable[str] = ()) -> list[Sentence]:
    """Keep the first sentence of every `dedup_key`, in order; none whose key is in `exclude`."""
    seen: set[str] = set(exclude)
    out = []
    for sentence in sentences:
        key = dedup_key(sentence.text)
        if key not in seen:
            seen.add(key)
            out.append(sentence)
    return out


def _sentences(text: str, domain: str, source: str) -> list[Sentence]:
    cleaned = (clean_sentence(s) for s in split_sentences(text))
    return [Sentence(s, domain, source=source) for s in cleaned if s]


def load_text_files(paths: Iterable[str | Path], domain: str | None = None) -> list[Sentence]:
    """Read plain-text files into de-duplicated sentences; the domain defaults to the file stem."""
    out: list[Sentence] = []
    for path in map(Path, paths):
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as e:
            raise ManifestError(f"{path}: cannot read as UTF-8 text ({e})") from e
        out += _sentences(text, domain or path.stem, f"file:{path.name}")
    return deduplicate(out)


# What each source needs: the Debian package and a file it installs.
_PACKAGES = {
    "fortunes": FORTUNE_DIR / "science",
    "fortunes-min": FORTUNE_DIR / "fortunes",
    "bible-kjv": BIBLE_DATA,  # the `bible` reader; it pulls in bible-kjv-text, the data
}


def missing_packages() -> list[str]:
    """The Debian packages `builtin_corpus()` needs that are not installed here."""
    missing = [name for name, path in _PACKAGES.items() if not path.is_file()]
    if "bible-kjv" not in missing and shutil.which("bible") is None:
        missing.append("bible-kjv")
    return missing


def _fortunes() -> list[Sentence]:
    mapping = json.loads((TEXTS / "fortune_domains.json").read_text(encoding="utf-8"))
    out: list[Sentence] = []
    for category, domain in sorted(mapping.items()):
        path = FORTUNE_DIR / category
        if domain is None or not path.is_file():
            continue  # ASCII art; or a category an older fortunes release does not have
        for entry in re.split(r"^%\s*$", path.read_text(encoding="utf-8", errors="replace"), flags=re.M):
            # The attribution ("\t\t-- Mark Twain") and anything under it is not the quote.
            entry = re.split(r"^(?:\s+--|--\s*[A-Z\"])", entry, maxsplit=1, flags=re.M)[0]
            out += _sentences(entry, domain, f"fortunes:{category}")
    return out


def _bible() -> list[Sentence]:
    # `bible` decompresses bible-kjv-text's data; a wide line keeps one verse per line.
    result = subprocess.run(["bible", "-l10000", "gen1:1-rev22:21"], capture_output=True, text=True, cwd="/")
    if result.returncode != 0:
        raise ManifestError(f"`bible` (Debian package bible-kjv) failed: {result.stderr.strip()[:200]}")
    out: list[Sentence] = []
    book = ""
    for line in result.stdout.splitlines():
        number, _, verse = line.strip().partition(" ")
        if line[:1].isspace() and number.isdigit():
            # A verse is a natural spoken unit; one ending in ":" or ";" is still a whole clause.
            out += _sentences(re.sub(r"[:;]$", ".", verse), "religion", f"bible-kjv:{book}")
        elif line.strip():
            book = line.strip().rsplit(" ", 1)[0]  # a chapter heading: "1 John 4"
    return out


def _interleave(sentences: list[Sentence]) -> list[Sentence]:
    # Round-robin over domains, so that any prefix of the corpus is as balanced as it can be.
    by_domain: dict[str, list[Sentence]] = {}
    for sentence in sentences:
        by_domain.setdefault(sentence.domain, []).append(sentence)
    queues = [by_domain[d] for d in sorted(by_domain)]
    longest = max(map(len, queues), default=0)
    return [q[i] for i in range(longest) for q in queues if i < len(q)]


@functools.lru_cache(maxsize=1)
def _builtin() -> tuple[Sentence, ...]:
    held_out = {dedup_key(s.text) for s in test_subset()}
    own = load_text_files(sorted(p for p in TEXTS.glob("*.txt")))
    return tuple(_interleave(deduplicate(own + _fortunes() + _bible(), exclude=held_out)))


def builtin_corpus(min_sentences: int = 20000) -> list[Sentence]:
    """All distinct built-in English sentences, domains interleaved, test subset excluded.

    Raises ManifestError when a Debian source is missing or fewer than `min_sentences` remain.
    """
    missing = missing_packages()
    if missing:
        names = " ".join(missing)
        raise ManifestError(f"the built-in corpus needs the Debian packages {names}: apt-get install -y {names}")
    corpus = list(_builtin())
    if len(corpus) < min_sentences:
        raise ManifestError(f"the built-in corpus has {len(corpus)} sentences, fewer than {min_sentences} asked for")
    return corpus


@functools.lru_cache(maxsize=1)
def _test_rows() -> tuple[dict, ...]:
    path = TEXTS / "test_sentences.jsonl"
    return tuple(json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip())


def test_subset() -> list[Sentence]:
    """The fixed 200 held-out English sentences, each with de/fr/es/zh/ja translations."""
    return [
        Sentence(r["text"], r["domain"], translations=dict(r["translations"]), source=f"test:{r['id']}")
        for r in _test_rows()
    ]


test_subset.__test__ = False  # its name would make pytest collect it wherever it is imported


def non_english_sentences(langs: Iterable[str] = ESPEAK_LANGS) -> dict[str, list[Sentence]]:
    """The test subset in each language, with the English original (and the other
    translations) in `translations`, so a benchmark can query across languages."""
    out: dict[str, list[Sentence]] = {}
    for lang in langs:
        if lang not in TEST_LANGS:
            raise UsageError(f"no {lang!r} translations: the test subset has {', '.join(TEST_LANGS)}")
        out[lang] = [
            Sentence(
                s.translations[lang],
                s.domain,
                lang=lang,
                translations={"en": s.text} | {k: v for k, v in s.translations.items() if k != lang},
                source=s.source,
            )
            for s in test_subset()
        ]
    return out
