"""English UI messages as short prompt-like sentences, for a validation set in natural voices.

    .venv/bin/python benchmarks/prompt_texts.py --out data/prompts-en.txt

The English originals of the installed gettext catalogues' messages (4-14 words, whole
sentences), leaving out every meaning the multilingual test split may hold (clasp_cli.data.
foreign.is_test), so tuning on them never sees a test query. Short, stereotyped sentences that
differ in a word or two are what phone prompts and voice notes are like, and where a speech
vector has to tell near neighbours apart.
"""

from __future__ import annotations

import argparse
from pathlib import Path


def main() -> None:
    import random

    from clasp_cli.data.foreign import gettext_pairs, is_test

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=Path("data/prompts-en.txt"))
    args = ap.parse_args()
    seen: dict[str, str] = {}
    for lang in ("de", "fr", "es", "it", "ru", "pt", "nl", "pl"):  # the catalogues' order decides a spelling's case
        for s in gettext_pairs(lang):
            en = s.translations["en"]
            if not is_test(s) and 4 <= len(en.split()) <= 14:
                seen.setdefault(en.lower(), en)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    texts = sorted(seen.values())
    random.Random(0).shuffle(texts)  # a fixed order: same catalogues, same file, same corpus
    args.out.write_text("".join(t + "\n" for t in texts))
    print(f"{len(seen)} sentences -> {args.out}")


if __name__ == "__main__":
    main()
