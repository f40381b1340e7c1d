"""`clasp index` and `clasp info`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import List, Optional

import typer
from rich.table import Table
from rich.text import Text

from ..defaults import DEFAULT_MODEL
from ..display import printable, shown
from .common import DEVICE_HELP, err, fail, friendly_errors, out
from .common_options import IndexOption, hms, index_dir


def register(app: typer.Typer) -> None:
    @app.command("index")
    @friendly_errors
    def index(
        paths: Optional[List[Path]] = typer.Argument(None, help="Recordings or folders (searched recursively)."),
        index: Optional[Path] = IndexOption,
        model: Optional[str] = typer.Option(None, "--model", "-m", help=f"Model name or directory (default: {DEFAULT_MODEL}); fixed per index once chosen."),
        prune: bool = typer.Option(False, "--prune", help="Drop indexed files under PATHS that no longer exist."),
        segmentation: Optional[str] = typer.Option(None, help="windows: about one sentence each, cut where a voice activity "
                                                   "detector hears a pause; passages: 3-12 s cut at quiet frames. Fixed per "
                                                   "index once chosen (default: windows for a new index)."),
        min_seconds: Optional[float] = typer.Option(None, help="Shortest span (seconds). Default: 1 (windows), 3 (passages)."),
        max_seconds: Optional[float] = typer.Option(None, help="Longest span (seconds); cuts fall at pauses. "
                                                    "Default: 6 (windows), 12 (passages)."),
        batch_size: int = typer.Option(64, min=1, help="Passages read and embedded together."),
        transcribe: Optional[bool] = typer.Option(None, "--transcribe/--no-transcribe", help="Transcribe every passage with "
                                                  "Whisper as well, from the same encoder pass: what was said is shown with "
                                                  "each hit and fused into its score (in any language). On by default for a "
                                                  "new index; --no-transcribe indexes about 2x faster, CLASP vectors only, and is "
                                                  "remembered. --transcribe on an index without transcripts fills them in."),
        speakers: Optional[bool] = typer.Option(None, "--speakers/--no-speakers", help="Find who speaks where (turns, and "
                                                "speakers across recordings: `clasp speakers`). On by default for a new "
                                                "index; --no-speakers is remembered, and --speakers later fills them in."),
        device: str = typer.Option("auto", help=DEVICE_HELP),
        repair: bool = typer.Option(False, "--repair", help="Check the index and rebuild its search graph from the database; no PATHS needed."),
        rebuild: bool = typer.Option(False, "--rebuild", help="Set a damaged index aside and re-embed every file it recorded (plus PATHS)."),
        as_json: bool = typer.Option(False, "--json", help="Print the summary as JSON."),
        watch: bool = typer.Option(False, "--watch", help="After indexing, keep watching PATHS: new and changed files are "
                                   "indexed once they stop growing, deleted ones forgotten, until Ctrl-C."),
        poll: bool = typer.Option(False, "--poll", help="With --watch: look for changes every second instead of filesystem "
                                  "events (network mounts send none)."),
        settle: float = typer.Option(1.0, min=0.0, help="With --watch: seconds a file must stay unchanged before it is indexed."),
        engine: str = typer.Option("local", "--engine", help="local: cut and embed in this process. ray: on a Ray cluster "
                                   "(--ray-address, else RAY_ADDRESS, else a local one started for the run); this "
                                   "process still writes the index, so the result is the same. Needs clasp-cli[ray]."),
        ray_address: Optional[str] = typer.Option(None, "--ray-address", help="With --engine ray: the cluster to join, "
                                                  "e.g. auto or ray://head:10001."),
        ann: Optional[str] = typer.Option(None, "--ann", help="Nearest-neighbour engine, recorded in the index: hnsw "
                                          "(float32 in RAM), usearch (int8 shards that searches memory-map, about 30% of "
                                          "the RAM), or auto (usearch from 1M windows). Changing it rebuilds the graphs."),
        language: Optional[str] = typer.Option(None, "--language", help="Read every recording of this run in this language "
                                               "(a Whisper code: en, de, cs, ja, ...). Default: each recording's own, "
                                               "detected over all of its speech."),
        reader: Optional[str] = typer.Option(None, "--reader", help="The Whisper that reads what was said, recorded in "
                                             "the index: whisper-base (the default), whisper-tiny.en, a faster-whisper "
                                             "model name such as large-v3-turbo (downloaded where a hub is reachable), or "
                                             "a CTranslate2 Whisper directory. Float16 on --device cuda."),
    ) -> None:
        """Index recordings: cut them into passages at pauses, embed them, store them.

        Reruns are incremental: unchanged files are skipped, changed ones re-embedded.
        Bad files are recorded with the reason and the rest is indexed; they are tried again on every run.

        Examples:

          clasp index ~/recordings

          clasp index interviews/ lectures/*.mp3 --index ~/archive-index

          clasp index ~/recordings --prune     # also forget deleted files

          clasp index ~/recordings --no-transcribe   # CLASP vectors only: fastest

          clasp index ~/voice-notes --watch    # and keep indexing what arrives, until Ctrl-C

          clasp index /mnt/archive --engine ray --ray-address auto   # on a Ray cluster

          clasp index /mnt/archive --ann usearch   # an index of millions of windows in little RAM

          clasp index ~/recordings --transcribe   # fill in transcripts of an index built without

          clasp index ~/czech-radio --language cs   # every recording read as Czech

          clasp index ~/talks --reader large-v3-turbo --device cuda   # a larger Whisper reads

          clasp index --repair                 # after a crash or a copied graph file

          clasp index --rebuild                # the database is damaged: re-embed what it recorded
        """
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

        from ..devices import check_device
        from ..indexer import ANN_CHOICES, ENGINES, index_paths
        from ..passages import DEFAULT_SEGMENTATION, SEGMENTATIONS, segmentation_from_json, segmentation_name
        from ..registry import load_model, resolve_model_dir
        from ..repair import rebuild_index, recorded_files, recorded_segmentation, repair_index

        if segmentation is not None and segmentation not in SEGMENTATIONS:
            fail(f"--segmentation must be windows or passages (got {segmentation!r})", 2)
        target = index_dir(index)
        spans_cfg = None  # None: the way this index was cut before (windows for a new one)
        if segmentation is not None or min_seconds is not None or max_seconds is not None:
            if segmentation is None:
                recorded = recorded_segmentation(target)
                try:
                    segmentation = segmentation_name(segmentation_from_json(recorded)) if recorded else DEFAULT_SEGMENTATION
                except ValueError:
                    segmentation = DEFAULT_SEGMENTATION  # the run itself reports the damaged setting
            defaults = SEGMENTATIONS[segmentation]()
            lo = defaults.min_seconds if min_seconds is None else min_seconds
            hi = defaults.max_seconds if max_seconds is None else max_seconds
            if lo <= 0 or hi < lo:
                fail("--min-seconds must be > 0 and <= --max-seconds", 2)
            spans_cfg = SEGMENTATIONS[segmentation](min_seconds=lo, max_seconds=hi)
        if repair and (rebuild or paths or prune):
            fail("--repair works on the index alone: give no PATHS, --rebuild or --prune with it", 2)
        if watch and (repair or rebuild or as_json):
            fail("--watch runs until Ctrl-C: give it without --repair, --rebuild or --json", 2)
        if poll and not watch:
            fail("--poll goes with --watch", 2)
        if engine not in ENGINES:
            fail(f"--engine must be {' or '.join(ENGINES)} (got {engine!r})", 2)
        if ray_address and engine != "ray":
            fail("--ray-address goes with --engine ray", 2)
        if engine == "ray" and (watch or repair):
            fail("--engine ray indexes a batch of files: give it without --watch or --repair", 2)
        if ann is not None and (watch or repair):
            fail("--ann is recorded by a plain `clasp index` run: give it without --watch or --repair", 2)
        if ann is not None and ann not in ANN_CHOICES:
            fail(f"--ann must be one of {', '.join(ANN_CHOICES)} (got {ann!r})", 2)
        if reader is not None and transcribe is False:
            fail("--reader reads transcripts: give it without --no-transcribe", 2)
        if engine == "ray":
            from ..extras import require

            require("ray", "--engine ray")
        if not paths and not repair and not rebuild:
            fail("nothing to index: give at least one file or folder (or --repair / --rebuild)", 2)
        check_device(device)
        if repair:
            rep = repair_index(target)
            if as_json:
                out.print_json(json.dumps({"index": str(target), "problems": rep.problems, "passages": rep.passages,
                                           "remaining": rep.remaining}))
            else:
                for p in rep.problems:
                    err.print(f"[yellow]found[/] {shown(p)}", markup=True, highlight=False)
                out.print(f"graph rebuilt from {rep.passages} passages; "
                          + ("the index is consistent" if not rep.remaining else "still wrong: " + "; ".join(rep.remaining)),
                          markup=False)
            if rep.remaining:
                raise typer.Exit(7)
            return
        ref = model or recorded_files(target)[1] or DEFAULT_MODEL  # an existing index keeps its model
        if Path(ref).exists():
            ref = str(resolve_model_dir(ref).resolve())
        clasp_model = load_model(ref, device=device)
        progress = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.fields[info]}"),
                            TimeRemainingColumn(), console=err, transient=True)
        state = {"task": None, "audio": 0.0, "fill": None}

        def on_event(kind: str, **d) -> None:
            if kind == "scan":
                state["task"] = progress.add_task("indexing", total=d["files"], info="")
            elif kind == "transcribe_start":  # windows embedded earlier get their transcripts now
                state["fill"] = progress.add_task("transcribing", total=d["passages"],
                                                  info=f"{hms(d['seconds'])} of speech; searches work meanwhile")
            elif kind == "transcribed" and state["fill"] is not None:
                progress.update(state["fill"], advance=d["passages"], info=shown(Path(d['path']).name))
            elif kind == "e5_vectors":  # transcripts stored before e5 get its vectors (no transcribing)
                if state.get("e5") is None:
                    state["e5"] = progress.add_task("adding e5 vectors", total=d["total"], info="searches work meanwhile")
                progress.update(state["e5"], completed=d["done"])
            elif kind == "transcribe_failed":
                progress.console.print(f"[yellow]not transcribed[/] {shown(d['path'])}: {shown(d['reason'])}")
            elif kind == "speakers_start":
                state["speakers"] = progress.add_task("finding speakers", total=d["files"], info="searches work meanwhile")
            elif kind == "speakers" and state.get("speakers") is not None:
                progress.update(state["speakers"], advance=1, info=shown(Path(d['path']).name))
            elif kind == "speakers_failed":
                progress.console.print(f"[yellow]no speakers for[/] {shown(d['path'])}: {shown(d['reason'])}")
            elif kind == "file":
                state["audio"] += d.get("seconds", 0.0) if d["status"] in ("added", "updated") else 0.0
                el = progress.tasks[0].elapsed or 1e-9
                progress.update(state["task"], advance=1, info=f"{state['audio'] / 3600:.2f} h, {state['audio'] / el:.0f}x real time")
                if d["status"] == "failed":
                    progress.console.print(f"[yellow]skipped[/] {shown(d['path'])}: {shown(d['reason'])}")
                elif d.get("warning"):
                    progress.console.print(f"[yellow]partly indexed[/] {shown(d['path'])}: {shown(d['warning'])}")

        if watch:
            return _watch(paths, target, clasp_model, ref, spans_cfg, transcribe, batch_size, settle, poll, progress, on_event, state,
                          language, reader, speakers)
        args = dict(model=clasp_model, model_ref=ref, passages=spans_cfg, prune=prune, batch_size=batch_size, on_event=on_event,
                    transcribe=transcribe, ann=ann, engine=engine, language=language, reader=reader, speakers=speakers)
        if engine == "ray":
            from ..engines.ray_engine import RayConfig

            args["ray"] = RayConfig(address=ray_address, device=device)
        with progress:
            if rebuild:
                summary, aside = rebuild_index(target, list(paths or []), **args)
                if aside is not None:
                    progress.console.print(f"the old index files were moved to {printable(aside)}", markup=False, highlight=False)
            else:
                summary = index_paths(paths, target, **args)
        report = {
            "index": str(target), "added": summary.added, "updated": summary.updated, "unchanged": summary.unchanged,
            "removed": summary.removed, "failed": [{"path": p, "error": e} for p, e in summary.failed],
            "warnings": [{"path": p, "warning": w} for p, w in summary.warnings],
            "passages": summary.passages, "transcribed": summary.transcribed, "audio_hours": round(summary.audio_seconds / 3600, 4),
            "speakers_found_in": summary.diarized, "seconds": round(summary.elapsed, 2), "x_realtime": round(summary.speed, 1), "interrupted": summary.interrupted,
        }
        if as_json:
            out.print_json(json.dumps(report))
        else:
            t = Table(title=f"clasp index -> {target}", show_header=False)
            for k, v in (("added", summary.added), ("updated", summary.updated), ("unchanged", summary.unchanged),
                         ("removed", summary.removed), ("failed", len(summary.failed)), ("passages embedded", summary.passages),
                         *((("passages transcribed", summary.transcribed),) if summary.transcribed else ()),
                         ("audio", hms(summary.audio_seconds)), ("time", f"{summary.elapsed:.1f} s"),
                         *((("speed", f"{summary.speed:.0f}x real time"),) if summary.audio_seconds > 0 else ())):
                t.add_row(k, str(v))
            out.print(t)
            if summary.failed:
                ft = Table(title="files not indexed")
                ft.add_column("file", overflow="fold")
                ft.add_column("reason")
                for p, e in summary.failed:
                    ft.add_row(Text(printable(p)), Text(printable(e)))
                out.print(ft)
            for p, w in summary.warnings:
                err.print(Text.assemble(("partly indexed ", "yellow"), printable(f"{p}: {w}")))
        from ..encoders.e5 import FALLBACK_NOTICE, unavailable_reason

        if unavailable_reason():
            err.print(Text(f"note: {unavailable_reason()}; {FALLBACK_NOTICE}", style="yellow"), soft_wrap=True)
        if summary.interrupted:
            fail("interrupted: finished files are kept; rerun the same command to continue", 130)
        if summary.indexed == 0 and summary.unchanged == 0 and summary.failed:
            fail("nothing could be indexed", 3)

    @app.command("info")
    @friendly_errors
    def info(
        index: Optional[Path] = IndexOption,
        as_json: bool = typer.Option(False, "--json", help="Print JSON."),
    ) -> None:
        """Show what an index holds: files, passages, hours, model, size, failures.

        Examples:

          clasp info

          clasp info --index ~/archive-index --json
        """
        import datetime

        from ..api import info_json

        st = info_json(index_dir(index))
        if as_json:
            out.print_json(json.dumps(st))
            return
        t = Table(title=f"clasp index {st['index']}", show_header=False)
        updated = datetime.datetime.fromtimestamp(st["updated"]).isoformat(sep=" ", timespec="seconds") if st["updated"] else "never"
        for k, v in (("model", st["model"]), ("files", st["files"]), ("passages", st["passages"]),
                     ("transcribed", f"{st['transcribed']} of {st['passages']} passages"),
                     *((("reader", st["reader"]),) if st.get("reader") else ()),
                     *((("languages", ", ".join(f"{c} ({n})" for c, n in st["languages"].items())),) if st.get("languages") else ()),
                     *((("text encoders", "; ".join(f"{e['id']} ({len(e['languages'])} languages, {e['vectors']} vectors)"
                                                    for e in st["text_encoders"])),) if st.get("text_encoders") else ()),
                     ("audio", hms(st["hours"] * 3600)),
                     ("size on disk", f"{st['size_bytes'] / 2**20:.1f} MB"), ("last update", updated),
                     ("failed files", len(st["failed_files"]))):
            t.add_row(k, str(v))
        out.print(t)
        for f in st["failed_files"]:
            err.print(Text.assemble(("failed ", "yellow"), printable(f"{f['path']}: {f['error']}")))
        for f in st["warnings"]:
            err.print(Text.assemble(("partly indexed ", "yellow"), printable(f"{f['path']}: {f['warning']}")))


def _watch(paths, target, model, ref, spans_cfg, transcribe, batch_size, settle, poll, progress, on_index, state,
           language=None, reader=None, speakers=None) -> None:
    """`clasp index --watch`: the catch-up run with its progress bar, then one line per change until Ctrl-C (130)."""
    from ..watch import Watcher, WatchConfig

    def on_event(kind: str, **d) -> None:
        if not state.get("watching"):
            if kind == "watching":
                state["watching"] = True
                if state["task"] is not None:
                    progress.remove_task(state["task"])
                mode = "polling every second" if d["polling"] else "filesystem events"
                progress.console.print(f"watching {len(d['roots'])} path(s) for new, changed and deleted recordings "
                                       f"({mode}); Ctrl-C stops", markup=False, highlight=False)
            else:
                on_index(kind, **d)
            return
        if kind == "file" and d["status"] in ("added", "updated"):
            progress.console.print(Text.assemble((f"{d['status']} ", "green"), printable(d["path"]),
                                                 f" ({hms(d.get('seconds', 0.0))})"))
        elif kind == "file" and d["status"] == "failed":
            progress.console.print(Text.assemble(("skipped ", "yellow"), printable(f"{d['path']}: {d['reason']}")))
        elif kind == "removed":
            progress.console.print(Text.assemble(("removed ", "cyan"), printable(d["path"])))
        elif kind == "transcribe_failed":
            progress.console.print(Text.assemble(("not transcribed ", "yellow"), printable(f"{d['path']}: {d['reason']}")))

    watcher = Watcher(paths, target, model, ref, passages=spans_cfg, transcribe=transcribe, batch_size=batch_size,
                      cfg=WatchConfig(settle=settle, poll=poll), on_event=on_event, language=language,
                      reader=reader, speakers=speakers)
    with progress:
        summary = watcher.run()
    first = summary.first
    err.print(f"indexed {first.indexed + summary.indexed} file(s), removed {first.removed + summary.removed}, "
              f"{len(first.failed) + len(summary.failed)} not indexed; index {printable(str(target))}",
              markup=False, highlight=False)
    if summary.interrupted:
        fail("stopped watching (Ctrl-C): finished files are kept", 130)
