"""`clasp benchmark`: CLASP against transcribe-then-embed on the same manifest."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer

from ..defaults import DEFAULT_MODEL
from ..display import printable
from .common import DEVICE_HELP, err, fail, friendly_errors, out


def register(app: typer.Typer) -> None:
    @app.command("benchmark")
    @friendly_errors
    def benchmark(
        manifest: Path = typer.Option(..., "--manifest", "-m", help="Manifest (JSONL) of recordings and their texts.", exists=True, dir_okay=False),
        model: str = typer.Option(DEFAULT_MODEL, "--model", help="CLASP model: a registry name or a model directory."),
        asr_model: Optional[str] = typer.Option(None, "--asr-model", help="Whisper for the ASR baseline: whisper-tiny.en, whisper-base "
                                                "or a CTranslate2 Whisper directory. Default: the Whisper of the CLASP model's own encoder."),
        ctc_model: Optional[str] = typer.Option(None, "--ctc-model", help="Also run a Hugging Face CTC recogniser (hub id or directory), e.g. facebook/hubert-large-ls960-ft."),
        limit: Optional[int] = typer.Option(None, "--limit", min=2, help="Use only the first N usable utterances of each manifest (one per distinct text)."),
        multilingual: Optional[Path] = typer.Option(None, "--multilingual", help="Second manifest of non-English audio: queries in its own language and in English.", exists=True, dir_okay=False),
        noise: bool = typer.Option(False, "--noise/--no-noise", help="Noise sweep: white and babble noise at 20, 10, 5 and 0 dB SNR."),
        noise_n: int = typer.Option(300, "--noise-n", min=2, help="Utterances in the noise sweep (a fixed-seed subset)."),
        beam_size: int = typer.Option(1, "--beam-size", min=1, help="Whisper beam size (1 = greedy)."),
        asr_reader: str = typer.Option("chunks", "--asr-reader", help="How the ASR baseline reads: chunks (as `clasp "
                                       "index` reads: up to 30 s at a time, one language per recording), batched (each "
                                       "clip alone, no padding to 30 s: clasp's reader up to 3a2ac35) or faster-whisper "
                                       "(its stock transcribe(), clip by clip)."),
        nonsense: int = typer.Option(300, "--nonsense", min=0, help="Nonsense queries (emoji, punctuation, random letters) "
                                     "checked against the model's default --min-score; 0 skips the check."),
        device: str = typer.Option("auto", "--device", help=DEVICE_HELP),
        report: Optional[Path] = typer.Option(None, "--report", help="Write DIR/report.md with PNG plots.", file_okay=False),
        as_json: bool = typer.Option(False, "--json", help="Print the results as JSON."),
        archive: bool = typer.Option(False, "--archive", help="Search long recordings instead: join the manifest's utterances "
                                     "into programs, index them, and score passage HITS@1/@5 and MRR for CLASP, --rerank, "
                                     "keyword and hybrid search and ASR on the same windows."),
        out_dir: Path = typer.Option(Path("bench-archive"), "--out", help="With --archive: work folder for the archive and its indexes.",
                                     file_okay=False),
        programs: Optional[int] = typer.Option(None, "--programs", min=1, help="With --archive: use this many programs, "
                                               "spread evenly over the voices (default: all)."),
        archive_noise: Optional[str] = typer.Option(None, "--archive-noise", metavar="KIND:SNR", help="With --archive: hear "
                                                    "every program through noise, e.g. babble:5 (other voices talking, "
                                                    "5 dB) or white:10."),
        rows: Optional[str] = typer.Option(None, "--rows", metavar="LIST", help="With --archive: only these rows, a comma "
                                           "list of clasp, rerank, keyword, fused, asr (default: all)."),
        reuse: bool = typer.Option(False, "--reuse", help="With --archive: keep the indexes and transcripts an earlier run "
                                   "in --out finished for the same files and model (their build times are that run's)."),
    ) -> None:
        """Compare CLASP with transcribe-then-embed (Whisper, optionally a CTC model) on one manifest.

        Every text is a query that ranks all recordings (HITS@1/5/10, MRR, mean rank); translations in the manifest are scored as queries in their languages.

        Cost is measured in the same run, each system in its own process: parameters, disk, speed as a multiple of real time, latency per utterance, peak memory.

        Examples:

          clasp benchmark -m data/synth/test.jsonl

          clasp benchmark -m test.jsonl --model runs/gating --noise --report bench/

          clasp benchmark -m test.jsonl --multilingual de.jsonl --limit 500 --json

          clasp benchmark -m test.jsonl --ctc-model facebook/hubert-large-ls960-ft

          clasp benchmark --archive -m data/synth/test.jsonl --out bench-archive/

          clasp benchmark --archive -m data/synth/test.jsonl --archive-noise babble:5

          clasp benchmark --archive -m data/synth/test.jsonl --rows fused,asr --reuse
        """
        if report is not None:  # before the run, not after it
            from ..extras import require

            require("plots", "--report")
        if archive:
            kind, snr = None, 5.0
            if archive_noise:
                kind, _, level = archive_noise.partition(":")
                try:
                    snr = float(level or 5)
                except ValueError:
                    fail(f"--archive-noise: SNR must be a number of dB (got {level!r})", 2)
                if kind not in ("babble", "white"):
                    fail(f"--archive-noise: KIND must be babble or white (got {kind!r})", 2)
            from ..archive_bench import ROWS

            picked = tuple(r.strip() for r in (rows or ",".join(ROWS)).split(",") if r.strip())
            bad = [r for r in picked if r not in ROWS]
            if bad or not picked:
                fail(f"--rows: choose from {', '.join(ROWS)} (got {rows!r})", 2)
            return _archive(manifest, model, out_dir, device, as_json, programs, asr_model, asr_reader, kind, snr, picked, reuse)
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        from ..benchmark import BenchmarkConfig, run_benchmark

        if asr_model is None:
            from ..config import ModelConfig
            from ..registry import resolve_model_dir
            from ..transcribe import whisper_for

            asr_model = whisper_for(ModelConfig.load(resolve_model_dir(model) / "config.json").speech_encoder)
        cfg = BenchmarkConfig(
            manifest=str(manifest), model=model, asr_model=asr_model, ctc_model=ctc_model, limit=limit, nonsense=nonsense,
            multilingual=str(multilingual) if multilingual else None, noise=noise, noise_n=noise_n,
            beam_size=beam_size, asr_reader=asr_reader, device=device,
        )
        progress = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                            console=err, transient=True)
        state: dict = {"task": None}
        skipped: list[str] = []

        def on_event(kind: str, **d) -> None:
            if kind == "skip":
                skipped.append(f"{d['id']}: {d['reason']}")
            elif kind == "load":
                progress.console.print(f"{d['n']} utterances" + (f" + {d['multilingual']} multilingual" if d["multilingual"] else "")
                                       + (f", {d['skipped']} skipped" if d["skipped"] else ""))
            elif kind == "system_start":
                state["task"] = progress.add_task(f"{d['label']}: loading", total=d["total"])
            elif kind == "system_loaded" and state["task"] is not None:
                progress.update(state["task"], description=f"{d['name']}: encoding")
            elif kind == "advance" and state["task"] is not None:
                progress.advance(state["task"], d["n"])
            elif kind == "system_done":
                progress.remove_task(state["task"])
                state["task"] = None
                progress.console.print(f"{d['name']}: done in {d['seconds']:.0f} s")

        with progress:
            result = run_benchmark(cfg, on_event)
        if skipped:
            err.print(f"[yellow]skipped {len(skipped)} utterance(s)[/] with unreadable or missing audio:")
            for s in skipped[:10]:
                err.print(f"  {printable(s)}", markup=False)
            if len(skipped) > 10:
                err.print(f"  ... and {len(skipped) - 10} more")
        if report is not None:
            from ..report import write_report

            path = write_report(result, report)
            err.print(f"report written to {path}")
        if as_json:
            out.print_json(json.dumps(result.to_dict()))
        else:
            _print_tables(result)


def _print_tables(result) -> None:
    from rich.table import Table as RichTable
    from rich.text import Text

    from ..report import machine_line, tables

    out.print(Text.assemble(("machine", "bold"), ": " + machine_line(result.machine)), soft_wrap=True)
    for t in tables(result):
        rt = RichTable(title=t.title, title_justify="left", show_lines=False)
        for i, h in enumerate(t.headers):
            rt.add_column(h, justify="left" if i == 0 or h in ("kind", "noise") else "right", no_wrap=i == 0)
        for row in t.rows:
            rt.add_row(*(Text(c) for c in row))
        out.print(rt)
        for n in t.notes:
            out.print(n, style="dim", markup=False, soft_wrap=True)


def _archive(manifest: Path, model: str, out_dir: Path, device: str, as_json: bool, programs: int | None = None,
             asr_model: str | None = None, asr_reader: str = "chunks", noise: str | None = None, snr: float = 5.0,
             rows: tuple[str, ...] | None = None, reuse: bool = False) -> None:
    from rich.table import Table as RichTable

    from ..archive_bench import ROWS, ArchiveBenchConfig, run_archive_benchmark
    from ..devices import check_device

    check_device(device)

    def on_event(kind: str, **d) -> None:
        if kind == "archive":
            err.print(f"{d['programs']} programs, {d['queries']} queries, {d['hours']:.2f} h of audio", markup=False)
        elif kind == "row":
            err.print(f"{d['system']}: done", markup=False, highlight=False)

    result = run_archive_benchmark(ArchiveBenchConfig(manifest=manifest, out=out_dir, model=model, asr_model=asr_model,
                                                      asr_reader=asr_reader, limit_programs=programs, device="cpu" if device == "auto" else device,
                                                      noise=noise, snr=snr, rows=rows or ROWS, reuse=reuse),
                                    on_event)
    if as_json:
        out.print_json(json.dumps(result))
        return
    langs = [k for k in result["rows"][0]["scores"] if k != "all"]
    t = RichTable(title=f"archive: {result['programs']} programs, {result['queries']} queries, {result['audio_hours']} h",
                  title_justify="left")
    for h in ("system", *(f"HITS@1 {lang}" for lang in langs), "HITS@5", "MRR", "index x RT", "query ms p50", "cold ms p50", "cached ms p50", "MB"):
        t.add_column(h, justify="left" if h == "system" else "right", no_wrap=h == "system")

    def cell(row: dict, key: str) -> str:
        return "" if row.get(key) is None else str(row[key])

    for row in result["rows"]:
        sc = row["scores"]
        t.add_row(row["system"], *(f"{sc[lang]['hits@1']:.2f}" for lang in langs), f"{sc['all']['hits@5']:.2f}",
                  f"{sc['all']['mrr']:.3f}", cell(row, "index_x_realtime"), cell(row, "query_ms_p50"),
                  cell(row, "cold_query_ms_p50"), cell(row, "cached_query_ms_p50"), cell(row, "index_mb"))
    out.print(t)
