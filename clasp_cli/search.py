"""`clasp search`: a text (or a recording) -> ranked passages from an index."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from .errors import UsageError
from .store import IndexError_, Store


@dataclass
class Result:
    rank: int
    score: float
    path: str
    start: float  # the best-matching window
    end: float
    passage_start: float  # the run of neighbouring hit windows around it
    passage_end: float
    # Not part of the JSON schema: the server uses it to address the passage's audio.
    passage_id: int = field(default=0, repr=False, compare=False)

    def to_json(self) -> dict:
        return {"rank": self.rank, "score": self.score, "path": self.path, "start": self.start, "end": self.end,
                "passage_start": self.passage_start, "passage_end": self.passage_end}


# Hit windows of one file closer than this (seconds) are one result: neighbours, not rivals.
GROUP_GAP = 1.0
# Windows fetched per result asked for, so grouping still leaves top_k results.
FETCH_FACTOR = 4


@dataclass
class SearchResponse:
    query: str
    results: list[Result]

    def to_json(self) -> dict:
        """The documented --json schema: {"query", "results": [{"rank","score","path","start","end",
        "passage_start","passage_end"}]}."""
        return {"query": self.query, "results": [r.to_json() for r in self.results]}


def open_model_for(store: Store, model=None, device: str = "auto"):
    """The model an index was built with (recorded in it), so search needs no --model flag."""
    from .registry import load_model

    if model is None:
        ref = store.meta("model_ref")
        if ref is None:
            raise IndexError_(f"{store.dir}: index records no model; rebuild it with `clasp index`")
        model = load_model(ref, device=device)
    if model.id != store.meta("model_id"):
        raise IndexError_(
            f"{store.dir} was built with {store.meta('model_id')} but the model now is {model.id}; "
            "re-index (clasp index --index DIR PATH...) or use the original weights"
        )
    return model


class Searcher:
    """An open index plus its model: what a long-running process keeps to answer many queries.

    Opening loads the HNSW graph once; each query then costs one text embedding, one graph
    lookup and one SQLite read.
    """

    def __init__(self, index_dir: str | Path, model=None, device: str = "auto"):
        from .devices import check_device

        check_device(device)  # before any work: a typo must not wait for the index to load
        self.store = Store.open(index_dir)
        try:
            self.model = open_model_for(self.store, model, device)
            from .text_cache import install

            install(self.model)  # a cold start maps the text encoder instead of unpacking it
            self.store.graph()
        except BaseException:
            self.store.close()
            raise

    def close(self) -> None:
        self.store.close()

    def __enter__(self) -> "Searcher":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def search(
        self,
        query: str | None,
        *,
        audio: str | Path | None = None,
        top_k: int = 10,
        min_score: float | None = None,
        path_glob: str | None = None,
    ) -> SearchResponse:
        """Search by text in any language the model's text encoder knows, or by an example recording."""
        if (query is None) == (audio is None):
            raise UsageError("give either a text query or --audio FILE, not both")
        if top_k < 1:
            raise UsageError("--top-k must be at least 1")
        model = self.model
        if audio is not None:
            from .audio import load_audio
            from .errors import AudioError
            from .passages import has_speech

            wave = load_audio(audio, model.config.sample_rate, max_seconds=30.0)
            if not has_speech(wave, model.config.sample_rate):
                # A silent query still embeds to some vector, and its "hits" would be noise.
                raise AudioError(audio, "no speech found in the query recording (silent or too quiet)")
            vec = model.embed_audio([wave])[0]
            label = f"audio:{audio}"
        else:
            if not query.strip():
                raise UsageError("empty query")
            vec = model.embed_text([query])[0]
            label = query
        if path_glob and not any(c in path_glob for c in "*?["):
            path_glob = f"*{path_glob}*"
        hits = self.store.search(vec, k=top_k * FETCH_FACTOR, path_glob=path_glob)
        # Text queries on a calibrated model score as match probabilities; audio queries compare
        # speech with speech, which the calibration was not fitted on, so they stay cosines.
        scores = [float(x) for x in (model.match_score([h.score for h in hits]) if audio is None else [h.score for h in hits])]
        groups = group_hits([(h.path, h.start, h.end, sc, h.passage_id) for h, sc in zip(hits, scores)])[:top_k]
        results = [Result(i + 1, round(g.score, 4), g.path, g.start, g.end, g.passage_start, g.passage_end, g.passage_id)
                   for i, g in enumerate(groups) if min_score is None or g.score >= min_score]
        return SearchResponse(label, results)


@dataclass
class _Run:
    path: str
    start: float
    end: float
    score: float
    passage_id: int
    passage_start: float
    passage_end: float


def group_hits(hits: list[tuple[str, float, float, float, int]], gap: float = GROUP_GAP) -> list[_Run]:
    """(path, start, end, score, passage id) in score order -> one run per moment of a recording.

    A hit within `gap` seconds of a better hit's run in the same file joins that run; the run
    keeps its best window's span, score and id, and spans all its windows.
    """
    runs: list[_Run] = []
    for path, start, end, score, pid in hits:
        for r in runs:
            if r.path == path and start <= r.passage_end + gap and end >= r.passage_start - gap:
                r.passage_start, r.passage_end = min(r.passage_start, start), max(r.passage_end, end)
                break
        else:
            runs.append(_Run(path, start, end, score, pid, start, end))
    return runs


def search(
    query: str | None,
    index_dir: str | Path,
    *,
    audio: str | Path | None = None,
    top_k: int = 10,
    min_score: float | None = None,
    path_glob: str | None = None,
    model=None,
    device: str = "auto",
) -> SearchResponse:
    """One query against an index (opens and closes it). Keep a Searcher open for many queries."""
    with Searcher(index_dir, model, device) as s:
        return s.search(query, audio=audio, top_k=top_k, min_score=min_score, path_glob=path_glob)
