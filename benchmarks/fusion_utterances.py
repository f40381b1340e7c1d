"""The fusion on whole real utterances, `clasp benchmark`'s setting: fit on VALIDATION voices,
then report on the benchmark voices once.

    .venv/bin/python benchmarks/fusion_utterances.py --fit data/asterisk/it.jsonl --fit data/asterisk/ru.jsonl \\
        --report data/asterisk/en.jsonl --report data/asterisk/fr.jsonl --report data/asterisk/es.jsonl

Each manifest's utterances (one per distinct text, as the benchmark takes them) are embedded by
the default model and transcribed by its Whisper, told the language, one clip at a time with the
batched reader (the benchmark's ASR row); both are cached under data/cache/. Every text, and each translation,
is a query ranking every recording of its manifest. Rows, HITS@1 per query language: CLASP
alone, ASR alone (transcript vector), the shipped fusion, and a listwise refit on the --fit
manifests alone (its order calibrated as benchmarks/fusion_tuning.py does). The --report
manifests are only scored, never fitted on.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np


def cached(manifest: Path, model, transcriber) -> dict:
    from clasp_cli.audio import load_audio
    from clasp_cli.benchmark.run import load_usable

    # "-b1": each clip transcribed alone, as `clasp benchmark`'s ASR row reads them (batched with
    # others, a clip is padded to the longest and Whisper reads it less well: 0.848 against 0.876
    # HITS@1 on the English prompts).
    out = Path("data/cache") / f"fusion-utt-{manifest.parent.name}-{manifest.stem}-{model.id.replace('@', '-')}-b1.npz"
    utts, paths, _ = load_usable(manifest, None)
    if out.is_file():
        z = np.load(out, allow_pickle=False)
        said = json.loads(str(z["said"]))
        return {"utts": utts, "clasp": z["clasp"], "text": z["text"], "said": said}
    waves = [load_audio(p, 16_000) for p in paths]
    clasp = np.concatenate([model.embed_audio(waves[s : s + 16]) for s in range(0, len(waves), 16)])
    said = [transcriber.transcribe_batch([w], [u.lang])[0] for w, u in zip(waves, utts)]
    text = model.embed_text([t if t.strip() else "." for t in said])
    out.parent.mkdir(parents=True, exist_ok=True)
    np.savez(out, clasp=clasp, text=text, said=json.dumps(said))
    return {"utts": utts, "clasp": clasp, "text": text, "said": said}


def query_sets(d: dict) -> dict[str, tuple[list[int], list[str]]]:
    """Query language -> (target recording per query, query texts)."""
    sets = {"native": (list(range(len(d["utts"]))), [u.text for u in d["utts"]])}
    for i, u in enumerate(d["utts"]):
        for lang, t in u.translations.items():
            if t.strip():
                sets.setdefault(lang, ([], []))
                sets[lang][0].append(i)
                sets[lang][1].append(t)
    return sets


def channels_for(model, d: dict, texts: list[str]) -> tuple[np.ndarray, ...]:
    """[queries, recordings] of each fused channel: CLASP probability, transcript cosine, word
    share; then per recording its speech-transcript agreement and whether it has a transcript."""
    from clasp_cli.fusion import agreement, query_terms, shares

    qv = model.embed_text(texts)
    ccos = qv @ d["clasp"].T
    prob = np.stack([np.asarray(model.match_score(ccos[i], qv[i]), dtype=np.float64) for i in range(len(qv))])
    tcos = qv @ d["text"].T
    said = [query_terms(t) for t in d["said"]]
    share = np.stack([shares(query_terms(t), said) for t in texts])
    has = np.array([bool(t.strip()) for t in d["said"]])
    return prob, tcos, share, agreement(d["clasp"], d["text"]), has


def utterance_groups(model, d: dict) -> list[tuple[np.ndarray, np.ndarray]]:
    """Listwise fitting groups of one cached manifest: per query, the [recordings, 4] features of
    the recordings with a transcript, and which of them is the query's own."""
    from clasp_cli.fusion import features

    groups = []
    for targets, texts in query_sets(d).values():
        prob, tcos, share, agree, has = channels_for(model, d, texts)
        for i, t in enumerate(targets):
            x = features(prob[i], tcos[i], share[i], agree)[:, :4]
            y = np.zeros(len(x), dtype=bool)
            y[t] = True
            groups.append((x[has], y[has]))
    return groups


def main() -> None:
    from clasp_cli.fusion import FusionWeights, fit, fit_ranking, fuse
    from clasp_cli.metrics import ranks as rank_targets
    from clasp_cli.registry import load_model
    from clasp_cli.transcribe import shared_transcriber, whisper_for

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--fit", type=Path, action="append", default=[])
    ap.add_argument("--report", type=Path, action="append", default=[])
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()
    model = load_model(device="cpu")
    asr = shared_transcriber(whisper_for(model.config.speech_encoder), "cpu")
    shipped = FusionWeights.from_config(model.config.fusion)
    data = {m: cached(m, model, asr) for m in [*args.fit, *args.report]}

    prepared = {m: {lang: (targets, channels_for(model, d, texts)) for lang, (targets, texts) in query_sets(d).items()}
                for m, d in data.items()}

    groups = [g for m in args.fit for g in utterance_groups(model, data[m])]
    r = fit_ranking(groups)
    s_top, y_top = [], []
    for x, y in groups:  # the top 10 of each query, as fusion_tuning calibrates
        s = x @ r
        top = np.argsort(-s)[:10]
        s_top.append(s[top])
        y_top.append(y[top])
    a, b = fit(np.column_stack([np.concatenate(s_top), np.ones(sum(len(s) for s in s_top))]), np.concatenate(y_top).astype(float))
    refit = FusionWeights(**{**shipped.to_config(), "clasp": float(a * r[0]), "text": float(a * r[1]),
                             "keyword": float(a * r[2]), "agree": float(a * r[3]), "bias": float(b)})
    print("refit on", [str(m) for m in args.fit], {k: round(v, 4) for k, v in refit.to_config().items() if v is not None})

    systems = {
        "CLASP": lambda prob, tcos, share, agree, has: prob,
        "ASR (transcript vector)": lambda prob, tcos, share, agree, has: tcos,
        "fused, shipped weights": lambda prob, tcos, share, agree, has: np.stack(
            [fuse(prob[i], tcos[i], share[i], agree, has, shipped) for i in range(len(prob))]),
        "fused, refit on --fit": lambda prob, tcos, share, agree, has: np.stack(
            [fuse(prob[i], tcos[i], share[i], agree, has, refit) for i in range(len(prob))]),
    }
    table: dict = {}
    for m in [*args.fit, *args.report]:
        for lang, (targets, ch) in prepared[m].items():
            for name, score in systems.items():
                rk = rank_targets(score(*ch), np.asarray(targets))
                table.setdefault(f"{m.stem} ({'fit' if m in args.fit else 'report'})", {}).setdefault(lang, {})[name] = \
                    round(float(np.mean(rk == 1)), 4)
    for where, by in table.items():
        for lang, row in by.items():
            print(f"{where:18s} {lang:7s}", "  ".join(f"{k}: {v:.3f}" for k, v in row.items()), flush=True)
    if args.out:
        args.out.write_text(json.dumps({"refit": refit.to_config(), "shipped": shipped.to_config(), "hits@1": table}, indent=1) + "\n")


if __name__ == "__main__":
    main()
