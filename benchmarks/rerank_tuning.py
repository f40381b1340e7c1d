"""How many windows `--rerank` should read, and how much the transcript should weigh: chosen on
archives built from the VALIDATION splits, never on test.

    .venv/bin/python benchmarks/rerank_tuning.py --model clasp-tiny --programs 30 --out benchmarks/results/rerank-tuning-clasp-tiny.json

Each program's sentence windows are embedded and transcribed once (Whisper of the model's
encoder family, the batched reader search uses); the rerank is then replayed in memory for every
(N, weight): the first-stage top N are reordered by (1 - w) * CLASP score + w * transcript cosine.
Queries are every sentence (English archive) and, on the multilingual archive, each sentence in
its own language and its English translation. Rows: passage HITS@1 per query language for each
archive; also the mean window length and the batched reader's speed (x real time), from which a
first query's transcription time at each N follows.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
from pathlib import Path

import numpy as np


def main() -> None:
    from clasp_cli.archive import VALIDATION_MANIFESTS, embed_programs, hit_rank, queries, scores_by_lang, tuning_archive
    from clasp_cli.passages import WindowConfig, find_windows
    from clasp_cli.registry import load_model
    from clasp_cli.rerank import fuse
    from clasp_cli.transcribe import Transcriber, whisper_for

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="clasp-tiny")
    ap.add_argument("--manifest", type=Path, action="append", default=None,
                    help="validation manifest (repeatable; default: the English and multilingual val splits)")
    ap.add_argument("--programs", type=int, default=30, help="programs per manifest")
    ap.add_argument("--ns", default="5,10,15,20,30,50")
    ap.add_argument("--weights", default="0.1,0.2,0.3,0.4,0.5,0.6,0.7,0.8,0.9")
    ap.add_argument("--top-k", type=int, default=10)
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()
    manifests = args.manifest or list(VALIDATION_MANIFESTS)

    model = load_model(args.model, device="cpu")
    asr_name = whisper_for(model.config.speech_encoder)
    asr = Transcriber(asr_name)
    paths, spans, speech, texts, qs, owner = [], [], [], [], [], []
    audio_s = asr_s = 0.0
    for man in manifests:
        work, programs = tuning_archive(man, args.programs)
        mine = queries(programs, work)
        qs += mine
        owner += [str(man)] * len(mine)
        got = embed_programs(model, programs, work, lambda path: find_windows(path, WindowConfig())[0], asr.transcribe_batch)
        paths += got.paths
        spans += got.spans
        speech.append(got.speech)
        texts += got.texts
        audio_s += got.audio_s
        asr_s += got.asr_s
        print(f"{man}: {len(programs)} programs", flush=True)
    speech = np.concatenate(speech)
    qv = model.embed_text([q.text for q in qs])
    tv = model.embed_text([t if t.strip() else "." for t in texts])
    tv /= np.maximum(np.linalg.norm(tv, axis=1, keepdims=True), 1e-9)
    tv[[not t.strip() for t in texts]] = 0.0  # rerank gives an empty transcript no text score
    cos = qv @ speech.T
    text_cos = qv @ tv.T
    first = np.stack([np.asarray(model.match_score(cos[i], qv[i]), dtype=np.float64) for i in range(len(qs))])
    order = np.argsort(-first, axis=1, kind="stable")

    def z(x: np.ndarray) -> np.ndarray:
        return (x - x.mean()) / max(float(x.std()), 1e-9)

    def ranks(n: int, w: float, standardise: bool = False) -> list:
        """standardise: both scores as z-scores within the n candidates, so one weight means the
        same for models whose scores live on different scales (cosines vs probabilities)."""
        out = []
        for i, q in enumerate(qs):
            head, rest = order[i, :n], order[i, n:]
            if n:
                a, b = first[i, head], text_cos[i, head]
                if standardise:
                    a, b = z(a), z(b)
                head = head[np.argsort(-fuse(a, b, w), kind="stable")]
            top = np.concatenate([head, rest])[: args.top_k]
            out.append(hit_rank(q, [(paths[j], *spans[j]) for j in top]))
        return out

    def by_archive(rs: list) -> dict:
        """Scores per query language, separately for each manifest's archive ("en" on the
        multilingual one means English queries for foreign speech)."""
        out = {}
        for m in manifests:
            keep = [i for i, o in enumerate(owner) if o == str(m)]
            out[m.parent.name] = scores_by_lang([rs[i] for i in keep], [qs[i] for i in keep])
        return out

    mean_window_s = audio_s / len(spans)
    rows = {"clasp": by_archive(ranks(0, 0.0)),
            "asr (transcribe_batch + text encoder, all windows)": by_archive(
                [hit_rank(q, [(paths[j], *spans[j]) for j in np.argsort(-text_cos[i])[: args.top_k]]) for i, q in enumerate(qs)])}
    for n in [int(x) for x in args.ns.split(",")]:
        for w in [float(x) for x in args.weights.split(",")]:
            rows[f"rerank N={n} w={w}"] = by_archive(ranks(n, w))
            rows[f"rerank-z N={n} w={w}"] = by_archive(ranks(n, w, standardise=True))
    for name, r in rows.items():
        print(f"{name:52s}", "  ".join(f"{a}: " + " ".join(f"{k}:{v['hits@1']:.3f}" for k, v in sc.items() if k in ("all", "en"))
                                       for a, sc in r.items()), flush=True)
    result = {
        "model": args.model, "asr": asr_name, "manifests": [str(m) for m in manifests], "programs_per_manifest": args.programs,
        "queries": len(qs), "windows": len(spans), "mean_window_s": round(mean_window_s, 2),
        "asr_x_realtime": round(audio_s / asr_s, 1), "machine": f"{platform.machine()} {os.cpu_count()} cores",
        "rows": rows,
    }
    if args.out:
        args.out.write_text(json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    main()
