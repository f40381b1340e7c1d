"""How the index reads: word error rate of each window's transcript, window by window, with the
same Whisper and the same windows, read three ways:

- windows: each window alone, with its own language guess (clasp up to 3a2ac35);
- windows-1lang: each window alone, told its recording's language;
- chunks: the recording read in chunks of up to 30 s in one language (clasp_cli.reading).

The windows are cut exactly as `clasp index` cuts them. A window's reference is the words of the
archive's sentences whose time falls inside it, each sentence's words spread over its span in
proportion to their characters (the archive records where each sentence lies, not each word).
The same reference serves every row, so rows compare; the ceiling (the reference read back) is 0.

    python benchmarks/reading.py --manifest data/fillets/val.jsonl --out benchmarks/results/reading-fillets-val.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path


def reference_words(program, unspaced: bool = False) -> list[tuple[float, str]]:
    from clasp_cli.reading.align import timed_words
    from clasp_cli.reading.reader import Segment

    return timed_words([Segment(s.start, s.end, s.text) for s in program.sentences], 0.0, unspaced)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--manifest", type=Path, required=True, help="utterances to join into programs (episodes where they name one)")
    ap.add_argument("--archive", type=Path, help="where the joined programs go (default data/arch-read-<manifest>)")
    ap.add_argument("--reader", default="whisper-base")
    ap.add_argument("--programs", type=int, default=0, help="read only this many programs (0: all)")
    ap.add_argument("--rows", default="windows,windows-1lang,chunks")
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--dump", type=Path, help="also write each window's reference and readings here (jsonl)")
    ap.add_argument("--pause-timing", action="store_true", help="spread a segment's words over its whole span, pauses "
                    "included (clasp before the speech timing of align.timed_words)")
    a = ap.parse_args()

    from clasp_cli.archive import ArchiveConfig, build_archive
    from clasp_cli.audio import load_audio
    from clasp_cli.benchmark.scoring import word_error_rate
    from clasp_cli.indexer import cut_windows
    from clasp_cli.passages import WindowConfig
    from clasp_cli.reading.align import UNSPACED
    from clasp_cli.reading.reader import ChunkReader
    from clasp_cli.reading.recording import read_recording, wave_audio
    from clasp_cli.transcribe import shared_transcriber

    archive = a.archive or Path("data") / f"arch-read-{a.manifest.parent.name}-{a.manifest.stem}"
    programs = build_archive(ArchiveConfig(manifest=a.manifest, out=archive))
    if a.programs:
        programs = programs[: a.programs]
    tr = shared_transcriber(a.reader)
    reader = ChunkReader(tr)
    rows = a.rows.split(",")
    refs: list[str] = []
    hyps: dict[str, list[str]] = {r: [] for r in rows}
    secs: dict[str, float] = {r: 0.0 for r in rows}
    langs_read: dict[str, dict[str, int]] = {r: {} for r in rows}
    audio_s = 0.0
    for n, p in enumerate(programs):
        path = archive / p.path
        duration, windows = cut_windows(path, WindowConfig(), 16_000)
        spans, waves = [], []
        for span, wave in windows:
            spans.append((span.start, span.end))
            waves.append(wave)
        audio_s += duration
        wave = load_audio(path, 16_000)
        lang = p.sentences[0].lang
        ref = reference_words(p, lang in UNSPACED)
        sep = "" if lang in UNSPACED else " "
        refs += [sep.join(w for t, w in ref if s <= t <= e) for s, e in spans]
        file_lang = None
        if "chunks" in rows:
            t0 = time.perf_counter()
            r = read_recording(reader, spans, wave_audio(wave), speech_timing=not a.pause_timing)
            secs["chunks"] += time.perf_counter() - t0
            hyps["chunks"] += r.texts
            file_lang = r.language.code if r.language else None
            for x in r.langs:
                langs_read["chunks"][x or "?"] = langs_read["chunks"].get(x or "?", 0) + 1
        if "windows" in rows:
            t0 = time.perf_counter()
            hyps["windows"] += tr.transcribe_batch(waves)
            secs["windows"] += time.perf_counter() - t0
        if "windows-1lang" in rows:
            t0 = time.perf_counter()
            hyps["windows-1lang"] += tr.transcribe_batch(waves, langs=[file_lang or lang] * len(waves))
            secs["windows-1lang"] += time.perf_counter() - t0
        print(f"{n + 1}/{len(programs)} {p.path} {duration:.0f} s, {len(spans)} windows, read as {file_lang}", flush=True)
    res = {
        "manifest": str(a.manifest), "programs": len(programs), "windows": len(refs), "audio_s": round(audio_s, 1),
        "reader": a.reader, "machine": f"{platform.machine()}, {os.cpu_count()} cores",
        "rows": {r: {"wer": word_error_rate(refs, hyps[r]), "seconds": round(secs[r], 1),
                     "x_realtime": round(audio_s / max(secs[r], 1e-9), 1), "languages": langs_read[r] or None} for r in rows},
    }
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text(json.dumps(res, indent=1, ensure_ascii=False) + "\n")
    if a.dump:
        with open(a.dump, "w", encoding="utf-8") as f:
            for k, ref in enumerate(refs):
                f.write(json.dumps({"ref": ref, **{r: hyps[r][k] for r in rows}}, ensure_ascii=False) + "\n")
    print(json.dumps(res["rows"], indent=1, ensure_ascii=False))


if __name__ == "__main__":
    main()
