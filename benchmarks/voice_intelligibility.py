"""How intelligible each non-English voice is: the share of a sentence's words Whisper base
(told the language, greedy) gets back. Voices below a threshold are not worth training on.

    .venv/bin/python benchmarks/voice_intelligibility.py --n 10 --out benchmarks/results/voice_intelligibility.json

Sentences are training-side gettext/fortune sentences (never the test split), the same ones
for every voice of a language.
"""

from __future__ import annotations

import argparse
import json
import platform
import re
import time
from pathlib import Path

import numpy as np


def words(text: str) -> list[str]:
    return re.sub(r"[\W_]+", " ", text.casefold()).split()


def recall(reference: str, hypothesis: str) -> float:
    ref, hyp = words(reference), set(words(hypothesis))
    return sum(w in hyp for w in ref) / max(1, len(ref))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=10, help="sentences per language")
    ap.add_argument("--langs", default=",".join(__import__("clasp_cli.data.foreign", fromlist=["x"]).TRAIN_LANGS))
    ap.add_argument("--out", type=Path, default=Path("benchmarks/results/voice_intelligibility.json"))
    args = ap.parse_args()

    from faster_whisper import WhisperModel

    from clasp_cli.data.foreign import foreign_corpus
    from clasp_cli.data.voices import available_voices
    from clasp_cli.encoders.whisper_weights import resolve_whisper_path

    langs = args.langs.split(",")
    pool, _ = foreign_corpus(langs)
    asr = WhisperModel(str(resolve_whisper_path("whisper-base")), device="cpu", compute_type="int8")
    rows = []
    t0 = time.time()
    for lang in langs:
        sents = [s.text for s in pool if s.lang == lang and len(s.text.split()) <= 20][: args.n]
        for voice in available_voices(lang=lang):
            scores = []
            for text in sents:
                audio = voice.render(text)
                segs, _ = asr.transcribe(audio.astype(np.float32), language=lang, beam_size=1, vad_filter=False)
                scores.append(recall(text, " ".join(s.text for s in segs)))
            rows.append({"voice": voice.id, "lang": lang, "n": len(scores), "recall": round(float(np.mean(scores)), 3)})
            print(f"{voice.id:32s} {lang} {rows[-1]['recall']:.2f}", flush=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({
        "machine": f"{platform.machine()} {platform.processor() or ''} {__import__('os').cpu_count()} cores".strip(),
        "asr": "whisper-base int8 greedy, language given", "seconds": round(time.time() - t0, 1), "voices": rows,
    }, indent=1, ensure_ascii=False) + "\n")


if __name__ == "__main__":
    main()
