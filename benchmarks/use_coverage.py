"""How well USE's own tokenizer tells the languages USE covers from those it does not (issue 39):
the gate the e5 fusion uses (clasp_cli.fusion.coverage_gate over USEMultilingual.familiarity),
measured on gettext messages (2-12 words, 200 per language) of every covered and uncovered
language installed here. No speech, no validation archive: text only.

    .venv/bin/python benchmarks/use_coverage.py --out benchmarks/results/use-coverage.json

Per ramp (low, high): the mean gate over covered languages, over uncovered ones, their gap,
and the worst language of each side. clasp ships the ramp with the widest gap.
"""

from __future__ import annotations

import argparse
import json
import random
from pathlib import Path

import numpy as np

LANGS = "de fr es it pl ru nl pt tr ja ko zh_CN ar th sv da fi cs hu el ro uk bg sk hr lt sl et lv ca fa".split()
RAMPS = [(-4.4, -3.2), (-4.2, -3.4), (-4.0, -3.2), (-4.0, -3.0), (-3.8, -3.0), (-3.8, -3.4), (-3.9, -3.3), (-4.0, -3.6), (-3.7, -3.3)]


def main() -> None:
    from clasp_cli.data.foreign import gettext_pairs
    from clasp_cli.encoders.languages import USE_LANGUAGES
    from clasp_cli.encoders.text import USEMultilingual
    from clasp_cli.fusion import coverage_gate

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()
    use = USEMultilingual()
    rng = random.Random(0)
    fam: dict[str, list] = {}
    for lang in LANGS:
        try:
            texts = [s.text for s in gettext_pairs(lang)]
        except Exception:  # noqa: BLE001 - a language with no catalogue here
            continue
        texts = [t for t in texts if 2 <= len(t.split()) <= 12 or lang.split("_")[0] in ("ja", "zh", "th")]
        rng.shuffle(texts)
        if len(texts) >= 50:
            fam[lang] = [use.familiarity(t) for t in texts[:200]]
    covered = [x for x in fam if x.split("_")[0] in USE_LANGUAGES]
    uncovered = [x for x in fam if x not in covered]
    rows = []
    for low, high in RAMPS:
        g = {x: float(np.mean([coverage_gate(f, low, high) for f in fam[x]])) for x in fam}
        gc, gu = np.mean([g[x] for x in covered]), np.mean([g[x] for x in uncovered])
        rows.append({"low": low, "high": high, "covered": round(float(gc), 3), "uncovered": round(float(gu), 3),
                     "gap": round(float(gc - gu), 3), "worst_covered": min((round(g[x], 3), x) for x in covered),
                     "worst_uncovered": max((round(g[x], 3), x) for x in uncovered), "per_language": {x: round(v, 3) for x, v in g.items()}})
        print(f"{low:+.1f}..{high:+.1f}  covered {gc:.3f}  uncovered {gu:.3f}  gap {gc - gu:.3f}  "
              f"worst covered {rows[-1]['worst_covered']}  worst uncovered {rows[-1]['worst_uncovered']}", flush=True)
    if args.out:
        args.out.write_text(json.dumps({"covered": covered, "uncovered": uncovered, "ramps": rows}, indent=1) + "\n")


if __name__ == "__main__":
    main()
