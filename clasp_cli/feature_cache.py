"""On-disk cache of frozen-encoder outputs, so encoders run once per corpus, not once per run.

Layout: <root>/<namespace>/shard-*.safetensors (float16 tensors named "<key>/<field>") and an
append-only index.jsonl. A shard is renamed into place before its keys are indexed, so a
crash loses at most the shard being written and never corrupts what is already cached.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import uuid
from pathlib import Path
from typing import Callable, Iterable

import numpy as np


def file_key(path: str | Path, on_chunk: Callable[[], None] | None = None) -> str:
    """Content hash: renaming or moving a file keeps its cache entry. on_chunk is called after
    every MiB read (so a caller can tell a slow read from a stalled one)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
            if on_chunk is not None:
                on_chunk()
    return h.hexdigest()[:32]


def text_key(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:32]


def namespace(*parts: str) -> str:
    """A folder name from encoder ids and settings, e.g. 'whisper-tiny.en_mel64'."""
    return "_".join(re.sub(r"[^A-Za-z0-9.+-]+", "-", p).strip("-") for p in parts)


class FeatureCache:
    def __init__(self, root: str | Path, ns: str):
        self.dir = Path(root) / ns
        self.dir.mkdir(parents=True, exist_ok=True)
        self.index_path = self.dir / "index.jsonl"
        self._index: dict[str, str] = {}
        if self.index_path.exists():
            for line in self.index_path.read_text(encoding="utf-8").splitlines():
                try:
                    d = json.loads(line)
                except json.JSONDecodeError:
                    continue  # a torn last line from a crash: that shard is simply recomputed
                if (self.dir / d["shard"]).exists():
                    self._index[d["key"]] = d["shard"]

    def __contains__(self, key: str) -> bool:
        return key in self._index

    def __len__(self) -> int:
        return len(self._index)

    def put(self, items: dict[str, dict[str, np.ndarray]]) -> None:
        """Write one shard holding every item, then index it."""
        if not items:
            return
        from safetensors.numpy import save_file

        tensors = {f"{k}/{field}": np.ascontiguousarray(v, dtype=np.float16) for k, fields in items.items() for field, v in fields.items()}
        name = f"shard-{uuid.uuid4().hex[:12]}.safetensors"
        tmp = self.dir / f".{name}.tmp"
        save_file(tensors, str(tmp))
        os.replace(tmp, self.dir / name)
        with self.index_path.open("a", encoding="utf-8") as fh:
            for k in items:
                fh.write(json.dumps({"key": k, "shard": name}) + "\n")
                self._index[k] = name

    def get(self, keys: Iterable[str]) -> dict[str, dict[str, np.ndarray]]:
        """Cached items for the keys present (float16 arrays); absent keys are left out."""
        from safetensors import safe_open

        by_shard: dict[str, list[str]] = {}
        for k in keys:
            if k in self._index:
                by_shard.setdefault(self._index[k], []).append(k)
        out: dict[str, dict[str, np.ndarray]] = {}
        for shard, ks in by_shard.items():
            wanted = set(ks)
            with safe_open(str(self.dir / shard), framework="numpy") as f:
                for name in f.keys():
                    k, field = name.split("/", 1)
                    if k in wanted:
                        out.setdefault(k, {})[field] = f.get_tensor(name)
        return out
