"""Where translated queries lose: the text encoder's own alignment, and two query-side fixes.

    .venv/bin/python benchmarks/crosslingual.py --model clasp-base --manifest data/synth/test.jsonl

A diagnostic, not a tuning step: nothing it measures is shipped. Rows:
- text -> text: each held-out gettext message (native) finds its English original among 500;
  how well the text encoder itself aligns languages.
- speech, per query language, HITS@1 over every recording of the manifest, for the plain query
  vector, after projecting out the k directions that separate the languages' centroids (both
  sides), and after a ridge map from query vectors to English ones (alpha pulls it to identity).
Centroids and the map come from gettext catalogues (software messages), never from the manifest.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

LOCALES = {"de": "de", "fr": "fr", "es": "es", "zh": "zh_CN", "ja": "ja", "it": "it", "nl": "nl", "pl": "pl",
           "pt": "pt", "ru": "ru", "tr": "tr", "ko": "ko"}
HELD_OUT = 500


def unit(x: np.ndarray) -> np.ndarray:
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-9)


def hits1(q: np.ndarray, cands: np.ndarray, truth: np.ndarray) -> float:
    return float(((q @ cands.T).argmax(1) == truth).mean())


def main() -> None:
    from clasp_cli.data.foreign import gettext_pairs
    from clasp_cli.paths import cache_dir
    from clasp_cli.registry import load_model
    from clasp_cli.train import _featurize_manifests, _noop

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="clasp-base")
    ap.add_argument("--manifest", type=Path, default=Path("data/synth/test.jsonl"))
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()
    model = load_model(args.model, device="cpu")
    rng = np.random.default_rng(0)

    fit_native, fit_en, centroids, text_rows = [], [], {}, {}
    for lang, loc in LOCALES.items():
        pairs = gettext_pairs(loc)
        rng.shuffle(pairs)
        native = model.embed_text([p.text for p in pairs])
        english = model.embed_text([p.translations["en"] for p in pairs])
        fit = max(0, len(pairs) - HELD_OUT) if len(pairs) > 2 * HELD_OUT else len(pairs)
        fit_native.append(native[:fit])
        fit_en.append(english[:fit])
        centroids[lang] = native[:fit].mean(0)
        if len(pairs) - fit >= 100:
            text_rows[lang] = hits1(native[fit:], english[fit:], np.arange(len(pairs) - fit))
    X, Y = np.vstack(fit_native), np.vstack(fit_en)
    centroids["en"] = Y.mean(0)
    C = np.stack(list(centroids.values()))
    _, _, lang_dirs = np.linalg.svd(C - C.mean(0), full_matrices=False)

    def project(k: int):
        v = lang_dirs[:k]
        return lambda x: unit(x - (x @ v.T) @ v)

    english_only = np.unique(Y, axis=0)  # English maps to itself
    Xf, Yf = np.vstack([X, english_only]), np.vstack([Y, english_only])

    def ridge(alpha: float):
        w = np.linalg.solve(Xf.T @ Xf + alpha * np.eye(X.shape[1]), Xf.T @ Yf + alpha * np.eye(X.shape[1]))
        return lambda x: unit(x @ w)

    utts, feats, idx = _featurize_manifests(model, [str(args.manifest)], cache_dir() / "features", _noop, None)
    utts = [utts[i] for i in idx]
    speech = model.embed_features(feats)
    queries = {"en": (np.arange(len(utts)), model.embed_text([u.text for u in utts]))}
    for lang in sorted({k for u in utts for k in u.translations}):
        rows = np.array([i for i, u in enumerate(utts) if u.translations.get(lang)])
        queries[lang] = (rows, model.embed_text([utts[i].translations[lang] for i in rows]))

    variants = {"plain": (lambda x: x, lambda x: x)}
    for k in (4, 8, 14):
        variants[f"project out {k} language directions"] = (project(k), project(k))
    for alpha in (10.0, 100.0, 1000.0):
        variants[f"ridge map to English, alpha {alpha:g}"] = (ridge(alpha), lambda x: x)
    speech_rows = {name: {lang: round(hits1(fq(q), fs(speech), rows), 3) for lang, (rows, q) in queries.items()}
                   for name, (fq, fs) in variants.items()}
    print("text -> text, native message -> English original among 500:",
          " ".join(f"{k} {v:.3f}" for k, v in text_rows.items()))
    for name, row in speech_rows.items():
        print(f"{name:40s}", " ".join(f"{k} {v:.3f}" for k, v in row.items()))
    if args.out:
        args.out.write_text(json.dumps({"model": args.model, "manifest": str(args.manifest), "gettext_pairs": len(X),
                                        "text_to_text": text_rows, "speech_hits@1": speech_rows}, indent=1) + "\n")


if __name__ == "__main__":
    main()
