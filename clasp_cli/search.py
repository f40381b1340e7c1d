"""`clasp search`: a text (or a recording) -> ranked passages from an index."""

from __future__ import annotations

import math
import re
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .ann_usearch import exact_nearest
from .errors import AudioError, UsageError
from .fusion import FusionWeights, agreement, centre_e5, fuse, query_terms, shares, window_gate  # noqa: F401  (query_terms is re-exported)
from .store import E5, IndexError_, Store, path_pattern


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
    language: str | None = None  # the language it was read in, once read
    speaker: tuple[int, str | None] | None = None  # (id, name) of who speaks in the best window, once found

    def to_json(self) -> dict:
        row = {"rank": self.rank, "score": self.score, "path": self.path, "start": self.start, "end": self.end,
               "passage_start": self.passage_start, "passage_end": self.passage_end}
        if self.text is not None:
            row["text"] = self.text
        if self.language is not None:
            row["language"] = self.language
        if self.speaker is not None:
            row["speaker"] = {"id": self.speaker[0], "name": self.speaker[1]}
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
# Windows each list (CLASP vectors, transcript vectors, keywords) offers the fusion at least,
# whatever top_k is: a window second on two lists must not be lost because it is 11th on one.
CANDIDATES = 50
# Windows the hybrid keyword list may score with BM25 per query (its words taken rarest first,
# Store.selective_terms): a word found in more windows than this costs more (about 2 us a window
# on 2 cores) than it tells; its share of the query still counts in the fusion for every candidate.
KEYWORD_ROWS = 2000
# Query by voice: the weight of a window's own speaker vector against its recording's voice vector.
# Chosen on the Fish Fillets training levels for the fish found worst (each weight from 0 to 1
# gave 0.96-0.967 there; ties went to the mean over both fish): docs/speakers.md.
VOICE_OWN_WEIGHT = 1.0


@dataclass
class Candidates:
    """What the fusion weighs for each candidate window of one query (parallel arrays over ids)."""

    ids: list[int]
    where: dict[int, tuple[str, float, float]]  # passage id -> (path, start, end)
    clasp_prob: np.ndarray  # the CLASP vector's calibrated match probability
    text_cos: np.ndarray  # cosine of query and transcript vector (0 where has_text is False)
    share: np.ndarray  # share of the query's words in the transcript
    agree: np.ndarray  # cosine of the window's CLASP vector and its transcript vector (0 where has_text is False)
    has_text: np.ndarray  # bool: the window has a transcript vector
    texts: dict[int, str]
    # e5 (clasp_cli.encoders.e5), where the index holds its vectors and it loads here:
    e5_cos: np.ndarray | None = None  # cosine of the query's and the transcript's e5 vectors
    has_e5: np.ndarray | None = None  # bool: the window's transcript has an e5 vector
    familiarity: float | None = None  # USE's familiarity with the query (fusion.E5Weights.gate)
    use_window: np.ndarray | None = None  # 1 where USE covers the language the window was read in (fusion.window_gate)
    said_nothing: np.ndarray | None = None  # bool: read, and Whisper heard no words (an empty transcript)


@dataclass
class SearchResponse:
    query: str
    results: list[Result]
    # The `--min-score auto` level of the mode this search ran in (None for a recording query):
    # what a page draws as the line between matches and weak matches. Not part of --json.
    auto_min_score: float | None = None

    def to_json(self) -> dict:
        """The documented --json schema: {"query", "results": [{"rank","score","path","start","end",
        "passage_start","passage_end"}]}, each result also with "text" and "language" when its window
        was transcribed, and "speaker": {"id", "name"} when its voice is known."""
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


NOISE_QUERIES = 100


class Searcher:
    """An open index plus its model: what a long-running process keeps to answer many queries.

    Opening loads the HNSW graph once; each query then costs one text embedding, one graph
    lookup and one SQLite read.
    """

    def __init__(self, index_dir: str | Path, model=None, device: str = "auto", e5: bool | None = None):
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
        self._e5_vecs: OrderedDict[str, np.ndarray] = OrderedDict()  # the same for e5
        self._noise: dict[str, float] = {}
        self._speaker_encoder = None  # CAM++, loaded by the first --voice query
        self._reader = None  # reading.ChunkReader, made on the first --rerank
        self._pool = None  # the e5 query's worker thread, made on first use
        try:
            self._e5 = self._open_e5(e5)
        except BaseException:
            self.store.close()
            raise

    def _open_e5(self, wanted: bool | None):
        """e5, where this index holds e5 vectors and the model's fusion knows them (wanted None;
        True: whenever the index holds them, for tuning; False: never), else None. Where it cannot
        load, search runs on USE alone (`e5_notice` says why)."""
        self.e5_notice: str | None = None
        if wanted is False or not self.store.text_space_count(E5):
            return None
        if wanted is None and FusionWeights.from_config(self.model.config.fusion).e5 is None:
            return None
        from .encoders.e5 import FALLBACK_NOTICE, available, unavailable_reason

        e5 = available()
        if e5 is None:
            self.e5_notice = f"{unavailable_reason()}; {FALLBACK_NOTICE}"
        return e5

    def _embed_e5(self, texts: list[str]) -> np.ndarray | None:
        """e5 vectors of transcripts, kept in-process like _embed_transcripts (None without e5)."""
        if self._e5 is None:
            return None
        if not texts:
            return np.zeros((0, self._e5.dim), dtype=np.float32)
        return kept_vectors(self._e5_vecs, texts, self._e5.encode)

    def _embed_transcripts(self, texts: list[str]) -> np.ndarray:
        return kept_vectors(self._transcript_vecs, texts, self.model.embed_text)

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True)
        self.store.close()

    def transcriber(self):
        """The Whisper that reads this index (the recorded reader, else the one of the model's
        encoder family), loaded on first use (seconds) and kept."""
        from .indexer import index_reader
        from .transcribe import shared_transcriber

        return shared_transcriber(index_reader(self.store, self.model), self.model.device)

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
        weak_level: bool = False,
        language: str | None = None,
        speaker: str | int | None = None,
        voice: str | Path | None = None,
    ) -> SearchResponse:
        """Search by text in any language the model's text encoder knows, or by an example recording.

        mode: vector (CLASP vectors alone), keyword (windows whose transcripts hold the words; needs
        transcripts) or hybrid (CLASP vectors, transcript vectors and words, one fused ranking; see
        clasp_cli.fusion); None: hybrid when the index holds transcripts, else vector. Candidates
        come from every list before the cut to top_k. rerank: first transcribe the best N windows of
        the vector list that have no transcript (once each, kept in the index), so they are fused
        too; True reads the model's default number. A text query's score is always the probability
        that the window says the query. min_score: hide results below it; "auto" is the calibrated
        threshold of the mode in use: this index's noise level (see noise_level). weak_level: also
        report that level (SearchResponse.auto_min_score) when min_score is not "auto". Audio queries
        score by cosine (speech against speech). language: only windows read in this language (a
        Whisper code, as `clasp info` lists them; a window not read yet counts as its recording's).
        speaker: only windows where this speaker (an id or a name, `clasp speakers`) speaks.
        voice: a recording of one voice; alone, the windows where that voice speaks, best first
        (score: the cosine of the speaker vectors); with a text query, what that voice said about
        it (the query's ranking, within the speakers whose voice it is).
        """
        if query is None and audio is None and voice is None:
            raise UsageError("give a text query, or a recording with --audio FILE")
        if query is not None and audio is not None:
            raise UsageError("give either a text query or --audio FILE, not both")
        if voice is not None and audio is not None:
            raise UsageError("--voice finds a voice and --audio finds speech like a recording; give one")
        speakers = None
        if speaker is not None:
            from .speakers.index import resolve

            speakers = [resolve(self.store, speaker)]
        if voice is not None:
            voice_vec = self.voice_vector(voice)
            if query is None:
                return self._voice_search(voice_vec, voice, top_k, min_score, path_glob, language, speakers)
            speakers = self._speakers_like(voice_vec, speakers)
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
            raise UsageError("--rerank reads the vector search's best windows; use it with --mode vector or hybrid")
        model = self.model
        fusion = FusionWeights.from_config(model.config.fusion)
        fused = audio is None and (mode != "vector" or rerank > 0)
        auto_asked = min_score == AUTO_MIN_SCORE
        min_score = self._threshold(min_score, audio is not None, fused, fusion, query)
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
            e5q = self._e5_query(query) if fused else None  # on its own thread, beside USE and the graphs
            vec = model.embed_text([query])[0]
            label = query
        path_glob = path_pattern(path_glob)
        fetch = top_k * FETCH_FACTOR
        per_list = max(fetch, CANDIDATES)
        language = language.strip().lower() if language else None
        where, clasp_cos = self._clasp_list(vec, mode, max(per_list, rerank), path_glob, language, speakers)
        if audio is not None:
            hits = sorted(((p, s, e, round(clasp_cos[i], 4), i) for i, (p, s, e) in where.items()), key=lambda h: -h[3])
            return SearchResponse(label, self._results(hits, top_k, min_score, {}))
        auto = min_score if auto_asked else self._threshold(AUTO_MIN_SCORE, False, fused, fusion, query) if weak_level else None
        cands = self._gather(query, vec, where, clasp_cos, mode, per_list, rerank, path_glob, fused, language, e5q, speakers)
        if not cands.ids:
            return SearchResponse(label, [], auto)
        prob = (fused_scores(cands, fusion) if fused else fusion.vector_only(cands.clasp_prob))
        order = np.argsort(-prob, kind="stable")
        hits = [(*cands.where[cands.ids[j]], round(float(prob[j]), 4), cands.ids[j]) for j in order]
        return SearchResponse(label, self._results(hits, top_k, min_score, cands.texts), auto)

    def candidates(self, query: str, *, mode: str = "hybrid", top_k: int = 10, rerank: int = 0,
                   path_glob: str | None = None) -> "Candidates":
        """The windows a text query's fusion would weigh, with what it weighs (for tuning and for
        explaining a ranking): each list's candidates before the cut to top_k."""
        e5q = self._e5_query(query)
        vec = self.model.embed_text([query])[0]
        per_list = max(top_k * FETCH_FACTOR, CANDIDATES)
        where, clasp_cos = self._clasp_list(vec, mode, max(per_list, rerank), path_glob)
        return self._gather(query, vec, where, clasp_cos, mode, per_list, rerank, path_glob, True, e5q=e5q)

    def _clasp_list(self, vec: np.ndarray, mode: str, k: int, path_glob: str | None,
                    language: str | None = None, speakers: list[int] | None = None) -> tuple[dict, dict]:
        """The CLASP graph's candidates: passage id -> (path, start, end), and -> cosine (none in keyword mode)."""
        where: dict[int, tuple[str, float, float]] = {}
        clasp_cos: dict[int, float] = {}
        if mode != "keyword":
            for h in self.store.search(vec, k=k, path_glob=path_glob, language=language, speakers=speakers):
                where[h.passage_id] = (h.path, h.start, h.end)
                clasp_cos[h.passage_id] = h.score
        return where, clasp_cos

    def _e5_query(self, query: str):
        """The query's e5 vector, started on a worker thread (a Future; None without e5): e5's C
        engine and USE's numpy both release the GIL, so on two cores the second encoder costs
        little of a query's time."""
        if self._e5 is None:
            return None
        if self._pool is None:
            from concurrent.futures import ThreadPoolExecutor

            self._pool = ThreadPoolExecutor(1, thread_name_prefix="clasp-e5")
        return self._pool.submit(lambda: self._e5.encode_queries([query])[0])

    def _gather(self, query: str, vec: np.ndarray, where: dict, clasp_cos: dict, mode: str, per_list: int, rerank: int,
                path_glob: str | None, fused: bool, language: str | None = None, e5q=None,
                speakers: list[int] | None = None) -> "Candidates":
        texts: dict[int, str] = {}
        tvecs: dict[int, np.ndarray] = {}
        if rerank:
            head = sorted(clasp_cos, key=lambda i: -clasp_cos[i])[:rerank]
            texts, tvecs = self._read(head, where)
        if mode == "hybrid":
            for h in self.store.transcript_search(vec, k=per_list, path_glob=path_glob, language=language, speakers=speakers):
                where.setdefault(h.passage_id, (h.path, h.start, h.end))
        if mode != "vector":
            if mode == "hybrid":
                words = " OR ".join(self.store.selective_terms(fts_terms(query), KEYWORD_ROWS))
            else:
                words = fts_query(query)
            found = self.store.keyword_search(words, k=per_list if mode == "hybrid" else max(per_list, 200), path_glob=path_glob,
                                              language=language, speakers=speakers)
            for h in found:
                where.setdefault(h.passage_id, (h.path, h.start, h.end))
        speech: dict[int, np.ndarray] = {}
        evecs: dict[int, np.ndarray] = {}
        langs: dict[int, str] = {}
        fam: float | None = None
        if fused and e5q is not None:
            # While e5 reads the query on its own thread, what the candidates found so far need is
            # read here: waiting first cost a warm query at 100k windows about 6 ms (docs/benchmarks.md).
            first = list(where)
            speech = self.store.passage_vectors(first)
            texts.update(self.store.transcripts([i for i in first if i not in texts]))
            tvecs.update(self.store.transcript_vectors([i for i in first if i not in tvecs and texts.get(i, "").strip()]))
            evecs = self.store.transcript_vectors([i for i in first if texts.get(i, "").strip()], space=E5)
            langs = self.store.recording_languages(first)
            familiarity = getattr(self.model.text, "familiarity", None)
            fam = familiarity(query) if familiarity is not None else None
        e5q = e5q.result() if e5q is not None else None
        if mode == "hybrid" and e5q is not None:
            for h in self.store.transcript_search(e5q, k=per_list, path_glob=path_glob, language=language, space=E5,
                                                  speakers=speakers):
                where.setdefault(h.passage_id, (h.path, h.start, h.end))
        ids = list(where)
        missing = [i for i in ids if i not in clasp_cos]
        # Read once: the fusion's agreement term wants every candidate's speech vector too.
        if missing or fused:
            speech.update(self.store.passage_vectors([i for i in (ids if fused else missing) if i not in speech]))
        if missing:
            for i in missing:
                if i in speech:
                    v = speech[i]
                    clasp_cos[i] = float(v @ vec / max(np.linalg.norm(v), 1e-9))
            ids = [i for i in ids if i in clasp_cos]
        cos = np.array([clasp_cos[i] for i in ids])
        prob = np.asarray(self.model.match_score(cos, vec), dtype=np.float64) if ids else np.zeros(0)
        has = np.zeros(len(ids), dtype=bool)
        tcos = np.zeros(len(ids))
        share = np.zeros(len(ids))
        agree = np.zeros(len(ids))
        if fused and ids:
            texts.update(self.store.transcripts([i for i in ids if i not in texts]))
            tvecs.update(self.store.transcript_vectors([i for i in ids if i not in tvecs and texts.get(i, "").strip()]))
            unvectored = [i for i in ids if i not in tvecs and texts.get(i, "").strip()]
            if unvectored:  # an index transcribed by an older clasp, read-only: embed for this process
                tvecs.update(zip(unvectored, self._embed_transcripts([texts[i] for i in unvectored])))
            has = np.array([i in tvecs for i in ids])
            tcos = np.array([float(tvecs[i] @ vec) if i in tvecs else 0.0 for i in ids])
            share = shares(query_terms(query), [query_terms(texts.get(i, "")) for i in ids])
            both = [j for j, i in enumerate(ids) if i in tvecs and i in speech]
            if both:
                agree[both] = agreement(np.stack([speech[ids[j]] for j in both]), np.stack([tvecs[ids[j]] for j in both]))
        cands = Candidates(ids, where, prob, tcos, share, agree, has, texts)
        if fused and ids and e5q is not None:
            said = [i for i in ids if texts.get(i, "").strip()]
            evecs.update(self.store.transcript_vectors([i for i in said if i not in evecs], space=E5))
            late = [i for i in said if i not in evecs]  # read by --rerank just now, or before e5 was filled in
            if late:
                evecs.update(zip(late, self._embed_e5([texts[i] for i in late])))
            cands.has_e5 = np.array([i in evecs for i in ids])
            cands.e5_cos = np.array([float(evecs[i] @ e5q) if i in evecs else 0.0 for i in ids])
            cands.familiarity = fam
            # The recording's language, not a window's own: on the synthetic foreign-speech test
            # archive 3% of German windows switched to Welsh, and scored as uncovered they took
            # the top of English queries (docs/fusion.md).
            langs.update(self.store.recording_languages([i for i in ids if i not in langs]))
            cands.use_window = window_gate([langs.get(i) for i in ids])
            cands.said_nothing = np.array([i in texts and not texts[i].strip() for i in ids])
        return cands

    def _threshold(self, min_score, audio: bool, fused: bool, fusion: FusionWeights, query: str | None = None) -> float | None:
        if min_score is None:
            return None
        if min_score == AUTO_MIN_SCORE:
            if audio:
                raise UsageError("--min-score auto is calibrated for text queries; give a number (a cosine) with --audio")
            if fused and not self.store.transcribed():
                # Reranking an index without transcripts: measuring it would transcribe for every
                # nonsense query, so the level fitted on the validation archives stands in.
                return fusion.min_score
            return self.noise_level(fused, query)
        if isinstance(min_score, str):
            raise UsageError(f"--min-score must be a number or {AUTO_MIN_SCORE!r} (got {min_score!r})")
        if not math.isfinite(min_score):
            raise UsageError(f"--min-score must be a finite number (got {min_score})")
        return float(min_score)

    def noise_level(self, fused: bool = True, query: str | None = None) -> float:
        """This index's `--min-score auto` level: the lowest score at which at most 5% of
        NOISE_QUERIES queries that mean nothing (emoji, punctuation, random letters) still get a
        hit here. Measured on the index itself, because how high the best of many windows reaches
        by chance grows with the archive (examples/archive's 32 windows: 0.0025 fused; the
        validation archives': 0.028). Where e5 fuses, the two halves of the fusion (USE's
        languages, and the others: fusion.E5Weights) are on scales of their own, so each has its
        level, from the nonsense queries that fall in it (emoji and punctuation in the first,
        random letters in the second), and `query` picks the one it is scored in. Computed on
        first use (about 0.3 s), then kept."""
        from .calibration import choose_min_score, nonsense_queries

        mode = "hybrid" if fused else "vector"
        if mode not in self._noise:
            best: dict[bool, list[float]] = {True: [], False: []}
            for q in nonsense_queries(NOISE_QUERIES):
                hits = self.search(q, top_k=1, mode=mode).results
                best[self._use_half(q, fused)].append(hits[0].score if hits else 0.0)
            levels = {half: round(choose_min_score(np.asarray(b)), 4) for half, b in best.items() if b}
            self._noise[mode] = levels.get(True, levels.get(False))
            self._noise[mode + ":other"] = levels.get(False, self._noise[mode])
        return self._noise[mode] if query is None or self._use_half(query, fused) else self._noise[mode + ":other"]

    def _use_half(self, query: str, fused: bool) -> bool:
        """Whether a query is scored in the half of the fusion where USE knows its language."""
        weights = FusionWeights.from_config(self.model.config.fusion).e5
        if not fused or self._e5 is None or weights is None:
            return True
        familiarity = getattr(self.model.text, "familiarity", None)
        return weights.gate(familiarity(query) if familiarity is not None else None) >= 0.5

    def inherit_noise_levels(self, other: "Searcher") -> None:
        """Keep the noise levels `other` measured when this index differs from its by at most a
        tenth of its windows (a growing archive reopened by `clasp serve`): a level moves slowly
        with size, and measuring it again costs the first query after every reopen a second or so."""
        before, now = other.store.db_state().passages, self.store.db_state().passages
        if other._noise and abs(now - before) <= 0.1 * max(before, 1):
            self._noise.update(other._noise)

    def _results(self, hits: list[tuple], top_k: int, min_score: float | None, texts: dict[int, str]) -> list[Result]:
        groups = group_hits(hits)[:top_k]
        missing = [g.passage_id for g in groups if g.passage_id not in texts]
        texts = {**texts, **self.store.transcripts(missing)}
        langs = self.store.passage_languages([g.passage_id for g in groups])
        from .speakers.index import passage_speakers

        who = passage_speakers(self.store, [g.passage_id for g in groups])
        return [Result(i + 1, round(g.score, 4), g.path, g.start, g.end, g.passage_start, g.passage_end, g.passage_id,
                       texts.get(g.passage_id), langs.get(g.passage_id), who.get(g.passage_id))
                for i, g in enumerate(groups) if min_score is None or g.score >= min_score]

    def voice_vector(self, clip: str | Path) -> np.ndarray:
        """The speaker vector of a recording of one voice (its first 30 s)."""
        from .audio import load_audio

        wave = load_audio(clip, 16_000, max_seconds=30.0)
        frames = wave[: wave.size // 320 * 320].reshape(-1, 320)
        # Silence has no voice. (The passage cutter's speech test wants pauses between phrases,
        # which a clip of one line need not have.)
        if not len(frames) or float(np.sqrt(np.mean(frames ** 2, axis=1)).max()) < 10 ** (-50 / 20):
            raise AudioError(clip, "no speech found in the voice recording (silent or too quiet)")
        if self._speaker_encoder is None:
            from .speakers.embed import SpeakerEncoder

            self._speaker_encoder = SpeakerEncoder()
        return self._speaker_encoder.embed(wave)

    def _voice_search(self, vec: np.ndarray, clip, top_k: int, min_score, path_glob: str | None, language: str | None,
                      speakers: list[int] | None) -> SearchResponse:
        """Windows where this voice speaks, by the cosine of their speaker vectors."""
        from .speakers.index import has_speakers, voice_vectors

        if not has_speakers(self.store) or not self.store.db.execute("SELECT 1 FROM diarized LIMIT 1").fetchone():
            raise UsageError(f"{self.store.dir} has no speakers yet: run `clasp index` on it (without --no-speakers)")
        if isinstance(min_score, str):
            raise UsageError("--min-score auto is calibrated for text queries; give a number (a cosine) with --voice")
        ids, own, voice_of, voices = voice_vectors(self.store)
        allowed = self.store.passages_in_scope(path_pattern(path_glob), language.strip().lower() if language else None,
                                              speakers)
        if allowed is not None:
            keep = np.fromiter((int(i) in allowed for i in ids), dtype=bool, count=len(ids))
            ids, own, voice_of = ids[keep], own[keep], voice_of[keep]
        # A window's own vector (2 s of its voice) and its voice's in the whole recording, weighed.
        q = vec.astype(np.float32)
        want = top_k * FETCH_FACTOR * 4
        if VOICE_OWN_WEIGHT == 1:  # the own vectors alone, scored as stored (float16) without a float32 copy
            order, dists = exact_nearest(own, q, want)
            sims = np.zeros(len(ids), dtype=np.float32)
            sims[order] = 1.0 - dists
        else:
            sims = VOICE_OWN_WEIGHT * (own.astype(np.float32) @ q) + (1 - VOICE_OWN_WEIGHT) * (voices @ q)[voice_of]
            order = np.argsort(-sims, kind="stable")[:want]
        spans = self.store.passage_spans([int(ids[j]) for j in order])
        hits = [(*spans[int(ids[j])], round(float(sims[j]), 4), int(ids[j])) for j in order if int(ids[j]) in spans]
        return SearchResponse(f"voice:{clip}", self._results(hits, top_k, min_score, {}))

    def _speakers_like(self, vec: np.ndarray, speakers: list[int] | None) -> list[int]:
        """The speakers whose voice this is (cosine at least SAME_SPEAKER; else the nearest one)."""
        from .speakers.index import SAME_SPEAKER, speaker_vectors

        known = speaker_vectors(self.store)
        if speakers is not None:
            known = {s: v for s, v in known.items() if s in speakers}
        if not known:
            return []
        ids = list(known)
        sims = np.stack([known[s] for s in ids]) @ vec
        like = [s for s, c in zip(ids, sims) if c >= SAME_SPEAKER]
        return like or [ids[int(np.argmax(sims))]]

    def _read(self, ids: list[int], where: dict[int, tuple[str, float, float]]) -> tuple[dict[int, str], dict[int, np.ndarray]]:
        """`--rerank`: transcripts (and text vectors) of these windows, transcribing the ones without."""
        from .rerank import Candidate, read

        def transcribe(todo: list[Candidate]) -> dict[int, str]:
            # Each file read once, the windows asked for with their chunks' context and in the
            # recording's language (as indexing reads them), from the samples indexing cut.
            from .pipeline import read_windows

            said: dict[int, str] = {}
            for path in {c.path for c in todo}:
                rec = self.store.file(path)
                if rec is None:
                    continue
                mine = {c.id for c in todo if c.path == path}
                try:
                    items, r = read_windows(self.store, self._chunk_reader(), rec.id, rec.fs_path,
                                            self.model.config.sample_rate, self.store.prevailing_language(), rec.language,
                                            mine)
                except AudioError:  # changed or gone since indexing: its windows keep their CLASP score
                    continue
                said.update({pid: r.texts[n] for n, (pid, _, _) in enumerate(items) if pid in mine})
            return said

        cands = [Candidate(i, 0.0, *where[i]) for i in ids]
        return read(cands, self.store, transcribe, self._embed_transcripts, self._embed_e5)

    def _chunk_reader(self):
        from .reading.reader import ChunkReader

        if self._reader is None:
            self._reader = ChunkReader(self.transcriber())
        return self._reader


def kept_vectors(kept: OrderedDict, texts: list[str], encode) -> np.ndarray:
    """Vectors of `texts`, encoding only those `kept` lacks; `kept` holds the most recently used
    TRANSCRIPT_VECTORS_KEPT of them."""
    todo = list(dict.fromkeys(t for t in texts if t not in kept))
    if todo:
        for t, v in zip(todo, encode(todo)):
            kept[t] = v
    for t in texts:
        kept.move_to_end(t)
    while len(kept) > TRANSCRIPT_VECTORS_KEPT:
        kept.popitem(last=False)
    return np.stack([kept[t] for t in texts])


def fused_scores(c: Candidates, weights: FusionWeights) -> np.ndarray:
    """The fused match probability of each candidate (clasp_cli.fusion.fuse, with e5 where present)."""
    query_gate = weights.e5.gate(c.familiarity) if weights.e5 is not None else 1.0
    gate = query_gate * c.use_window if c.use_window is not None else query_gate
    has_text, has_e5 = c.has_text, c.has_e5
    e5 = centre_e5(c.e5_cos, c.has_e5) if c.e5_cos is not None and c.has_e5 is not None else None
    if weights.e5 is not None and c.said_nothing is not None and c.said_nothing.any():
        # A window Whisper read and heard nothing in is scored as a transcript that matches
        # nothing: ranked by its CLASP vector alone it outranked real matches on the validation
        # archives (e5's probabilities are steeper than the CLASP-only map), 0.8% of windows
        # taking 0.04 HITS@1 off the Fish Fillets training levels (docs/fusion.md).
        has_text, has_e5 = c.has_text | c.said_nothing, c.has_e5 | c.said_nothing
    if e5 is not None and c.said_nothing is not None:
        e5 = np.where(c.said_nothing, np.minimum(e5, 0.0), e5)  # no words: no closer than the median
    return fuse(c.clasp_prob, c.text_cos, c.share, c.agree, has_text, weights, e5, has_e5, gate, query_gate)


def default_rerank(model) -> int:
    """Windows a bare `--rerank` reads with this model: its own `rerank_windows`, else DEFAULT_RERANK."""
    return model.config.rerank_windows or DEFAULT_RERANK


AUTO_MIN_SCORE = "auto"


def score(value: str) -> float | str:
    """A --min-score value as typed: a number, or "auto" (the model's calibrated threshold)."""
    return value if value == AUTO_MIN_SCORE else float(value)

_PHRASE = re.compile(r'"([^"]*)"|(\S+)')


def fts_terms(text: str) -> list[str]:
    """A user's words as FTS5 terms that mean only what they typed: every word quoted, so FTS5's
    operators (AND, OR, NOT, NEAR, *, ^, column filters) and stray quotes are plain words, and
    text in double quotes kept as one phrase."""
    terms = []
    for phrase, word in _PHRASE.findall(text.replace("\x00", " ")):
        part = phrase if phrase else word
        if re.search(r"\w", part):  # punctuation alone is no word (and an empty phrase is an FTS5 error)
            terms.append('"' + part.replace('"', '""') + '"')
    return terms


def fts_query(text: str, any_word: bool = False) -> str:
    """fts_terms as one FTS5 query: all the words must appear, or, with `any_word`, any of them
    may. Empty when no word remains."""
    return (" OR " if any_word else " ").join(fts_terms(text))


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
    by_path: dict[str, list[_Run]] = {}  # a query weighs a few hundred windows: compare only within a file
    for path, start, end, score, pid in hits:
        mine = by_path.setdefault(path, [])
        for r in mine:
            if start <= r.passage_end + gap and end >= r.passage_start - gap:
                r.passage_start, r.passage_end = min(r.passage_start, start), max(r.passage_end, end)
                break
        else:
            run = _Run(path, start, end, score, pid, start, end)
            runs.append(run)
            mine.append(run)
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
    language: str | None = None,
) -> SearchResponse:
    """One query against an index (opens and closes it). Keep a Searcher open for many queries."""
    with Searcher(index_dir, model, device) as s:
        return s.search(query, audio=audio, top_k=top_k, min_score=min_score, path_glob=path_glob, mode=mode, rerank=rerank,
                        language=language)
