"""`clasp index --transcribe`: speed and word error rate, this checkout against others.

    .venv/bin/python benchmarks/transcribe_speed.py --manifest data/synth/val.jsonl --n 80 --code /tmp/old-main --out R.json
    .venv/bin/python benchmarks/transcribe_speed.py --archive data/arch-tune-synth-val --n 12 --code /tmp/old-main --out R.json

Every n-th utterance of a VALIDATION manifest is one recording. Each checkout (--code, repeatable;
this one always) indexes them into a fresh index with transcripts through its own real indexer,
with the default model loaded before the clock starts; runs alternate between checkouts
(--rounds). A recording's transcript is its windows' transcripts in time order, scored against
the manifest's text (WER with case and punctuation normalised, as `clasp benchmark` does).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

WORKER = r"""
import json, shutil, sys, time
from pathlib import Path
from clasp_cli.indexer import index_paths
from clasp_cli.registry import load_model
import numpy as np
files, index = json.loads(sys.argv[1]), Path(sys.argv[2])
shutil.rmtree(index, ignore_errors=True)
model = load_model(device="cpu")
model.embed_audio([np.zeros(16000, dtype=np.float32)])
from clasp_cli.transcribe import shared_transcriber, whisper_for
shared_transcriber(whisper_for(model.config.speech_encoder), model.device)  # loaded before the clock, as the model is
t = time.perf_counter()
s = index_paths(files, index, model=model, transcribe=True)
took = time.perf_counter() - t
import sqlite3
db = sqlite3.connect(index / "index.sqlite")
rows = db.execute("SELECT f.path, p.start, t.text FROM transcripts t JOIN passages p ON p.id=t.passage_id "
                  "JOIN files f ON f.id=p.file_id ORDER BY f.path, p.start").fetchall()
said = {}
for path, _, text in rows:
    said[path] = (said.get(path, "") + " " + text).strip()
print(json.dumps({"seconds": took, "audio_s": s.audio_seconds, "passages": s.passages, "said": said}))
"""


def main() -> None:
    from clasp_cli.benchmark.scoring import word_error_rate
    from clasp_cli.manifest import read_manifest

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--manifest", type=Path, default=Path("data/synth/val.jsonl"))
    ap.add_argument("--n", type=int, default=80)
    ap.add_argument("--code", type=Path, action="append", default=[])
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--work", type=Path, default=Path("/tmp/clasp-transcribe-speed"))
    ap.add_argument("--archive", type=Path, default=None,
                    help="instead of utterances: the first N programs of an archive folder (benchmarks/segmentation.py "
                         "builds them; archive.json), each scored against its sentences joined")
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()
    if args.archive is not None:
        programs = json.loads((args.archive / "archive.json").read_text())[: args.n]
        files = [str((args.archive / p["path"]).resolve()) for p in programs]
        ref = {f: " ".join(x["text"] for x in p["sentences"]) for f, p in zip(files, programs)}
        audio_s = sum(p["duration"] for p in programs)
    else:
        utts = read_manifest(args.manifest)
        utts = utts[:: max(1, len(utts) // args.n)][: args.n]
        # A manifest names its audio relative to its own folder.
        files = [str((args.manifest.parent / u.audio).resolve()) for u in utts]
        ref = {f: u.text for f, u in zip(files, utts)}
        audio_s = sum(u.duration for u in utts)
    missing = [f for f in files if not Path(f).is_file()]
    if missing:
        raise SystemExit(f"{len(missing)} of the recordings are missing, e.g. {missing[0]}")
    checkouts = [ROOT, *args.code]
    runs = []
    for r in range(args.rounds):
        for code in checkouts:
            env = {**os.environ, "PYTHONPATH": str(code)}
            out = subprocess.run([sys.executable, "-c", WORKER, json.dumps(files), str(args.work / f"index-{r}")],
                                 capture_output=True, text=True, env=env, cwd=code, check=True)
            got = json.loads(out.stdout.strip().splitlines()[-1])
            hyp = [got["said"].get(f, "") for f in files]
            run = {"code": str(code), "round": r, "seconds": round(got["seconds"], 2),
                   "x_realtime": round(got["audio_s"] / got["seconds"], 1), "passages": got["passages"],
                   "wer": word_error_rate([ref[f] for f in files], hyp)}
            runs.append(run)
            print(json.dumps(run), flush=True)
    result = {"manifest": str(args.archive or args.manifest), "recordings": len(files), "audio_s": round(audio_s, 1),
              "machine": f"{platform.machine()} {os.cpu_count()} cores", "runs": runs}
    if args.out:
        args.out.write_text(json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    main()
