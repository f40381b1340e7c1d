"""Scoring: ranks into metrics (clasp_cli.metrics only), grouped and per language; WER via jiwer; the result rows."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Sequence

import numpy as np

from ..manifest import Utterance
from ..metrics import ranks as rank_targets
from ..metrics import scores_from_ranks

if TYPE_CHECKING:
    from .base import BenchmarkConfig


@dataclass
class SystemResult:
    name: str
    kind: str  # "clasp" | "asr"
    model: str
    scores: dict  # RetrievalScores.as_dict()
    ranks: np.ndarray  # rank of the right recording for each text query (for plots)
    cost: dict
    by_query_lang: dict[str, dict] = field(default_factory=dict)
    by_domain: dict[str, dict] = field(default_factory=dict)
    by_voice: dict[str, dict] = field(default_factory=dict)
    lang_ranks: dict[str, np.ndarray] = field(default_factory=dict)
    noise: dict | None = None
    multilingual: dict | None = None
    wer: float | None = None
    calibration: dict | None = None  # CLASP only: does the default --min-score keep nonsense out?
    label: str = ""  # short name for table headers: "CLASP", "Whisper ASR", "CTC ASR"

    def to_dict(self) -> dict:
        """The JSON row: the fixed keys first, in the documented order, then the extras."""
        s, c = self.scores, self.cost
        d = {
            "name": self.name,
            "kind": self.kind,
            "hits@1": s["hits@1"],
            "hits@5": s["hits@5"],
            "hits@10": s["hits@10"],
            "mrr": s["mrr"],
            "meanr": s["meanr"],
            "throughput_x_realtime": c["throughput_x_realtime"],
            "params": c["params"],
            "disk_mb": c["disk_mb"],
            "by_query_lang": self.by_query_lang,
            "model": self.model,
            "params_source": c["params_source"],
            "params_parts": c["params_parts"],
            "latency_ms_p50": c["latency_ms_p50"],
            "latency_ms_p95": c["latency_ms_p95"],
            "peak_rss_mb": c["peak_rss_mb"],
            "load_s": c["load_s"],
            "encode_s": c["encode_s"],
            "audio_s": c["audio_s"],
            "by_domain": self.by_domain,
            "by_voice": self.by_voice,
        }
        if self.wer is not None:
            d["wer"] = self.wer
        if self.noise is not None:
            d["noise"] = self.noise
        if self.multilingual is not None:
            d["multilingual"] = self.multilingual
        if self.calibration is not None:
            d["calibration"] = self.calibration
        return d


@dataclass
class BenchmarkResult:
    n: int
    systems: list[SystemResult]
    machine: dict
    skipped: list[tuple[str, str]]  # (utterance id, reason), main and multilingual manifests
    query_langs: list[str]
    seconds: float
    noise_n: int = 0
    multilingual_n: int = 0
    config: BenchmarkConfig | None = None

    def to_dict(self) -> dict:
        """Exactly {"n", "systems"}: what `clasp benchmark --json` prints."""
        return {"n": self.n, "systems": [s.to_dict() for s in self.systems]}

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), ensure_ascii=False)

# -- grouped metrics -------------------------------------------------------------------------------


def grouped_scores(r: np.ndarray, labels: Sequence[str]) -> dict[str, dict]:
    """Scores per label, from ranks already computed against the FULL candidate set.

    Empty labels are left out; groups are sorted by label.
    """
    r = np.asarray(r)
    labels = np.asarray([str(x) for x in labels], dtype=object)
    if len(labels) != len(r):
        raise ValueError(f"{len(r)} ranks but {len(labels)} labels")
    out = {}
    for lab in sorted({x for x in labels if x}):
        out[lab] = scores_from_ranks(r[labels == lab]).as_dict()
    return out


def translation_rows(utterances: Sequence[Utterance]) -> dict[str, list[int]]:
    """For each translation language, the utterances that have a non-empty translation in it.

    Often only a subset is translated (200 of a 1,120-sentence test split): those queries still
    rank every recording, exactly as the English ones do.
    """
    rows: dict[str, list[int]] = {}
    for i, u in enumerate(utterances):
        for lang, t in u.translations.items():
            if t.strip():
                rows.setdefault(lang, []).append(i)
    return dict(sorted(rows.items()))


# -- word error rate (for context only: retrieval is what is scored) --------------------------------


def _normaliser():
    import jiwer

    # Case and punctuation are not recognition errors: "Tuesday." and "tuesday" are the same word.
    return jiwer.Compose([jiwer.ToLowerCase(), jiwer.RemovePunctuation(), jiwer.RemoveMultipleSpaces(), jiwer.Strip(),
                          jiwer.ReduceToListOfListOfWords()])


def word_error_rate(refs: Sequence[str], hyps: Sequence[str]) -> float:
    """Corpus WER (all edits / all reference words) after normalising case and punctuation, via jiwer."""
    import jiwer

    norm = _normaliser()
    pairs = [(r, h) for r, h in zip(refs, hyps) if norm(r) != [[]]]  # a reference with no words has no WER
    if not pairs:
        return 0.0
    out = jiwer.process_words([r for r, _ in pairs], [h for _, h in pairs], reference_transform=norm, hypothesis_transform=norm)
    return round(out.wer, 4)


def _score(query: np.ndarray, cand: np.ndarray, targets: Sequence[int] | None = None) -> np.ndarray:
    return rank_targets(query @ cand.T, None if targets is None else np.asarray(targets))



def score_system(spec, raw, utts, queries, lang_queries, noise_idx, ml_utts, ml_queries, ml_en, cfg) -> SystemResult:
    emb = raw["emb"]
    r = _score(queries, emb)
    lang_ranks = {lang: _score(q, emb, rows) for lang, (rows, q) in lang_queries.items()}
    res = SystemResult(
        name=raw["name"], kind=raw["kind"], model=spec.asr_model or spec.model, scores=scores_from_ranks(r).as_dict(),
        ranks=r, cost=raw["cost"],
        by_query_lang={lang: scores_from_ranks(lr).as_dict() for lang, lr in lang_ranks.items()},
        by_domain=grouped_scores(r, [u.domain for u in utts]),
        by_voice=grouped_scores(r, [u.voice for u in utts]),
        lang_ranks=lang_ranks, label=spec.label,
    )
    if raw["kind"] == "asr" and raw["transcripts"]:
        res.wer = word_error_rate([u.text for u in utts], raw["transcripts"])
    if noise_idx:
        idx = np.asarray(noise_idx)
        q = queries[idx]
        clean = scores_from_ranks(_score(q, emb[idx])).as_dict()
        noise: dict = {"n": len(noise_idx), "seed": cfg.seed}
        for kind in cfg.noise_kinds:
            rows = [{"snr_db": None, **clean}]
            for snr in cfg.snrs:
                rows.append({"snr_db": float(snr), **scores_from_ranks(_score(q, raw["noise"][f"{kind}@{float(snr):g}"])).as_dict()})
            noise[kind] = rows
        res.noise = noise
    if ml_utts and raw["ml_emb"] is not None:
        ml = raw["ml_emb"]
        native = _score(ml_queries["native"], ml)
        mres: dict = {"n": len(ml_utts), "native": scores_from_ranks(native).as_dict()}
        if ml_en is not None:
            mres["en"] = scores_from_ranks(_score(ml_en[1], ml, ml_en[0])).as_dict()
        mres["by_lang"] = grouped_scores(native, [u.lang for u in ml_utts])
        res.multilingual = mres
    return res


def fused_similarity(model, weights, qv: np.ndarray, qtexts: Sequence[str], clasp_emb: np.ndarray, asr_emb: np.ndarray,
                     transcripts: Sequence[str], langs: Sequence[str | None] | None = None) -> np.ndarray:
    """[queries, recordings] match probabilities of the fused system (clasp_cli.fusion): the CLASP
    vector's calibrated probability, fused with the transcript's vector and words where the
    recording has a transcript, exactly as `clasp search` fuses them. `langs`: the language each
    recording was read in (None: unknown)."""
    from ..encoders.e5 import available
    from ..fusion import agreement, centre_e5, fuse, query_terms, shares, window_gate

    said = [query_terms(t) for t in transcripts]
    has = np.array([bool(t.strip()) for t in transcripts])
    out = np.zeros((len(qv), len(clasp_emb)))
    tcos_all = qv @ asr_emb.T
    ccos_all = qv @ clasp_emb.T
    agree = agreement(clasp_emb, asr_emb)
    # e5 where `clasp search` would use it: the weights know it and it loads here.
    e5 = available() if weights.e5 is not None else None
    e5cos_all = gates = None
    if e5 is not None:
        e5cos_all = e5.encode_queries(list(qtexts)) @ e5.encode(list(transcripts)).T
        familiarity = getattr(model.text, "familiarity", lambda _t: None)
        windows = window_gate(list(langs) if langs is not None else [None] * len(transcripts))
        query_gates = [weights.e5.gate(familiarity(t)) for t in qtexts]
        gates = [g * windows for g in query_gates]
    for i, (q, text) in enumerate(zip(qv, qtexts)):
        share = shares(query_terms(text), said)
        prob = np.asarray(model.match_score(ccos_all[i], q), dtype=np.float64)
        if e5cos_all is None:
            out[i] = fuse(prob, tcos_all[i], share, agree, has, weights)
        else:  # every recording was read: an empty transcript is one that said nothing (search.fused_scores)
            read = np.ones(len(has), dtype=bool)
            e5 = np.where(has, centre_e5(e5cos_all[i], has), np.minimum(centre_e5(e5cos_all[i], has), 0.0))
            out[i] = fuse(prob, np.where(has, tcos_all[i], 0.0), share, np.where(has, agree, 0.0), read, weights,
                          e5, read, gates[i], query_gates[i])
    return out


def score_fused(model, clasp_raw: dict, asr_raw: dict, utts, queries, lang_queries, noise_idx, ml_utts, ml_queries, ml_en,
                cfg) -> SystemResult:
    """The fused row: CLASP plus the transcripts of the ASR row's Whisper, scored like every row."""
    from ..fusion import FusionWeights

    weights = FusionWeights.from_config(model.config.fusion)
    # Whisper reads each recording told its language (`clasp index --language`), so that is the language it was read in.
    sim = lambda qv, texts, c, a, tr, targets=None, langs=None: rank_targets(  # noqa: E731
        fused_similarity(model, weights, qv, texts, c, a, tr, langs), None if targets is None else np.asarray(targets))
    langs = [u.lang for u in utts]
    texts = [u.text for u in utts]
    r = sim(queries, texts, clasp_raw["emb"], asr_raw["emb"], asr_raw["transcripts"], langs=langs)
    lang_ranks = {lang: sim(q, [utts[i].translations[lang] for i in rows], clasp_raw["emb"], asr_raw["emb"], asr_raw["transcripts"], rows,
                            langs=langs)
                  for lang, (rows, q) in lang_queries.items()}
    cost = dict(asr_raw["cost"])
    # One encoder pass serves both halves in the product; here the two ran apart, so both are counted.
    enc = clasp_raw["cost"]["encode_s"] + asr_raw["cost"]["encode_s"]
    cost.update(throughput_x_realtime=round(cost["audio_s"] / enc, 2) if enc > 0 else 0.0, encode_s=round(enc, 2),
                params=clasp_raw["cost"]["params"] + asr_raw["cost"]["params"],
                disk_mb=round(clasp_raw["cost"]["disk_mb"] + asr_raw["cost"]["disk_mb"], 2),
                params_source=f"{clasp_raw['cost']['params_source']}; {asr_raw['cost']['params_source']}",
                params_parts={**clasp_raw["cost"]["params_parts"], **asr_raw["cost"]["params_parts"]})
    res = SystemResult(
        name=f"fused: {clasp_raw['name']} + {asr_raw['name']} transcripts", kind="fused", model=f"{clasp_raw['name']}",
        scores=scores_from_ranks(r).as_dict(), ranks=r, cost=cost,
        by_query_lang={lang: scores_from_ranks(lr).as_dict() for lang, lr in lang_ranks.items()},
        by_domain=grouped_scores(r, [u.domain for u in utts]), by_voice=grouped_scores(r, [u.voice for u in utts]),
        lang_ranks=lang_ranks, label="fused",
    )
    if noise_idx:
        idx = np.asarray(noise_idx)
        q = queries[idx]
        qt = [texts[i] for i in idx]
        clean_tr = [asr_raw["transcripts"][i] for i in idx]
        nlangs = [langs[i] for i in idx]
        clean = scores_from_ranks(sim(q, qt, clasp_raw["emb"][idx], asr_raw["emb"][idx], clean_tr, langs=nlangs)).as_dict()
        noise: dict = {"n": len(noise_idx), "seed": cfg.seed}
        for kind in cfg.noise_kinds:
            rows = [{"snr_db": None, **clean}]
            for snr in cfg.snrs:
                key = f"{kind}@{float(snr):g}"
                rows.append({"snr_db": float(snr), **scores_from_ranks(sim(
                    q, qt, clasp_raw["noise"][key], asr_raw["noise"][key], asr_raw["noise_transcripts"][key], langs=nlangs)).as_dict()})
            noise[kind] = rows
        res.noise = noise
    if ml_utts and clasp_raw["ml_emb"] is not None and asr_raw["ml_emb"] is not None:
        args = (clasp_raw["ml_emb"], asr_raw["ml_emb"], asr_raw["ml_transcripts"])
        ml_langs = [u.lang for u in ml_utts]
        native = sim(ml_queries["native"], [u.text for u in ml_utts], *args, langs=ml_langs)
        mres: dict = {"n": len(ml_utts), "native": scores_from_ranks(native).as_dict()}
        if ml_en is not None:
            mres["en"] = scores_from_ranks(sim(ml_en[1], [ml_utts[i].translations["en"] for i in ml_en[0]], *args, ml_en[0],
                                               langs=ml_langs)).as_dict()
        mres["by_lang"] = grouped_scores(native, [u.lang for u in ml_utts])
        res.multilingual = mres
    return res


def calibration_check(model, emb: np.ndarray, queries: np.ndarray, nonsense: np.ndarray, rows: dict[str, tuple]) -> dict:
    """The scores a user sees against the model's default --min-score: the share of true matches
    at or above it (per query set: English, translations, foreign speech) and the share of
    nonsense queries whose best hit is. `rows` maps a set's name to (query vectors, candidates,
    target index per query)."""
    from ..calibration import threshold_report

    threshold = model.default_min_score

    def seen(q: np.ndarray, cand: np.ndarray) -> np.ndarray:
        return np.stack([model.match_score(cand @ v, v) for v in q])

    junk_best = {id(emb): seen(nonsense, emb).max(axis=1)}  # per candidate set: translations share the English one
    out: dict = {"min_score": threshold, "n_nonsense": int(len(nonsense)),
                 "nonsense_best_p50": round(float(np.median(junk_best[id(emb)])), 4)}
    sets = {"en": (queries, emb, np.arange(len(queries))), **rows}
    for name, (q, cand, target) in sets.items():
        s = seen(q, cand)
        true = s[np.arange(len(q)), np.asarray(target)]
        out[name] = {"n": int(len(q)), "true_p50": round(float(np.median(true)), 4)}
        if threshold is not None:
            if id(cand) not in junk_best:
                junk_best[id(cand)] = seen(nonsense, cand).max(axis=1)
            out[name].update(threshold_report(true, junk_best[id(cand)], threshold))
    return out
