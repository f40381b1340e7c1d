"""More fusion inputs, tried on the validation archives: does a per-query signal help the fused
ranking stay above transcribe-then-embed?

    .venv/bin/python benchmarks/fusion_inputs.py --inputs none,pmax,Lmargin,Lnear,gL,Lrho,prec,Tmax

Needs the validation indexes benchmarks/fusion_tuning.py builds (data/fusion-tune-*). Each
query's hybrid candidates are gathered once through the real Searcher (cached in
data/cache/tuning-candidates.json); then, for each input set, the four shipped inputs (CLASP
logit L, transcript cosine T, word share S, agreement A) plus the named extras are fitted
listwise on all validation queries, and the top window is scored against the transcript
cosine alone. Extras: pmax = L x the query's best CLASP logit; Lmargin = L x the gap between its
two best; Lnear = L x exp((T - best T) / 0.05); gL = L x the best word share (a same-language
proxy); Lrho = L x corr(L, T) over the candidates; prec = share of the transcript's words in the
query; Tmax = L x the best T. Validation only: it chooses nothing on test.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

CACHE = Path("data/cache/tuning-candidates.json")


def gather() -> dict:
    from clasp_cli.archive import REAL_VALIDATION_MANIFESTS, VALIDATION_MANIFESTS, hit_rank, queries, tuning_archive
    from clasp_cli.registry import load_model
    from clasp_cli.search import Searcher

    model = load_model(device="cpu")
    out = {}
    for man in [m for m in (*VALIDATION_MANIFESTS, *REAL_VALIDATION_MANIFESTS) if m.is_file()]:
        work, programs = tuning_archive(man, 40)
        index = Path("data") / f"fusion-tune-{man.parent.name}-{man.stem}-{model.config.name}"
        rows = []
        with Searcher(index, model=model) as s:
            for q in queries(programs, work):
                c = s.candidates(q.text, top_k=10)
                rows.append({"lang": q.lang, "q": q.text, "p": c.clasp_prob.tolist(), "t": c.text_cos.tolist(),
                             "s": c.share.tolist(), "a": c.agree.tolist(), "h": c.has_text.tolist(),
                             "y": [hit_rank(q, [c.where[i]]) == 1 for i in c.ids], "said": [c.texts.get(i, "") for i in c.ids]})
        out[f"{man.parent.name}-{man.stem}"] = rows
    CACHE.parent.mkdir(parents=True, exist_ok=True)
    CACHE.write_text(json.dumps(out))
    return out


def extras(name: str, L, T, S, P) -> list[np.ndarray]:
    if name == "none":
        return []
    top = np.sort(L)[::-1]
    rho = np.corrcoef(L, T)[0, 1] if len(L) > 2 and L.std() > 0 and T.std() > 0 else 0.0
    table = {"pmax": [L * top[0]], "Lmargin": [L * (top[0] - top[1] if len(top) > 1 else 0.0)],
             "Lnear": [L * np.exp((T - T.max()) / 0.05)], "gL": [L * S.max()], "Lrho": [L * rho], "prec": [P],
             "Tmax": [L * T.max()]}
    return [c for part in name.split("+") for c in table[part]]


def main() -> None:
    from clasp_cli.fusion import fit_ranking, logit, query_terms

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--inputs", default="none,pmax,Lmargin,Lnear,gL,Lrho,prec,Tmax")
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()
    data = json.loads(CACHE.read_text()) if CACHE.is_file() else gather()
    report = {}
    for name in args.inputs.split(","):
        groups: dict = {}
        for where, rows in data.items():
            for r in rows:
                h = np.array(r["h"], bool)
                if not h.any():
                    continue
                L, T, S = logit(np.array(r["p"]))[h], np.array(r["t"])[h], np.array(r["s"])[h]
                asked = query_terms(r["q"])
                P = np.array([len(asked & query_terms(t)) / max(len(query_terms(t)), 1) for t, k in zip(r["said"], h) if k])
                x = np.column_stack([L, T, S, np.array(r["a"])[h], *extras(name, L, T, S, P)])
                groups.setdefault(f"{where}:{r['lang']}", []).append((x, np.array(r["y"], bool)[h]))
        w = fit_ranking([g for gl in groups.values() for g in gl])
        asr = np.eye(len(w))[1]
        top1 = lambda gl, v: int(sum(y[np.argmax(x @ v)] for x, y in gl))  # noqa: E731
        below = {k: top1(gl, w) - top1(gl, asr) for k, gl in groups.items() if len(gl) >= 20 and top1(gl, w) < top1(gl, asr)}
        total = sum(top1(gl, w) for gl in groups.values())
        report[name] = {"weights": np.round(w, 4).tolist(), "top1_hits": total, "rows_below_asr": below}
        print(f"{name:12s} top-1 hits {total}  rows below ASR (queries): {below}", flush=True)
    if args.out:
        args.out.write_text(json.dumps(report, indent=1) + "\n")


if __name__ == "__main__":
    main()
