"""A recording that changes language: how many of its windows `clasp index` reads in the language
spoken there.

Joins about --seconds of one manifest's speech (in manifest order) and then as much of another's
into one recording, with a pause of --switch-pause between them, indexes it with the real
`clasp index` path (transcripts on), and counts the windows whose stored language is the one
spoken at their middle. Validation speech only: Fish Fillets' Czech validation levels and the
Asterisk Russian (or Italian) prompts.

    python benchmarks/two_languages.py --first data/fillets/val.jsonl --second data/asterisk/ru.jsonl \\
        --out benchmarks/results/two-languages-cs-ru.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
from pathlib import Path

import numpy as np


def part(manifest: Path, seconds: float, offset: int = 0):
    from clasp_cli.audio import load_audio
    from clasp_cli.manifest import read_manifest

    waves, langs, total = [], set(), 0.0
    for u in read_manifest(manifest)[offset:]:
        w = load_audio(u.audio_path(manifest.parent), 16_000)
        waves.append(w)
        langs.add(u.lang)
        total += w.size / 16_000
        if total >= seconds:
            break
    return waves, langs.pop()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--first", type=Path, required=True)
    ap.add_argument("--second", type=Path, required=True)
    ap.add_argument("--seconds", type=float, default=60.0, help="of speech from each")
    ap.add_argument("--recordings", type=int, default=3, help="recordings built, each from the next stretch of both")
    ap.add_argument("--pause", type=float, default=0.8)
    ap.add_argument("--switch-pause", type=float, default=2.0)
    ap.add_argument("--out", type=Path, required=True)
    a = ap.parse_args()
    import soundfile as sf

    from clasp_cli.indexer import index_paths
    from clasp_cli.registry import load_model
    from clasp_cli.store import Store

    model = load_model(device="cpu")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "rec"
        root.mkdir()
        changes = {}
        for n in range(a.recordings):
            w1, l1 = part(a.first, a.seconds, n * 40)
            w2, l2 = part(a.second, a.seconds, n * 40)
            gap = np.zeros(int(a.pause * 16_000), np.float32)
            first = np.concatenate([x for w in w1 for x in (w, gap)])
            wave = np.concatenate([first, np.zeros(int(a.switch_pause * 16_000), np.float32),
                                   np.concatenate([x for w in w2 for x in (w, gap)])])
            path = root / f"two-{n}.flac"
            sf.write(path, wave, 16_000)
            changes[str(path)] = (first.size / 16_000 + a.switch_pause / 2, l1, l2)
        index_paths([root], Path(tmp) / "idx", model=model, transcribe=True)
        with Store.open(Path(tmp) / "idx") as st:
            for f in st.files():
                at, l1, l2 = changes[f.path]
                got = st.db.execute("SELECT p.start, p.end, t.language FROM passages p JOIN transcripts t ON t.passage_id=p.id "
                                    "WHERE p.file_id=? ORDER BY p.start", (f.id,)).fetchall()
                own = sum((l1 if (s + e) / 2 < at else l2) == lang for s, e, lang in got)
                rows.append({"recording": Path(f.path).name, "file_language": f.language, "windows": len(got), "own": own,
                             "languages": {lang: sum(1 for *_, x in got if x == lang) for lang in {x for *_, x in got}}})
                print(json.dumps(rows[-1]), flush=True)
    windows, own = sum(r["windows"] for r in rows), sum(r["own"] for r in rows)
    res = {"first": str(a.first), "second": str(a.second), "seconds_each": a.seconds, "recordings": rows,
           "windows": windows, "own_language": own, "share": round(own / max(windows, 1), 3),
           "machine": f"{platform.machine()}, {os.cpu_count()} cores"}
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text(json.dumps(res, indent=1, ensure_ascii=False) + "\n")
    print(f"{own} of {windows} windows ({res['share']:.1%}) read in the language spoken there")


if __name__ == "__main__":
    main()
