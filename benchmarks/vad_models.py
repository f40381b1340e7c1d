"""Which Silero VAD model cuts the windows: the one in the `silero-vad` wheel against the one
faster-whisper ships, on VALIDATION archives only (clean, babble at 5 dB, natural voices, 9 languages).

Each archive joins validation utterances into programs (one voice, ten sentences, natural pauses);
every query is one sentence, and a hit is a window that overlaps it at rank 1, as in
benchmarks/segmentation.py. Only the VAD model changes between two rows; the model, windows
settings and queries are the same.

    .venv/bin/python benchmarks/vad_models.py --model clasp-base --programs 20
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import platform
import time
from pathlib import Path


def _candidates() -> dict[str, Path]:
    out = {}
    fw = importlib.util.find_spec("faster_whisper")
    if fw and fw.submodule_search_locations:
        out["faster-whisper silero_vad_v6"] = Path(next(iter(fw.submodule_search_locations))) / "assets" / "silero_vad_v6.onnx"
    sv = importlib.util.find_spec("silero_vad")
    if sv and sv.submodule_search_locations:
        out["silero-vad wheel 16k_sequence"] = Path(next(iter(sv.submodule_search_locations))) / "data" / "silero_vad_16k_sequence.onnx"
    return {k: v for k, v in out.items() if v.is_file()}


def main() -> None:
    from clasp_cli.archive import ArchiveConfig, build_archive, evaluate_segmentation, queries
    from clasp_cli.archive_bench import ArchiveBenchConfig, _noisy_copies
    from clasp_cli.passages import WindowConfig, find_windows
    from clasp_cli.registry import load_model

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="clasp-base")
    ap.add_argument("--programs", type=int, default=20)
    ap.add_argument("--out", type=Path, default=Path("benchmarks/results/vad-models.json"))
    args = ap.parse_args()

    sets = [  # (name, manifest, work folder, noise)
        ("synth val, clean", Path("data/synth/val.jsonl"), Path("data/vad-val-synth"), None),
        ("synth val, babble 5 dB", Path("data/synth/val.jsonl"), Path("data/vad-val-synth"), "babble"),
        ("kokoro prompts val", Path("data/kokoro-prompts-en/val.jsonl"), Path("data/vad-val-kokoro"), None),
        ("synth-ml val (babble, 9 languages)", Path("data/synth-ml/val.jsonl"), Path("data/vad-val-ml"), None),
    ]
    models = _candidates()
    model = load_model(args.model, device="cpu")
    results: dict = {}
    for name, manifest, work, noise in sets:
        if not manifest.is_file():
            print(f"skip {name}: {manifest} missing")
            continue
        programs = build_archive(ArchiveConfig(manifest=manifest, out=work))[: args.programs]
        root = work
        if noise:
            noisy = _noisy_copies(ArchiveBenchConfig(manifest=manifest, out=work, noise=noise, snr=5.0), programs, work)
            root = noisy[0].parent.parent if noisy else work
        qs = queries(programs, root, langs=None)
        results[name] = {}
        for vad_name, path in models.items():
            t = time.time()
            row = evaluate_segmentation(model, programs, root, lambda p, path=path: find_windows(p, WindowConfig(), vad_model=path)[0], qs)
            row["seconds"] = round(time.time() - t, 1)
            results[name][vad_name] = row
            print(name, "|", vad_name, json.dumps({k: row[k] for k in ("windows", "mean_window_s")}), json.dumps(row["clasp"]["all"]), flush=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({
        "machine": f"{platform.machine()} {os.cpu_count()} cores", "model": args.model, "programs": args.programs,
        "vad_models": {k: str(v) for k, v in models.items()}, "sets": results,
    }, indent=1) + "\n")


if __name__ == "__main__":
    main()
