"""`clasp search`: a text (or a recording) -> ranked passages from an index."""

from __future__ import annotations

import re
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np

from .errors import AudioError, UsageError
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
    text: str | None = None  # what was said in the best window, when it has been transcribed

    def to_json(self) -> dict:
        row = {"rank": self.rank, "score": self.score, "path": self.path, "start": self.start, "end": self.end,
               "passage_start": self.passage_start, "passage_end": self.passage_end}
        if self.text is not None:
            row["text"] = self.text
        return row


# Hit windows of one file closer than this (seconds) are one result: neighbours, not rivals.
GROUP_GAP = 1.0
# Windows fetched per result asked for, so grouping still leaves top_k results.
FETCH_FACTOR = 4
# Windows `--rerank` reads when no N is given and the model names none (ModelConfig.rerank_windows).
# On the validation archives (benchmarks/rerank_tuning.py, clasp-tiny) N=20 gains 0.02 HITS@1 over
# N=10 and N=30 only 0.003 more, for 50% more transcription.
DEFAULT_RERANK = 20
TRANSCRIPT_VECTORS_KEPT = 20_000  # about 40 MB of 512-d vectors
MODES = ("vector", "keyword", "hybrid")
# Reciprocal-rank fusion's constant (Cormack et al. 2009): damps the head of each list so one
# list's first place cannot outvote agreement further down.
RRF_K = 60
# Hybrid search weighs each keyword hit by (share of the query's words it holds) ** this; 0 is
# plain reciprocal-rank fusion. Chosen on the validation archives (benchmarks/hybrid_tuning.py).
HYBRID_COVERAGE_POWER = 2.0


@dataclass
class SearchResponse:
    query: str
    results: list[Result]

    def to_json(self) -> dict:
        """The documented --json schema: {"query", "results": [{"rank","score","path","start","end",
        "passage_start","passage_end"}]}, each result also with "text" when its window was transcribed."""
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
        # Transcript text -> its text-encoder vector, for --rerank: a query whose windows were all
        # read before then costs one text embedding (the query's), not one per window.
        self._transcript_vecs: OrderedDict[str, np.ndarray] = OrderedDict()

    def _embed_transcripts(self, texts: list[str]) -> np.ndarray:
        todo = list(dict.fromkeys(t for t in texts if t not in self._transcript_vecs))
        if todo:
            for t, v in zip(todo, self.model.embed_text(todo)):
                self._transcript_vecs[t] = v
        for t in texts:
            self._transcript_vecs.move_to_end(t)
        while len(self._transcript_vecs) > TRANSCRIPT_VECTORS_KEPT:
            self._transcript_vecs.popitem(last=False)
        return np.stack([self._transcript_vecs[t] for t in texts])

    def close(self) -> None:
        self.store.close()

    def transcriber(self):
        """The Whisper of the index's encoder family, loaded on first use (seconds) and kept."""
        from .transcribe import shared_transcriber, whisper_for

        return shared_transcriber(whisper_for(self.model.config.speech_encoder), self.model.device)

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
        min_score: float | str | None = None,
        path_glob: str | None = None,
        mode: str | None = None,
        rerank: int | bool = 0,
    ) -> SearchResponse:
        """Search by text in any language the model's text encoder knows, or by an example recording.

        mode: vector (CLASP embeddings), keyword (the transcripts' words; needs `clasp index
        --transcribe`) or hybrid (both, fused by reciprocal rank); None: hybrid when the index was
        transcribed, else vector. rerank: transcribe the best N windows of the vector list (once
        each, cached in the index) and reorder them by what was said; True reads the model's
        default number (`rerank_windows`, else DEFAULT_RERANK). min_score: hide results below
        it; "auto" is the model's calibrated default for text queries in vector mode (what `clasp
        search` uses), and no threshold where scores are on another scale (audio, fused, reranked).
        """
        if (query is None) == (audio is None):
            raise UsageError("give either a text query or --audio FILE, not both")
        if top_k < 1:
            raise UsageError("--top-k must be at least 1")
        if rerank is True:
            rerank = default_rerank(self.model)
        rerank = int(rerank)
        if rerank < 0:
            raise UsageError("--rerank must be at least 1 (or 0 for none)")
        if mode is not None and mode not in MODES:
            raise UsageError(f"--mode must be one of {', '.join(MODES)} (got {mode!r})")
        transcribed = self.store.transcribed()
        if mode is None:
            mode = "hybrid" if transcribed and audio is None else "vector"
        if mode != "vector" and audio is not None:
            raise UsageError(f"--mode {mode} searches transcripts with words; a recording searches with --mode vector")
        if mode != "vector" and not transcribed:
            raise UsageError(f"--mode {mode} needs transcripts, and {self.store.dir} has none: "
                             "index with `clasp index --transcribe` first")
        if mode == "keyword" and rerank:
            raise UsageError("--rerank reorders the vector search's windows; use it with --mode vector or hybrid")
        model = self.model
        if min_score == AUTO_MIN_SCORE:
            min_score = model.default_min_score if mode == "vector" and audio is None and not rerank else None
        elif isinstance(min_score, str):
            raise UsageError(f"--min-score must be a number or {AUTO_MIN_SCORE!r} (got {min_score!r})")
        if audio is not None:
            from .audio import load_audio
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
            vec = None if mode == "keyword" else model.embed_text([query])[0]
            label = query
        if path_glob and not any(c in path_glob for c in "*?["):
            path_glob = f"*{path_glob}*"
        fetch = top_k * FETCH_FACTOR
        texts: dict[int, str] = {}
        hits: list[tuple[str, float, float, float, int]] = []  # (path, start, end, score, passage id), best first
        if vec is not None:
            found = self.store.search(vec, k=max(fetch, rerank), path_glob=path_glob)
            # Text queries on a calibrated model score as match probabilities; audio queries compare
            # speech with speech, which the calibration was not fitted on, so they stay cosines.
            scores = [float(x) for x in (model.match_score([h.score for h in found], vec) if audio is None else [h.score for h in found])]
            hits = [(h.path, h.start, h.end, sc, h.passage_id) for h, sc in zip(found, scores)]
            if rerank:
                hits, texts = self._rerank(vec, hits, rerank)
        if mode != "vector":
            words = self.store.keyword_search(fts_query(query, any_word=mode == "hybrid"), k=fetch, path_glob=path_glob)
            keyword = [(h.path, h.start, h.end, round(h.score, 4), h.passage_id) for h in words]
            if mode == "keyword":
                hits = keyword
            else:
                said = self.store.transcripts([h[4] for h in keyword])
                texts.update(said)  # the snippets below need no second read of these
                asked = query_terms(query)
                hits = rrf(hits[:fetch], keyword,
                           weights=[None, [keyword_weight(asked, said.get(h[4], "")) for h in keyword]])
        groups = group_hits(hits)[:top_k]
        missing = [g.passage_id for g in groups if g.passage_id not in texts]
        texts.update(self.store.transcripts(missing))
        results = [Result(i + 1, round(g.score, 4), g.path, g.start, g.end, g.passage_start, g.passage_end, g.passage_id,
                          texts.get(g.passage_id))
                   for i, g in enumerate(groups) if min_score is None or g.score >= min_score]
        return SearchResponse(label, results)

    def _rerank(self, vec, hits: list[tuple], n: int) -> tuple[list[tuple], dict[int, str]]:
        """The first n hits reordered by the fused score (and scored by it), the rest after them."""
        from .rerank import TEXT_WEIGHT, Candidate, rerank

        head = [Candidate(pid, score, path, start, end) for path, start, end, score, pid in hits[:n]]
        def windows_audio(todo: list[Candidate]) -> list:
            # One pass per file, with the reader indexing used, so Whisper hears exactly the indexed samples.
            from .passages import Span, iter_passage_audio

            waves: dict[int, object] = {}
            for path in {c.path for c in todo}:
                mine = sorted((c for c in todo if c.path == path), key=lambda c: c.start)
                rec = self.store.file(path)
                try:
                    for c, (_, wave) in zip(mine, iter_passage_audio(rec.fs_path if rec else path,
                                                                      [Span(c.start, c.end) for c in mine],
                                                                      self.model.config.sample_rate)):
                        waves[c.id] = wave
                except AudioError:  # changed or gone since indexing: its windows keep their first-stage place
                    continue
            return [waves.get(c.id) for c in todo]

        weight = self.model.config.rerank_text_weight
        ranked, texts = rerank(vec, head, self.store, windows_audio, lambda waves: self.transcriber().transcribe_batch(waves),
                               self._embed_transcripts, TEXT_WEIGHT if weight is None else weight)
        return [(c.path, c.start, c.end, c.score, c.id) for c in ranked] + hits[n:], texts


def default_rerank(model) -> int:
    """Windows a bare `--rerank` reads with this model: its own `rerank_windows`, else DEFAULT_RERANK."""
    return model.config.rerank_windows or DEFAULT_RERANK


AUTO_MIN_SCORE = "auto"


def score(value: str) -> float | str:
    """A --min-score value as typed: a number, or "auto" (the model's calibrated threshold)."""
    return value if value == AUTO_MIN_SCORE else float(value)

_PHRASE = re.compile(r'"([^"]*)"|(\S+)')


def fts_query(text: str, any_word: bool = False) -> str:
    """A user's words as an FTS5 query that means only what they typed.

    Every word is quoted, so FTS5's operators (AND, OR, NOT, NEAR, *, ^, column filters) and stray
    quotes are plain words; text in double quotes stays one phrase. Words must all appear, or,
    with `any_word` (the hybrid mode's keyword half), any of them may. Empty when no word remains.
    """
    terms = []
    for phrase, word in _PHRASE.findall(text.replace("\x00", " ")):
        part = phrase if phrase else word
        if re.search(r"\w", part):  # punctuation alone is no word (and an empty phrase is an FTS5 error)
            terms.append('"' + part.replace('"', '""') + '"')
    return (" OR " if any_word else " ").join(terms)


def rrf(*lists: list[tuple], k: int = RRF_K, weights: Sequence[Sequence[float] | None] | None = None) -> list[tuple]:
    """Reciprocal-rank fusion of ranked hit lists: a window's score is the sum of w / (k + rank),
    w being 1 unless `weights` gives one per hit of that list."""
    fused: dict[int, list] = {}
    for n, hits in enumerate(lists):
        w = weights[n] if weights is not None and weights[n] is not None else None
        for rank, (path, start, end, _score, pid) in enumerate(hits, 1):
            row = fused.setdefault(pid, [path, start, end, 0.0, pid])
            row[3] += (1.0 if w is None else w[rank - 1]) / (k + rank)
    return sorted((tuple(r) for r in fused.values()), key=lambda r: -r[3])


_TERM = re.compile(r"\w+")


def query_terms(text: str) -> set[str]:
    """The distinct words of a query or transcript, case-folded (as FTS5's tokenizer compares them)."""
    return set(_TERM.findall(text.casefold()))


def keyword_weight(asked: set[str], transcript: str, power: float | None = None) -> float:
    """How much a keyword hit counts in hybrid fusion: the share of the query's words its transcript
    holds, to the power HYBRID_COVERAGE_POWER. A hit that holds one stray word of a long query (a
    German query meeting English transcripts) then barely moves the vector ranking."""
    if not asked:
        return 0.0
    share = len(asked & query_terms(transcript)) / len(asked)
    return share ** (HYBRID_COVERAGE_POWER if power is None else power)


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
    mode: str | None = None,
    rerank: int | bool = 0,
) -> SearchResponse:
    """One query against an index (opens and closes it). Keep a Searcher open for many queries."""
    with Searcher(index_dir, model, device) as s:
        return s.search(query, audio=audio, top_k=top_k, min_score=min_score, path_glob=path_glob, mode=mode, rerank=rerank)
