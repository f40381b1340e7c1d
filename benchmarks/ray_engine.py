"""`clasp index --engine ray` against the local engine: same index, overhead, and faults.

The 1-hour set is real speech: Asterisk's phone prompts (voice artists, en/fr/es/it/ru, 8 kHz;
`make dataset-asterisk` unpacks them to data/asterisk-root) joined in name order into twelve
5-minute programs with a 0.6 s pause between prompts. Nothing is tuned on it.

For each engine it indexes the set into a fresh index (no transcripts: the embedding path both
engines share; --transcribe adds a transcribed pair) and reports wall time, real-time factor and
the overhead against the local engine, then checks the Ray index holds the same files and
windows with vectors at cosine >= 0.999. `--faults` adds: one corrupt file among 100, an actor
killed with SIGKILL at a random moment, and the driver killed with SIGKILL at a random moment
and the command rerun.

  python benchmarks/ray_engine.py --out benchmarks/results/ray-engine.json --faults
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import shutil
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import soundfile as sf

ROOT = Path(__file__).resolve().parent.parent
ASTERISK = ROOT / "data" / "asterisk-root"


def prompts() -> list[Path]:
    return sorted(ASTERISK.rglob("*.wav"))


def make_hour_set(out: Path, minutes: float = 60.0, program_minutes: float = 5.0) -> list[Path]:
    """Twelve programs of joined prompts (resumable: a finished program is kept)."""
    out.mkdir(parents=True, exist_ok=True)
    files = prompts()
    if not files:
        raise SystemExit(f"no prompts under {ASTERISK}: run `make dataset-asterisk` first")
    made, it, total = [], iter(files), 0.0
    for n in range(int(minutes // program_minutes)):
        path = out / f"program-{n:02d}.flac"
        parts, seconds = [], 0.0
        for f in it:
            wave, sr = sf.read(f, dtype="float32", always_2d=True)
            if sr != 8000:
                continue
            parts += [wave[:, 0], np.zeros(int(0.6 * sr), dtype=np.float32)]
            seconds += len(wave) / sr + 0.6
            if seconds >= program_minutes * 60:
                break
        if not path.exists():
            tmp = path.with_suffix(".tmp.flac")
            sf.write(tmp, np.concatenate(parts), 8000)
            os.replace(tmp, path)
        made.append(path)
        total += seconds
    return made


def windows(index: Path) -> dict:
    db = sqlite3.connect(index / "index.sqlite")
    try:
        return {(f, round(s, 3), round(e, 3)): np.frombuffer(v, dtype=np.float16).astype(np.float32)
                for f, s, e, v in db.execute("SELECT f.path, p.start, p.end, p.vector FROM passages p JOIN files f ON f.id=p.file_id")}
    finally:
        db.close()


def compare(a: dict, b: dict) -> dict:
    common = set(a) & set(b)
    cos = [float(a[k] @ b[k] / np.linalg.norm(a[k]) / np.linalg.norm(b[k])) for k in common]
    return {"same_windows": set(a) == set(b), "windows": len(a), "windows_other": len(b),
            "min_cosine": round(min(cos), 6) if cos else None}


def actor_pids() -> list[int]:
    out = []
    for p in Path("/proc").iterdir():
        if p.name.isdigit():
            try:
                if b"MapBatches(Embedder)" in (p / "cmdline").read_bytes():
                    out.append(int(p.name))
            except OSError:
                pass
    return out


def run_engine(files, index: Path, model, engine: str, transcribe: bool, actors: int | None = None) -> dict:
    from clasp_cli.engines.ray_engine import RayConfig
    from clasp_cli.indexer import index_paths

    shutil.rmtree(index, ignore_errors=True)
    kw = {}
    init_s = 0.0
    if engine == "ray":
        import ray

        t = time.perf_counter()
        ray.init(num_cpus=os.cpu_count(), include_dashboard=False, log_to_driver=False)
        init_s = time.perf_counter() - t
        kw["ray"] = RayConfig(actors=actors, cpus_per_actor=(os.cpu_count() - 1) / (actors or 1))
    t = time.perf_counter()
    try:
        s = index_paths(files, index, model=model, transcribe=transcribe, engine=engine, **kw)
    finally:
        if engine == "ray":
            import ray

            ray.shutdown()
    wall = time.perf_counter() - t
    return {"engine": engine, "actors": actors, "transcribe": transcribe, "files": s.indexed, "failed": len(s.failed),
            "passages": s.passages, "audio_s": round(s.audio_seconds, 1), "wall_s": round(wall, 1), "cluster_start_s": round(init_s, 1),
            "x_realtime": round(s.audio_seconds / wall, 1)}


def faults(work: Path, hour: list[Path], model, local_index: Path) -> dict:
    from clasp_cli.engines.ray_engine import RayConfig
    from clasp_cli.indexer import index_paths
    from clasp_cli.store import Store
    import ray

    out: dict = {}
    # 1. one corrupt file among 100
    src = work / "hundred"
    shutil.rmtree(src, ignore_errors=True)
    src.mkdir(parents=True)
    spoken = [Path(json.loads(line)["audio"]) for line in (ROOT / "data" / "asterisk" / "en.jsonl").open()]  # sentences, no beeps
    for n, f in enumerate(spoken[:99]):
        shutil.copy(f, src / f"{n:03d}-{f.name}")
    (src / "050-corrupt.wav").write_bytes(b"RIFF" + os.urandom(20000))
    shutil.rmtree(work / "idx-hundred", ignore_errors=True)
    ray.init(num_cpus=os.cpu_count(), include_dashboard=False, log_to_driver=False)
    try:
        s = index_paths([src], work / "idx-hundred", model=model, transcribe=False, engine="ray")
        out["corrupt_1_in_100"] = {"indexed": s.indexed, "failed": [(Path(p).name, e) for p, e in s.failed]}
        # 2. an actor killed at a random moment of the 1-hour run
        shutil.rmtree(work / "idx-actor", ignore_errors=True)
        moment = random.Random(0).uniform(5, 25)
        killed: list[int] = []

        def killer() -> None:
            time.sleep(moment)
            for pid in actor_pids():
                os.kill(pid, signal.SIGKILL)
                killed.append(pid)

        threading.Thread(target=killer, daemon=True).start()
        s = index_paths(hour, work / "idx-actor", model=model, transcribe=False, engine="ray", ray=RayConfig())
        with Store.open(work / "idx-actor") as st:
            problems = st.check()
        out["actor_kill"] = {"at_s": round(moment, 1), "killed_pids": killed, "indexed": s.indexed, "failed": len(s.failed),
                             "check": problems, **compare(windows(local_index), windows(work / "idx-actor"))}
    finally:
        ray.shutdown()
    # 3. the driver killed at a random moment, then the same command again
    idx = work / "idx-driver"
    shutil.rmtree(idx, ignore_errors=True)
    cmd = [sys.executable, "-m", "clasp_cli", "index", *map(str, hour), "--index", str(idx), "--no-transcribe", "--engine", "ray"]
    moment = random.Random(1).uniform(15, 45)
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        proc.wait(moment)
        finished_first = True
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        finished_first = False
    db = sqlite3.connect(idx / "index.sqlite")
    kept = db.execute("SELECT COUNT(*) FROM files WHERE status='ok'").fetchone()[0]
    db.close()
    time.sleep(2)  # the killed driver's local cluster winds itself down
    t = time.perf_counter()
    r = subprocess.run(cmd + ["--json"], capture_output=True, text=True)
    report = json.loads(r.stdout) if r.returncode == 0 else {"error": r.stderr[-500:]}
    out["driver_kill"] = {"at_s": round(moment, 1), "finished_before_kill": finished_first, "files_kept": kept,
                          "rerun_added": report.get("added"), "rerun_unchanged": report.get("unchanged"),
                          "rerun_s": round(time.perf_counter() - t, 1), "rerun_exit": r.returncode,
                          **compare(windows(local_index), windows(idx))}
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--set", default=str(ROOT / "data" / "hour-set"))
    ap.add_argument("--work", default="/tmp/ray-bench")
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "ray-engine.json"))
    ap.add_argument("--transcribe", action="store_true", help="also compare a transcribing run of each engine")
    ap.add_argument("--faults", action="store_true")
    a = ap.parse_args()
    from clasp_cli.registry import load_model

    hour = make_hour_set(Path(a.set))
    work = Path(a.work)
    work.mkdir(parents=True, exist_ok=True)
    model = load_model(device="cpu")
    model.ready()
    res = {"machine": f"{platform.node()}: {os.cpu_count()} CPU cores", "command": "python " + " ".join(sys.argv),
           "set": f"{len(hour)} programs of Asterisk prompts", "runs": []}
    modes = [False, True] if a.transcribe else [False]
    for transcribe in modes:
        local = run_engine(hour, work / f"idx-local-{int(transcribe)}", model, "local", transcribe)
        res["runs"].append(local)
        print(json.dumps(local), flush=True)
        for actors in (1, 2) if not transcribe else (1,):
            r = run_engine(hour, work / f"idx-ray{actors}-{int(transcribe)}", model, "ray", transcribe, actors)
            r["overhead"] = round(r["wall_s"] / local["wall_s"] - 1, 3)
            r.update(compare(windows(work / f"idx-local-{int(transcribe)}"), windows(work / f"idx-ray{actors}-{int(transcribe)}")))
            res["runs"].append(r)
            print(json.dumps(r), flush=True)
    if a.faults:
        res["faults"] = faults(work, hour, model, work / "idx-local-0")
        print(json.dumps(res["faults"]), flush=True)
    Path(a.out).write_text(json.dumps(res, indent=1))


if __name__ == "__main__":
    main()
