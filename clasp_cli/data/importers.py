"""Import real speech corpora (LibriSpeech, Common Voice, FLEURS, Speech Brown, plain CSV/JSONL)
into the project's manifest format.

Each format has one small reader that yields candidate utterances (with absolute audio paths)
or skip records; one shared driver checks them, reads durations, and writes the manifest once,
at the end, so a failed import never leaves a half-written file behind.
"""

from __future__ import annotations

import csv
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Iterator, Union

from ..audio import audio_info
from ..errors import AudioError, ManifestError, UsageError
from ..manifest import Utterance, json_objects, relative_audio, write_manifest

FORMATS = ("jsonl", "csv", "librispeech", "commonvoice", "fleurs", "speechbrown", "asterisk", "fillets", "festvox-ru")


@dataclass
class ImportSummary:
    written: int
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (item id or path, reason)
    out: Path = Path()
    hours: float = 0.0


@dataclass(frozen=True)
class _Skip:
    key: str
    reason: str
    lang: str | None = None  # where the reader knows it, so a language filter drops it too


_Candidate = Union[Utterance, _Skip]


def split_from_name(name: str) -> str:
    """Map a subset or file name (dev-clean, train-other-500, test.tsv, validated) to a manifest split."""
    n = Path(name).name.lower().removesuffix(".tsv").removesuffix(".csv")
    if n.startswith("train"):
        return "train"
    # "validated" (Common Voice) is the pool of all checked clips, not a validation split.
    if n.startswith("dev") or n in ("val", "valid", "validation"):
        return "val"
    if n.startswith("test"):
        return "test"
    return ""


def _open_text(path: Path):
    try:
        return path.open(encoding="utf-8-sig", newline="")
    except OSError as e:
        raise ManifestError(f"{path}: cannot open corpus source ({e.strerror or e})") from None


def _first(row: dict[str, str], names: Iterable[str]) -> str:
    for n in names:
        v = row.get(n)
        if v is not None and v.strip():
            return v.strip()
    return ""


# ---------------------------------------------------------------- readers, one per format


def _read_jsonl(src: Path) -> Iterator[_Candidate]:
    root = src.parent
    known = set(Utterance.__dataclass_fields__)
    with _open_text(src) as fh:
        for n, d in json_objects(fh, src):
            key = str(d.get("id") or d.get("audio") or f"line {n}")
            if not d.get("id"):
                yield _Skip(key, "missing id")
                continue
            if not d.get("audio"):
                yield _Skip(key, "missing audio path")
                continue
            kw = {k: v for k, v in d.items() if k in known}
            kw["id"] = str(kw["id"])
            kw["text"] = str(kw.get("text") or "").strip()
            kw["audio"] = str(root / str(kw["audio"]))
            kw["duration"] = float(kw.get("duration") or 0.0)
            kw["translations"] = dict(kw.get("translations") or {})
            kw["split"] = split_from_name(str(kw.get("split") or ""))
            yield Utterance(**kw)


_CSV_AUDIO = ("audio", "path", "file")
_CSV_TEXT = ("text", "sentence", "transcript")


def _read_csv(src: Path) -> Iterator[_Candidate]:
    root = src.parent
    delimiter = "\t" if src.suffix.lower() == ".tsv" else ","
    with _open_text(src) as fh:
        reader = csv.DictReader(fh, delimiter=delimiter)
        try:
            header = [h.strip().lower() for h in (reader.fieldnames or [])]
        except csv.Error as e:
            raise ManifestError(f"{src}: not a readable CSV ({e})") from None
        if not header:
            raise ManifestError(f"{src}: no header row")
        reader.fieldnames = header
        if not any(c in header for c in _CSV_AUDIO) or not any(c in header for c in _CSV_TEXT):
            raise ManifestError(
                f"{src}: needs an audio column ({'/'.join(_CSV_AUDIO)}) and a text column ({'/'.join(_CSV_TEXT)})"
            )
        try:
            for n, row in enumerate(reader, 2):
                audio = _first(row, _CSV_AUDIO)
                if not audio:
                    yield _Skip(_first(row, ("id",)) or f"row {n}", "missing audio path")
                    continue
                # Without an id column the path (minus extension) is the id: unique, unlike the stem.
                uid = _first(row, ("id",)) or Path(audio).with_suffix("").as_posix()
                yield Utterance(
                    id=uid,
                    audio=str(root / audio),
                    text=_first(row, _CSV_TEXT),
                    lang=_first(row, ("lang",)) or "en",
                    voice=_first(row, ("voice",)),
                    domain=_first(row, ("domain",)),
                    split=split_from_name(_first(row, ("split",))),
                )
        except csv.Error as e:
            raise ManifestError(f"{src}: malformed CSV ({e})") from None


def _read_librispeech(src: Path) -> Iterator[_Candidate]:
    if not src.is_dir():
        raise ManifestError(f"{src}: not a LibriSpeech folder")
    transcripts = sorted(src.rglob("*.trans.txt"))
    if not transcripts:
        raise ManifestError(f"{src}: no LibriSpeech *.trans.txt files found")
    for trans in transcripts:
        chapter_dir = trans.parent
        speaker = chapter_dir.parent.name
        # <subset>/<speaker>/<chapter>/<speaker>-<chapter>.trans.txt
        split = split_from_name(chapter_dir.parent.parent.name)
        with _open_text(trans) as fh:
            for line in fh:
                parts = line.strip().split(maxsplit=1)
                if not parts:
                    continue
                uid = parts[0]
                yield Utterance(
                    id=uid,
                    audio=str(chapter_dir / f"{uid}.flac"),
                    text=parts[1] if len(parts) > 1 else "",
                    lang="en",
                    voice=speaker,
                    domain="audiobook",
                    split=split,
                )


def _read_commonvoice(src: Path) -> Iterator[_Candidate]:
    tsv = src / "validated.tsv" if src.is_dir() else src
    folder = tsv.parent
    split = split_from_name(tsv.name)
    with _open_text(tsv) as fh:
        # Sentences contain bare quotes; Common Voice TSVs are not CSV-quoted.
        reader = csv.DictReader(fh, delimiter="\t", quoting=csv.QUOTE_NONE)
        header = reader.fieldnames or []
        missing = [c for c in ("client_id", "path", "sentence") if c not in header]
        if missing:
            raise ManifestError(f"{tsv}: not a Common Voice TSV (missing column(s) {', '.join(missing)})")
        try:
            for n, row in enumerate(reader, 2):
                clip = (row.get("path") or "").strip()
                if not clip:
                    yield _Skip(f"row {n}", "missing audio path")
                    continue
                yield Utterance(
                    id=Path(clip).stem,
                    audio=str(folder / "clips" / clip),
                    text=(row.get("sentence") or "").strip(),
                    lang=(row.get("locale") or "").strip() or folder.name,
                    voice=(row.get("client_id") or "").strip(),
                    split=split,
                )
        except csv.Error as e:
            raise ManifestError(f"{tsv}: malformed TSV ({e})") from None


def _read_fleurs(src: Path) -> Iterator[_Candidate]:
    if src.is_dir():
        tsvs = [src / f"{s}.tsv" for s in ("train", "dev", "test") if (src / f"{s}.tsv").is_file()]
        if not tsvs:
            raise ManifestError(f"{src}: no FLEURS train.tsv/dev.tsv/test.tsv found")
    else:
        tsvs = [src]
    for tsv in tsvs:
        folder = tsv.parent
        name = tsv.stem  # audio/<name>/ even for a split we map, e.g. dev -> val
        split = split_from_name(name)
        lang = folder.name.split("_")[0]  # de_de -> de, cmn_hans_cn -> cmn
        with _open_text(tsv) as fh:
            for n, line in enumerate(fh, 1):
                line = line.rstrip("\r\n")
                if not line.strip():
                    continue
                cols = line.split("\t")
                if len(cols) < 3:
                    raise ManifestError(f"{tsv}:{n}: not a FLEURS row (expected id, file, transcription, ...)")
                fname = cols[1].strip()
                raw, norm = cols[2].strip(), (cols[3].strip() if len(cols) > 3 else "")
                # FLEURS ids name the sentence, read by several speakers: the file name is the unique key.
                uid = f"{split or name}-{Path(fname).stem}"
                yield Utterance(
                    id=uid,
                    audio=str(folder / "audio" / name / fname),
                    text=raw or norm,
                    lang=lang,
                    split=split,
                )


def _read_speechbrown(src: Path) -> Iterator[_Candidate]:
    meta = src / "global_metadata.json" if src.is_dir() else src
    with _open_text(meta) as fh:
        try:
            data = json.load(fh)
        except json.JSONDecodeError as e:
            raise ManifestError(f"{meta}: not valid JSON ({e.msg} at line {e.lineno})") from None
    if isinstance(data, dict):
        entries = [{"id": k, **v} if isinstance(v, dict) else v for k, v in data.items()]
    elif isinstance(data, list):
        entries = data
    else:
        raise ManifestError(f"{meta}: expected a JSON list (or id -> entry object)")
    for i, e in enumerate(entries):
        if not isinstance(e, dict):
            raise ManifestError(f"{meta}: entry {i} is not a JSON object")
        key = str(e.get("id") or e.get("file_path") or f"entry {i}")
        if not e.get("file_path"):
            yield _Skip(key, "missing audio path")
            continue
        yield Utterance(
            id=str(e.get("id") or Path(e["file_path"]).stem),
            audio=str(meta.parent / e["file_path"]),
            text=str(e.get("text") or "").strip(),
            lang="en",
            voice="speechbrown-tacotron2",
            engine="tacotron2",
            domain=str(e.get("category") or ""),
        )


# Asterisk prompts shorter than this are digits, letters and single words, not sentences.
ASTERISK_MIN_WORDS = 4


def _asterisk_texts(src: Path) -> dict[str, dict[str, str]]:
    """lang -> prompt name -> text, from every core-sounds-LANG.txt(.gz) under src. The French and
    Spanish files are UTF-8 in some releases and Latin-1 in others."""
    import gzip
    import re

    out: dict[str, dict[str, str]] = {}
    for f in sorted(src.rglob("core-sounds-*.txt*")):
        m = re.match(r"core-sounds-([a-z]{2})", f.name)
        if not m:
            continue
        raw = gzip.decompress(f.read_bytes()) if f.suffix == ".gz" else f.read_bytes()
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            text = raw.decode("latin-1")
        prompts = out.setdefault(m.group(1), {})
        for line in text.splitlines():
            name, sep, said = line.partition(":")
            if sep and not line.startswith(";") and name.strip() and " " not in name.strip():
                prompts[name.strip()] = " ".join(said.split())
    return out


def _is_sentence(text: str) -> bool:
    return "[" not in text and len(text.split()) >= ASTERISK_MIN_WORDS


def _read_asterisk(src: Path) -> Iterator[_Candidate]:
    """Debian's asterisk-core-sounds-LANG(-wav) packages unpacked under src (`dpkg-deb -x`): one
    voice artist per language, 8 kHz phone prompts. Prompt names are parallel across languages,
    so each sentence prompt carries its translations. Only prompts of ASTERISK_MIN_WORDS+ words."""
    texts = _asterisk_texts(src)
    if not texts:
        raise ManifestError(f"{src}: no core-sounds-LANG.txt(.gz) prompt list found (unpack the asterisk-core-sounds-LANG packages there)")
    voices = sorted(d for d in src.rglob("sounds/*") if d.is_dir() and d.name[:2].lower() in texts)
    for voice_dir in voices:
        lang = voice_dir.name[:2].lower()
        for name, said in sorted(texts[lang].items()):
            key = f"{voice_dir.name}/{name}"
            if not _is_sentence(said):
                yield _Skip(key, f"fewer than {ASTERISK_MIN_WORDS} words or not speech", lang)
                continue
            audio = voice_dir / f"{name}.wav"
            if not audio.is_file():
                yield _Skip(key, "audio file not found", lang)
                continue
            others = {lg: t[name] for lg, t in texts.items() if lg != lang and name in t and _is_sentence(t[name])}
            yield Utterance(id=f"asterisk-{lang}-{name.replace('/', '-')}", audio=str(audio), text=said, lang=lang,
                            voice=f"asterisk:{voice_dir.name}", engine="human", domain="phone-prompt", split="test",
                            translations=others)


# Fish Fillets levels kept out of every training, validation and tuning choice, in any language
# (../shared/reference/offline-stack.md): the held-out test of whoever measures clasp.
FILLETS_RESERVED = frozenset(
    "atlantis bathroom broom cancan cave city corals creatures electromagnet elk engine floppy grail hole keys "
    "library map nowall pavement puzzle reef society steel tetris viking1 wc".split())
# Every FILLETS_VAL_EVERY-th other level (in name order) is validation; the rest train.
FILLETS_VAL_EVERY = 4


def _lua_strings(text: str) -> Iterator[tuple[str, list[str]]]:
    """(call, its string arguments) for each dialogId(...) / dialogStr(...) in a Fish Fillets script."""
    import re

    call = re.compile(r'\b(dialogId|dialogStr)\(\s*((?:"(?:[^"\\]|\\.)*"\s*,?\s*)+)\)')
    arg = re.compile(r'"((?:[^"\\]|\\.)*)"')
    for m in call.finditer(text):
        yield m.group(1), [re.sub(r"\\(.)", lambda e: {"n": " ", "t": " "}.get(e.group(1), e.group(1)), a)
                           for a in arg.findall(m.group(2))]


def fillets_levels(src: Path) -> dict[str, str]:
    """Level name -> "train" or "val" for every level with Czech speech, the reserved ones left out."""
    levels = sorted(d.parent.name for d in (src.rglob("sound/*/cs")) if d.is_dir() and d.parent.name not in FILLETS_RESERVED)
    return {lv: "val" if n % FILLETS_VAL_EVERY == FILLETS_VAL_EVERY - 1 else "train" for n, lv in enumerate(levels)}


def _read_fillets(src: Path) -> Iterator[_Candidate]:
    """Fish Fillets' Czech voice acting (Debian fillets-ng-data-cs and fillets-ng-data unpacked
    under src with dpkg-deb -x). Each clip is one line of a level's dialogue; its Czech text is
    the original, the script gives the English and every other translation, and the font names
    the character who speaks it. The reserved levels are never read."""
    scripts = {d.parent.name: d.parent for d in src.rglob("script/*/dialogs_cs.lua")}
    sounds = {d.parent.name: d for d in src.rglob("sound/*/cs") if d.is_dir()}
    if not scripts or not sounds:
        raise ManifestError(f"{src}: no Fish Fillets script/LEVEL/dialogs_cs.lua or sound/LEVEL/cs/ found "
                            "(unpack fillets-ng-data and fillets-ng-data-cs there with dpkg-deb -x)")
    for level, split in fillets_levels(src).items():
        if level not in scripts:
            continue
        texts: dict[str, dict[str, str]] = {}  # id -> lang -> text
        speaker: dict[str, str] = {}
        order: list[str] = []
        for f in sorted(scripts[level].glob("dialogs_*.lua")):
            lang = f.stem.removeprefix("dialogs_")
            if "_" in lang:  # de_CH and the like: a regional copy of a language already read
                continue
            current = None
            for fn, args in _lua_strings(f.read_text(encoding="utf-8", errors="replace")):
                if fn == "dialogId" and len(args) >= 3:
                    current = args[0]
                    if lang == "cs":
                        speaker[current] = args[1].removeprefix("font_")
                        order.append(current)
                    if args[2].strip():
                        texts.setdefault(current, {}).setdefault("en", " ".join(args[2].split()))
                elif fn == "dialogStr" and current is not None and args and args[0].strip():
                    texts.setdefault(current, {})[lang] = " ".join(args[0].split())
        for line in order:
            key = f"{level}/{line}"
            said = texts.get(line, {})
            audio = sounds.get(level, Path("/nonexistent")) / f"{line}.ogg"
            if not said.get("cs"):
                yield _Skip(key, "no Czech text", "cs")
            elif not audio.is_file():
                yield _Skip(key, "audio file not found", "cs")
            elif said["cs"].startswith("mplayer "):
                yield _Skip(key, "not speech (a stage direction)", "cs")
            else:
                yield Utterance(id=f"fillets-{level}-{line}", audio=str(audio), text=said["cs"], lang="cs",
                                voice=f"fillets:{speaker.get(line) or 'unknown'}", engine="human", domain="game-dialogue",
                                split=split, translations={lg: t for lg, t in said.items() if lg != "cs"}, episode=level)


# festvox-ru: every FESTVOX_VAL_EVERY-th sentence is validation; sentences are grouped in script
# order into episodes of FESTVOX_EPISODE (the book is read in order, so an episode is a passage).
FESTVOX_VAL_EVERY = 10
FESTVOX_EPISODE = 20


def festvox_text(raw: str) -> str:
    """A festvox-ru prompt as plain Russian: no stress marks (+), no commas (the recordings'
    prompts put one at every prosodic break, so they say little about the sentence)."""
    return " ".join(raw.replace("+", "").replace(",", " ").split())


def _read_festvox_ru(src: Path) -> Iterator[_Candidate]:
    """The festvox-ru recordings (Debian festvox-ru: one male speaker reading 620 sentences of a
    novel, 16 kHz), from its etc/txt.done.data and wav/ folder, found anywhere under src."""
    import re

    found = sorted(src.rglob("etc/txt.done.data")) if src.is_dir() else []
    if not found:
        raise ManifestError(f"{src}: no etc/txt.done.data found (the festvox-ru voice, e.g. "
                            "/usr/share/festival/voices/russian/msu_ru_nsh_clunits)")
    voice = found[0].parent.parent
    line_re = re.compile(r'^\(\s*(\S+)\s+"(.*)"\s*\)\s*$')
    lines = found[0].read_text(encoding="utf-8", errors="replace").splitlines()
    for n, line in enumerate(x for x in lines if x.strip()):
        m = line_re.match(line.strip())
        if not m:
            yield _Skip(f"{found[0]}:{n + 1}", "not a ( id \"text\" ) line", "ru")
            continue
        key, text = m.group(1), festvox_text(m.group(2))
        audio = voice / "wav" / f"{key}.wav"
        if not text:
            yield _Skip(key, "no text", "ru")
        elif not audio.is_file():
            yield _Skip(key, "audio file not found", "ru")
        else:
            yield Utterance(id=f"festvox-ru-{key}", audio=str(audio), text=text, lang="ru", voice="festvox-ru:msu_nsh",
                            engine="human", domain="read-book", split="val" if n % FESTVOX_VAL_EVERY == FESTVOX_VAL_EVERY - 1
                            else "train", episode=f"festvox-ru-{n // FESTVOX_EPISODE:02d}")


_READERS: dict[str, Callable[[Path], Iterator[_Candidate]]] = {
    "jsonl": _read_jsonl,
    "csv": _read_csv,
    "librispeech": _read_librispeech,
    "commonvoice": _read_commonvoice,
    "fleurs": _read_fleurs,
    "speechbrown": _read_speechbrown,
    "asterisk": _read_asterisk,
    "fillets": _read_fillets,
    "festvox-ru": _read_festvox_ru,
}


# ---------------------------------------------------------------- shared driver


def import_corpus(
    fmt: str,
    src: str | Path,
    out: str | Path,
    *,
    with_duration: bool = True,
    progress: Callable[[int], None] | None = None,
    langs: Iterable[str] | None = None,
    split: str | None = None,
) -> ImportSummary:
    """Import the corpus at `src` (layout `fmt`, one of FORMATS) into the manifest file `out`.

    Bad items are skipped with a reason; a missing or malformed source raises ManifestError.
    `progress`, if given, is called with the number of items examined so far. `langs`: keep only
    utterances in these languages. `split`: keep only utterances of this split (train, val, ...).
    The manifest is written once, atomically, and only if at least one utterance was importable.
    """
    if fmt not in _READERS:
        raise UsageError(f"unknown corpus format {fmt!r}; choose one of: {', '.join(FORMATS)}")
    src, out = Path(src), Path(out)
    if not src.exists():
        raise ManifestError(f"{src}: corpus source not found")
    if out.is_dir():
        raise UsageError(f"{out}: is a folder; give the manifest file to write, e.g. {out / 'manifest.jsonl'}")

    kept: list[Utterance] = []
    skipped: list[tuple[str, str]] = []
    seen: set[str] = set()
    seconds = 0.0
    keep_langs = set(langs) if langs else None
    for n, item in enumerate(_READERS[fmt](src), 1):
        item_lang = item.lang if isinstance(item, (Utterance, _Skip)) else None
        if keep_langs is not None and item_lang is not None and item_lang not in keep_langs:
            continue
        if split is not None and (not isinstance(item, Utterance) or item.split != split):
            continue
        reason = _check(item, seen)
        if reason is None and with_duration:
            try:
                d = audio_info(item.audio).duration
                # Some containers give no length in the header; 0.0 is the manifest's "unknown".
                item.duration = d if math.isfinite(d) else 0.0
            except AudioError as e:
                reason = e.reason
        if reason is None:
            seen.add(item.id)
            seconds += item.duration
            item.audio = relative_audio(item.audio, out)
            kept.append(item)
        else:
            skipped.append((item.key if isinstance(item, _Skip) else item.id, reason))
        if progress is not None:
            progress(n)

    if not kept:
        raise ManifestError(f"{src}: no importable utterances ({len(skipped)} skipped), nothing written")
    written = write_manifest(out, kept)
    return ImportSummary(written=written, skipped=skipped, out=out, hours=seconds / 3600)


def _check(item: _Candidate, seen: set[str]) -> str | None:
    """Why a candidate cannot be imported, or None. Cheap checks only; decoding comes later."""
    if isinstance(item, _Skip):
        return item.reason
    if not item.text.strip():
        return "empty text"
    if item.id in seen:
        return "duplicate id"
    if not Path(item.audio).is_file():
        return "audio file not found"
    return None
