"""e5 beside USE (issue 39): fit the fusion's e5 maps on validation archives, and score every
text path on the same transcripts in the same run.

    .venv/bin/python benchmarks/e5_fusion.py --out benchmarks/results/e5-fusion.json --write-config
    .venv/bin/python benchmarks/e5_fusion.py --eval-only --out benchmarks/results/e5-fusion-eval.json

Archives (each indexed once with the default model and transcripts through the real indexer, so
every window has its USE and e5 vectors; a rerun resumes):
- fitted on: the synthetic English validation split, the Asterisk Italian and Russian prompts
  (real voice artists; their English, French and Spanish prompts are test) and the Fish Fillets
  Czech TRAINING levels, one program per level, queried in the script's original Czech and its
  nine translations (bg, sv and cs are languages USE does not cover);
- scored only: the Fish Fillets validation levels (`--eval`), never fitted on.

For each query the real Searcher gathers the hybrid candidates (the CLASP, USE and e5 lists and
the keyword list). A candidate answers the query when it lies in the right program and covers
half the sentence. USE's coverage g of a query and window is how familiar USE's tokenizer finds
the query, times whether USE covers the language Whisper read the window in. Of the two e5 maps
(clasp_cli.fusion.E5Weights), the covered map is the shipped USE fusion plus one e5 term, whose weight is chosen from
a small grid by HITS@1 over every validation query, among the weights that lose to the shipped
USE fusion on no archive USE covers (synthetic, Asterisk it and ru), and the uncovered map is fitted listwise on
the queries and windows USE does not cover. Each is scaled into probabilities by a logistic fit
on each query's top 10 and on nonsense queries' top 10 (as benchmarks/fusion_tuning.py does for
the USE fusion). Rows: HITS@1
per archive and query language, for the CLASP vector alone, the USE transcript vector alone, the
e5 transcript vector alone, the USE fusion shipped before, and the e5 fusion.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

import numpy as np

FIT = ["data/synth/val.jsonl", "data/asterisk/it.jsonl", "data/asterisk/ru.jsonl", "data/fillets/train.jsonl"]
EVAL = ["data/fillets/val.jsonl"]  # and, scored once at the end, the synthetic test archives (--eval-only --eval ...)
# The e5 cosine's weight added to the shipped USE fusion where USE covers query and window.
GRID = [0.0, 5.0, 10.0, 15.0, 20.0]
# USE's familiarity ramp, chosen on gettext messages, not speech (benchmarks/use_coverage.py):
# the widest gap between the mean gate of covered and of uncovered languages (0.739).
LOW, HIGH = -3.7, -3.3


ARRAYS = ("clasp_prob", "text_cos", "share", "agree", "has_text", "e5_cos", "has_e5", "use_window")


def flat(c) -> dict:
    """A Candidates as JSON (texts left out: the fit never reads them)."""
    out = {k: None if getattr(c, k) is None else np.asarray(getattr(c, k)).tolist() for k in ARRAYS}
    return {**out, "ids": c.ids, "where": [c.where[i] for i in c.ids], "familiarity": c.familiarity}


def revive(d: dict):
    from clasp_cli.search import Candidates

    arr = {k: None if d[k] is None else np.asarray(d[k], dtype=bool if k.startswith("has_") else np.float64) for k in ARRAYS}
    c = Candidates(d["ids"], {i: tuple(w) for i, w in zip(d["ids"], d["where"])}, arr["clasp_prob"], arr["text_cos"], arr["share"],
                   arr["agree"], arr["has_text"], {})
    c.e5_cos, c.has_e5, c.use_window, c.familiarity = arr["e5_cos"], arr["has_e5"], arr["use_window"], d["familiarity"]
    # The tuning archives are indexed with every window read, so a window without a transcript
    # vector is one Whisper heard nothing in.
    c.said_nothing = ~c.has_text
    return c


def main() -> None:
    from clasp_cli.archive import hit_rank, queries, scores_by_lang, tuning_archive
    from clasp_cli.calibration import choose_min_score, nonsense_queries
    from clasp_cli.fusion import (E5Weights, FusionWeights, centre_e5, coverage_gate, e5_features, fit, fit_ranking,
                                  uncovered_features, window_gate)
    from clasp_cli.indexer import index_paths
    from clasp_cli.registry import load_model
    from clasp_cli.search import Searcher, fused_scores, group_hits
    from clasp_cli.store import Store

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default=None)
    ap.add_argument("--fit", default=",".join(FIT), help="comma list of validation manifests to fit on")
    ap.add_argument("--eval", default=",".join(EVAL), help="comma list of validation manifests only scored")
    ap.add_argument("--programs", type=int, default=40, help="programs per manifest (levels of a game: all of them)")
    ap.add_argument("--eval-only", action="store_true", help="score with the weights in the model's config; fit nothing")
    ap.add_argument("--write-config", action="store_true")
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()
    model = load_model(args.model, device="cpu")
    shipped = FusionWeights.from_config(model.config.fusion)
    before = FusionWeights(**{**shipped.to_config(), "e5": None})

    def load(man: Path, role: str) -> dict:
        work, programs = tuning_archive(man, 10_000 if "fillets" in str(man) else args.programs)
        qs = queries(programs, work)
        index = Path("data") / f"fusion-tune-{man.parent.name}-{man.stem}-{model.config.name}"
        t = time.time()
        index_paths([work / p.path for p in programs], index, model=model, transcribe=True)  # resumes where it stopped
        name = f"{man.parent.name}-{man.stem}"
        print(f"{name}: {len(programs)} programs, {len(qs)} queries, index ready in {time.time() - t:.0f} s", flush=True)
        cache = index / "e5-fusion-candidates.json"  # what a fit needs of each query's candidates: refits skip the queries
        if cache.is_file() and json.loads(cache.read_text())["queries"] == len(qs):
            got = json.loads(cache.read_text())
            cands, nonsense = [revive(c) for c in got["cands"]], [revive(c) for c in got["nonsense"]]
            with Store.open(index) as st:  # the window gate as Searcher computes it now (the recording's language)
                for c in [*cands, *nonsense]:
                    langs = st.recording_languages(c.ids)
                    c.use_window = window_gate([langs.get(i) for i in c.ids])
        else:
            with Searcher(index, model=model, e5=True) as s:
                cands = [s.candidates(q.text, top_k=10) for q in qs]
                nonsense = [s.candidates(q, top_k=10) for q in nonsense_queries(75, seed=len(man.stem))] if role == "fit" else []
            cache.write_text(json.dumps({"queries": len(qs), "cands": [flat(c) for c in cands], "nonsense": [flat(c) for c in nonsense]}))
        return {"name": name, "role": role, "qs": qs, "cands": cands, "nonsense": nonsense}

    sets = [load(Path(m), "fit") for m in args.fit.split(",") if m and not args.eval_only and Path(m).is_file()]
    sets += [load(Path(m), "eval") for m in args.eval.split(",") if m and Path(m).is_file()]
    fitted = [d for d in sets if d["role"] == "fit"]

    def centred(c) -> np.ndarray:
        """e5 cosines as fused_scores centres them (a window that said nothing no closer than the median)."""
        e5 = centre_e5(c.e5_cos, c.has_e5)
        return np.where(c.said_nothing, np.minimum(e5, 0.0), e5) if c.said_nothing is not None else e5

    def ok(c) -> np.ndarray:
        """Windows the e5 maps score: a transcript with an e5 vector, or one that said nothing."""
        said = c.has_text & (c.has_e5 if c.has_e5 is not None else np.zeros(len(c.ids), dtype=bool))
        return said | (c.said_nothing if c.said_nothing is not None else False)

    def gated(c, low: float, high: float) -> tuple[np.ndarray, np.ndarray]:
        g = coverage_gate(c.familiarity, low, high) * (c.use_window if c.use_window is not None else np.ones(len(c.ids)))
        return None, g

    def answers(q, c) -> np.ndarray:
        return np.array([hit_rank(q, [c.where[i]]) == 1 for i in c.ids], dtype=float)

    def calibrate(rows: list[tuple]) -> tuple[float, float]:
        """(scale, bias) of a logistic fit on (order scores, labels) of each query's top 10."""
        cx, cy = [], []
        for order, y in rows:
            top = np.argsort(-order, kind="stable")[:10]
            cx.append(np.column_stack([order[top], np.ones(len(top))]))
            cy.append(y[top])
        a, b = fit(np.concatenate(cx), np.concatenate(cy))
        return float(a), float(b)

    def fit_e5(beta: float) -> E5Weights:
        """Covered: the USE fusion as shipped plus beta * the e5 cosine, rescaled; uncovered: a
        listwise fit on the windows and queries USE does not cover, then scaled."""
        w0 = np.array([before.clasp, before.text, beta, before.keyword, before.agree, before.bias])
        cov_rows, unc_groups, unc_x = [], [], []
        for d in fitted:
            for q, c in [*zip(d["qs"], d["cands"]), *((None, c) for c in d["nonsense"])]:
                keep = ok(c)
                if not keep.any():
                    continue
                x, g = gated(c, LOW, HIGH)
                y = answers(q, c)[keep] if q is not None else np.zeros(int(keep.sum()))
                xf = e5_features(c.clasp_prob, c.text_cos, centred(c), c.share, c.agree)[keep]
                cov, unc = g[keep] >= 0.5, g[keep] < 0.5
                if cov.any():
                    cov_rows.append((xf[cov] @ w0, y[cov]))
                if unc.any():
                    xu = uncovered_features(xf[unc], coverage_gate(c.familiarity, LOW, HIGH))[:, :3]
                    unc_x.append((xu, y[unc]))
                    if q is not None:
                        unc_groups.append((xu, y[unc]))
        a_c, b_c = calibrate(cov_rows)
        covered = tuple(round(float(v), 4) for v in [*(a_c * w0[:5]), a_c * w0[5] + b_c])
        r = fit_ranking(unc_groups)
        a_u, b_u = calibrate([(x @ r, y) for x, y in unc_x])
        uncovered = tuple(round(float(v), 4) for v in [*(a_u * r), b_u])
        return E5Weights(covered=covered, uncovered=uncovered, low=LOW, high=HIGH)

    def ranked(c, score) -> list[tuple]:
        order = np.argsort(-score, kind="stable")
        hits = [(*c.where[c.ids[j]], float(score[j]), c.ids[j]) for j in order]
        return [(g.path, g.start, g.end) for g in group_hits(hits)[:10]]

    def systems(w: FusionWeights) -> dict:
        return {
            "CLASP vector": lambda c: c.clasp_prob,
            "USE transcript vector": lambda c: np.where(c.has_text, c.text_cos, -1.0),
            "e5 transcript vector": lambda c: np.where(ok(c), c.e5_cos if c.e5_cos is not None else -1.0, -1.0),
            "fused, USE only (before)": lambda c: fused_scores(c, before),
            "fused, USE + e5": lambda c: fused_scores(c, w),
        }

    def rows_for(w: FusionWeights, which: list[dict]) -> dict:
        out = {}
        for name, score in systems(w).items():
            for d in which:
                ranks = [hit_rank(q, ranked(c, score(c))) for q, c in zip(d["qs"], d["cands"])]
                out.setdefault(name, {})[d["name"]] = scores_by_lang(ranks, d["qs"])
        return out

    def overall(rows: dict, name: str) -> float:
        return sum(sc["all"]["hits@1"] * sc["all"]["n"] for sc in rows[name].values())

    grid = {}
    if args.eval_only:
        weights = shipped
    else:
        best = None
        for beta in GRID:
            w = FusionWeights.from_config({**before.to_config(), "e5": fit_e5(beta).to_config()})
            rows = rows_for(w, fitted)
            score = overall(rows, "fused, USE + e5")
            # The covered map must not lose to the USE fusion it extends on any archive USE covers.
            worst = min(rows["fused, USE + e5"][d["name"]]["all"]["hits@1"] - rows["fused, USE only (before)"][d["name"]]["all"]["hits@1"]
                        for d in fitted if "fillets" not in d["name"])
            grid[f"{beta:g}"] = {"first": round(score, 1), "worst_covered_archive_vs_before": round(worst, 4)}
            print(f"e5 weight {beta:g} where USE covers both: {score:.1f} validation queries first, "
                  f"worst covered archive vs the USE fusion {worst:+.4f}", flush=True)
            if worst >= 0 and (best is None or score > best[0]):
                best = (score, w)
        weights = best[1]
        # `--min-score auto` where e5 fuses: the lowest at which at most 5% of nonsense queries keep a hit.
        nonsense_best = np.array([float(np.max(fused_scores(c, weights))) if c.ids else 0.0
                                  for d in fitted for c in d["nonsense"]])
        e5w = E5Weights(**{**weights.e5.__dict__, "min_score": round(choose_min_score(nonsense_best), 4)})
        weights = FusionWeights.from_config({**before.to_config(), "e5": e5w.to_config()})
        print("weights", json.dumps(weights.e5.to_config()), flush=True)
    rows = rows_for(weights, sets)
    for name, by in rows.items():
        print(f"{name:28s}", "  ".join(f"{a}: " + " ".join(f"{k}:{v['hits@1']:.3f}" for k, v in sc.items()) for a, sc in by.items()),
              flush=True)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps({
            "model": model.config.name, "fit": [d["name"] for d in fitted], "eval": [d["name"] for d in sets if d["role"] == "eval"],
            "queries": {d["name"]: len(d["qs"]) for d in sets}, "gate_grid": grid,
            "weights": weights.e5.to_config() if weights.e5 else None,
            "machine": f"{platform.machine()} {os.cpu_count()} cores", "rows": rows}, indent=1) + "\n")
    if args.write_config and not args.eval_only:
        from clasp_cli.registry import write_fusion

        print(f"wrote the e5 fusion weights into {write_fusion(model.path, weights.to_config())}")


if __name__ == "__main__":
    main()
