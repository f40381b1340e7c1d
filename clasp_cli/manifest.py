"""The manifest: one JSON object per line, one utterance each. Used by dataset, train and benchmark.

This module is the single definition of the schema. Audio paths are stored relative to the
manifest's folder when they lie under it, so a corpus folder can be moved as a whole.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Iterable, Iterator

from .errors import ManifestError
from .fsutil import atomic_path

SPLITS = ("train", "val", "test")
REQUIRED = ("id", "audio", "text")


@dataclass
class Utterance:
    id: str
    audio: str
    text: str
    lang: str = "en"
    voice: str = ""
    engine: str = ""
    domain: str = ""
    duration: float = 0.0
    split: str = ""
    translations: dict[str, str] = field(default_factory=dict)
    # The longer recording this utterance belongs to, in order (a game level's dialogue): what
    # `clasp benchmark --archive` joins into one episode. Empty: stands alone.
    episode: str = ""

    def audio_path(self, root: str | Path) -> Path:
        """Absolute path of the audio, resolving a relative one against the manifest folder."""
        p = Path(self.audio)
        return p if p.is_absolute() else Path(root) / p

    def to_json(self) -> str:
        d = asdict(self)
        if not d["translations"]:
            del d["translations"]
        if not d["episode"]:
            del d["episode"]
        return json.dumps(d, ensure_ascii=False)

    @classmethod
    def from_dict(cls, d: dict, where: str = "") -> "Utterance":
        missing = [k for k in REQUIRED if not d.get(k)]
        if missing:
            raise ManifestError(f"{where}: missing field(s) {', '.join(missing)}")
        known = {f for f in cls.__dataclass_fields__}
        kwargs = {k: v for k, v in d.items() if k in known}
        try:
            kwargs["id"] = str(kwargs["id"])
            kwargs["duration"] = float(kwargs.get("duration") or 0.0)
            kwargs["translations"] = dict(kwargs.get("translations") or {})
        except (TypeError, ValueError) as e:
            raise ManifestError(f"{where}: a field has the wrong type ({e})") from None
        bad = [k for k in ("audio", "text") if not isinstance(kwargs.get(k), str)]
        if bad:
            raise ManifestError(f"{where}: {', '.join(bad)} must be text")
        return cls(**kwargs)


def iter_manifest(path: str | Path) -> Iterator[Utterance]:
    """Yield the utterances of a JSONL manifest; a bad line raises ManifestError naming it."""
    path = Path(path)
    try:
        fh = path.open(encoding="utf-8")
    except OSError as e:
        raise ManifestError(f"{path}: cannot open manifest ({e.strerror or e})") from None
    with fh:
        try:
            for n, d in json_objects(fh, path):
                yield Utterance.from_dict(d, where=f"{path}:{n}")
        except UnicodeDecodeError as e:
            raise ManifestError(f"{path}: not UTF-8 text (byte {e.start} of a line cannot be decoded)") from None


def json_objects(lines: Iterable[str], path: str | Path) -> Iterator[tuple[int, dict]]:
    """(line number, object) for each non-blank JSON line; a bad line raises ManifestError naming it."""
    for n, line in enumerate(lines, 1):
        line = line.strip()
        if not line:
            continue
        try:
            d = json.loads(line)
        except json.JSONDecodeError as e:
            raise ManifestError(f"{path}:{n}: not valid JSON ({e.msg})") from None
        if not isinstance(d, dict):
            raise ManifestError(f"{path}:{n}: expected a JSON object")
        yield n, d


def read_manifest(path: str | Path, split: str | None = None) -> list[Utterance]:
    """All utterances of a manifest, optionally only one split."""
    items = [u for u in iter_manifest(path) if split is None or u.split == split]
    return items


def relative_audio(audio: str | Path, manifest_path: str | Path) -> str:
    """Audio path as stored: relative to the manifest folder when inside it, else absolute."""
    audio = Path(audio).resolve()
    root = Path(manifest_path).resolve().parent
    try:
        return audio.relative_to(root).as_posix()
    except ValueError:
        return str(audio)


def write_manifest(path: str | Path, items: Iterable[Utterance]) -> int:
    """Write a manifest atomically: a crash leaves either the old file or the new one, never half."""
    n = 0
    with atomic_path(path) as tmp:
        with open(tmp, "w", encoding="utf-8") as fh:
            for u in items:
                fh.write(u.to_json() + "\n")
                n += 1
            fh.flush()
            os.fsync(fh.fileno())
    return n
