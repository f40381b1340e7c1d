"""Benchmark results as tables (shared by the terminal and Markdown) and a report folder with plots.

`tables(result)` is the one place that decides what is shown; the CLI renders those tables
with rich, `write_report` renders them as Markdown beside PNG plots. matplotlib is imported
only when plots are drawn.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np

from .benchmark import BenchmarkResult, SystemResult


@dataclass
class Table:
    key: str  # stable id: "retrieval", "cost", "query_langs", "domain", "voice", "noise", "multilingual"
    title: str
    headers: list[str]
    rows: list[list[str]]
    notes: list[str] = field(default_factory=list)


def _f(x: float, digits: int = 3) -> str:
    return f"{x:.{digits}f}"


def _params(n: int) -> str:
    return f"{n / 1e6:.1f} M"


def machine_line(machine: dict) -> str:
    v = machine.get("versions", {})
    parts = [
        f"{machine.get('cpu', '?')}",
        f"{machine.get('usable_cores', machine.get('cores', '?'))}/{machine.get('cores', '?')} cores",
        f"{machine.get('ram_gb', '?')} GB RAM",
        f"device {machine.get('device', '?')}" + (f" ({machine['gpu']})" if machine.get("gpu") else ""),
        f"Python {machine.get('python', '?')}",
    ]
    parts += [f"{k} {v[k]}" for k in ("torch", "ctranslate2", "faster-whisper", "transformers") if k in v]
    return " · ".join(parts)


def _grouped(result: BenchmarkResult, attr: str, key: str, title: str, label: str) -> Table | None:
    groups = sorted({g for s in result.systems for g in getattr(s, attr)})
    if not groups:
        return None
    headers = [label, "n"] + [h for s in result.systems for h in (f"{s.label} HITS@1", f"{s.label} MRR")]
    rows = []
    for g in groups:
        first = next(getattr(s, attr)[g] for s in result.systems if g in getattr(s, attr))
        row = [g, str(first["n"])]
        for s in result.systems:
            d = getattr(s, attr).get(g)
            row += [_f(d["hits@1"]), _f(d["mrr"])] if d else ["-", "-"]
        rows.append(row)
    return Table(key, title, headers, rows)


def tables(result: BenchmarkResult) -> list[Table]:
    """Every table of a benchmark, in display order; absent sections are left out."""
    out = []
    has_wer = any(s.wer is not None for s in result.systems)
    headers = ["system", "kind", "HITS@1", "HITS@5", "HITS@10", "MRR", "meanR"] + (["WER"] if has_wer else [])
    rows = []
    for s in result.systems:
        d = s.scores
        row = [s.label, s.kind, _f(d["hits@1"]), _f(d["hits@5"]), _f(d["hits@10"]), _f(d["mrr"]), _f(d["meanr"], 2)]
        if has_wer:
            row.append(_f(s.wer) if s.wer is not None else "-")
        rows.append(row)
    notes = ["; ".join(f"{s.label} = {s.name}" for s in result.systems) + ".",
             f"{result.n} text queries, each ranking all {result.n} recordings (one recording per distinct text)."]
    if has_wer:
        notes.append("WER (word error rate of the transcripts) is context only; retrieval is what is scored.")
    out.append(Table("retrieval", "Retrieval: text query -> recording", headers, rows, notes))

    headers = ["system", "params", "disk MB", "× real time", "p50 ms", "p95 ms", "peak RSS MB", "load s"]
    rows = []
    for s in result.systems:
        c = s.cost
        rows.append([s.label, _params(c["params"]), f"{c['disk_mb']:.1f}", f"{c['throughput_x_realtime']:.1f}",
                     f"{c['latency_ms_p50']:.0f}", f"{c['latency_ms_p95']:.0f}", f"{c['peak_rss_mb']:.0f}", f"{c['load_s']:.1f}"])
    notes = [
        "Throughput: seconds of audio per second of encoding, one utterance at a time (audio decoding not timed); "
        "latency is per utterance. Each system ran in its own process; peak RSS is that process's.",
        "Parameters and disk count every part a pipeline needs: CLASP = speech encoder + head + text encoder; "
        "ASR = whole recogniser + the same text encoder. Disk counts the files each part loads "
        "(the bundled Whisper folder holds the decoder too, which CLASP does not run).",
    ]
    notes += [f"{s.label} parameters: {s.cost['params_source']}." for s in result.systems]
    out.append(Table("cost", "Cost", headers, rows, notes))

    if result.query_langs:
        headers = ["query language"] + [h for s in result.systems for h in (f"{s.label} HITS@1", f"{s.label} MRR", f"{s.label} meanR")]
        rows = []
        for lang in result.query_langs:
            row = [lang]
            for s in result.systems:
                d = s.by_query_lang[lang]
                row += [_f(d["hits@1"]), _f(d["mrr"]), _f(d["meanr"], 2)]
            rows.append(row)
        out.append(Table("query_langs", "Queries in other languages (translations of the spoken text)", headers, rows))

    for t in (_grouped(result, "by_domain", "domain", "By domain", "domain"), _grouped(result, "by_voice", "voice", "By voice", "voice")):
        if t is not None:
            t.notes.append("Ranks come from the full candidate set, then are grouped.")
            out.append(t)

    if any(s.noise for s in result.systems):
        headers = ["noise", "SNR dB"] + [h for s in result.systems for h in (f"{s.label} HITS@1", f"{s.label} MRR")]
        rows = []
        first = next(s.noise for s in result.systems if s.noise)
        for kind in (k for k in first if isinstance(first[k], list)):
            for i, r0 in enumerate(first[kind]):
                row = [kind, "clean" if r0["snr_db"] is None else f"{r0['snr_db']:g}"]
                for s in result.systems:
                    r = s.noise[kind][i]
                    row += [_f(r["hits@1"]), _f(r["mrr"])]
                rows.append(row)
        n, seed = first["n"], first["seed"]
        out.append(Table("noise", "Noise robustness", headers, rows,
                         [f"{n} utterances (seed {seed}), each query ranking those {n} recordings."]))

    if any(s.multilingual for s in result.systems):
        headers = ["queries"] + [h for s in result.systems for h in (f"{s.label} HITS@1", f"{s.label} MRR")]
        rows = []
        first = next(s.multilingual for s in result.systems if s.multilingual)
        labels = [("native", "own language")] + ([("en", "English translation")] if "en" in first else [])
        labels += [(f"lang:{lang}", f"own language: {lang}") for lang in first["by_lang"]]
        for key, label in labels:
            row = [label]
            for s in result.systems:
                m = s.multilingual or {}
                d = m["by_lang"].get(key[5:]) if key.startswith("lang:") else m.get(key)
                row += [_f(d["hits@1"]), _f(d["mrr"])] if d else ["-", "-"]
            rows.append(row)
        out.append(Table("multilingual", "Non-English audio", headers, rows,
                         [f"{first['n']} recordings from the second manifest, each query ranking all of them."]))

    for s in result.systems:
        cal = s.calibration
        if not cal:
            continue
        thr = cal["min_score"]
        headers = ["queries", "n", "true match score p50"] + (["true matches >= min score", "nonsense best >= min score"] if thr is not None else [])
        rows = []
        for key, d in cal.items():
            if isinstance(d, dict):
                rows.append([key, str(d["n"]), _f(d["true_p50"])]
                            + ([f"{d['true_above']:.1%}", f"{d['nonsense_above']:.1%}"] if thr is not None else []))
        note = (f"Default --min-score {thr:.3f} (fitted on validation). " if thr is not None else "The model has no calibrated default --min-score. ")
        note += (f"{cal['n_nonsense']} nonsense queries (emoji, punctuation, random letters; none used in fitting); "
                 f"their best hit scores {cal['nonsense_best_p50']:.3f} at the median.")
        out.append(Table("calibration", f"Scores and the default --min-score ({s.label})", headers, rows, [note]))
    return out


# -- Markdown ------------------------------------------------------------------------------------------


def _md_table(t: Table) -> str:
    esc = [[c.replace("|", "\\|") for c in row] for row in [t.headers] + t.rows]
    lines = ["| " + " | ".join(esc[0]) + " |", "|" + "|".join("---" for _ in t.headers) + "|"]
    lines += ["| " + " | ".join(r) + " |" for r in esc[1:]]
    return "\n".join(lines)


def markdown(result: BenchmarkResult, plots: dict[str, str] | None = None) -> str:
    plots = plots or {}
    cfg = result.config
    lines = ["# CLASP benchmark: CLASP vs transcribe-then-embed", ""]
    if cfg is not None:
        lines.append(f"Manifest `{cfg.manifest}`" + (f", multilingual manifest `{cfg.multilingual}`" if cfg.multilingual else "")
                     + f"; Whisper beam size {cfg.beam_size}, {cfg.asr_reader} reader; {time.strftime('%Y-%m-%d %H:%M')}; "
                     f"{result.seconds:.0f} s in all.")
    if result.skipped:
        lines.append(f"{len(result.skipped)} utterance(s) skipped (unreadable or missing audio).")
    lines += ["", "## Machine", "", machine_line(result.machine), ""]
    where = {"retrieval": ["hits_at_k", "rank_hist"], "cost": ["speed"], "query_langs": ["query_langs"], "noise": ["snr"]}
    for t in tables(result):
        lines += [f"## {t.title}", "", _md_table(t), ""]
        lines += [f"_{n}_  " for n in t.notes]
        if t.notes:
            lines.append("")
        for key in where.get(t.key, []):
            if key in plots:
                lines += [f"![{key}]({plots[key]})", ""]
    return "\n".join(lines).rstrip() + "\n"


# -- plots -------------------------------------------------------------------------------------------------


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path: Path) -> Path:
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    _pyplot().close(fig)
    return path


def _rank_axis(ax, n: int) -> None:
    """Ranks on a log axis once there are many candidates, labelled as plain numbers."""
    if n > 20:
        from matplotlib.ticker import FuncFormatter

        ax.set_xscale("log")
        ax.xaxis.set_major_formatter(FuncFormatter(lambda x, _: f"{x:g}"))


def plot_hits_at_k(systems: Sequence[SystemResult], path: Path) -> Path:
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6, 4))
    n = max(int(s.ranks.size) for s in systems)
    k = np.arange(1, n + 1)
    for s in systems:
        ax.plot(k, [(s.ranks <= x).mean() for x in k], marker="." if n <= 30 else None, label=s.label)
    _rank_axis(ax, n)
    ax.set_xlabel("k")
    ax.set_ylabel("HITS@k")
    ax.set_ylim(0, 1.02)
    ax.set_title(f"HITS@k, {n} candidates")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return _save(fig, path)


def plot_rank_hist(systems: Sequence[SystemResult], path: Path) -> Path:
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6, 4))
    n = max(int(s.ranks.max()) for s in systems)
    edges = np.unique(np.geomspace(1, max(2, n + 1), num=min(30, n + 1)).astype(int))
    if edges.size < 2:
        edges = np.array([1, 2])
    for s in systems:
        ax.hist(s.ranks, bins=edges, histtype="step", linewidth=1.5, label=s.label)
    _rank_axis(ax, n)
    ax.set_xlabel("rank of the right recording")
    ax.set_ylabel("queries")
    ax.set_title("Rank distribution")
    ax.legend(fontsize=8)
    return _save(fig, path)


def plot_speed(systems: Sequence[SystemResult], path: Path) -> Path:
    plt = _pyplot()
    names = [s.label for s in systems]
    fig, axes = plt.subplots(1, 3, figsize=(11, 3.6))
    panels = [
        ("× real time (higher is faster)", [s.cost["throughput_x_realtime"] for s in systems]),
        ("latency p50 ms per utterance", [s.cost["latency_ms_p50"] for s in systems]),
        ("parameters (millions)", [s.cost["params"] / 1e6 for s in systems]),
    ]
    colors = [f"C{i}" for i in range(len(systems))]
    for ax, (title, values) in zip(axes, panels):
        ax.bar(range(len(names)), values, color=colors)
        ax.set_xticks(range(len(names)), [n if len(n) < 18 else n[:16] + "…" for n in names], rotation=20, fontsize=7, ha="right")
        ax.set_title(title, fontsize=9)
        for i, v in enumerate(values):
            ax.text(i, v, f"{v:.1f}", ha="center", va="bottom", fontsize=7)
    return _save(fig, path)


def plot_snr(systems: Sequence[SystemResult], path: Path) -> Path:
    plt = _pyplot()
    first = next(s.noise for s in systems if s.noise)
    kinds = [k for k in first if isinstance(first[k], list)]
    fig, axes = plt.subplots(1, len(kinds), figsize=(5 * len(kinds), 3.8), squeeze=False)
    for ax, kind in zip(axes[0], kinds):
        for s in systems:
            rows = s.noise[kind]
            ax.plot(range(len(rows)), [r["mrr"] for r in rows], marker="o", label=s.label)
        labels = ["clean" if r["snr_db"] is None else f"{r['snr_db']:g}" for r in first[kind]]
        ax.set_xticks(range(len(labels)), labels)
        ax.set_xlabel("SNR (dB)")
        ax.set_ylabel("MRR")
        ax.set_ylim(0, 1.02)
        ax.set_title(f"{kind} noise")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    return _save(fig, path)


def plot_query_langs(result: BenchmarkResult, path: Path) -> Path:
    plt = _pyplot()
    langs = result.query_langs
    fig, ax = plt.subplots(figsize=(max(5, 1.2 * len(langs) + 2), 3.8))
    width = 0.8 / len(result.systems)
    for i, s in enumerate(result.systems):
        x = np.arange(len(langs)) + i * width
        ax.bar(x, [s.by_query_lang[lang]["mrr"] for lang in langs], width, label=s.label)
    ax.set_xticks(np.arange(len(langs)) + width * (len(result.systems) - 1) / 2, langs)
    ax.set_ylabel("MRR")
    ax.set_ylim(0, 1.02)
    ax.set_title("Queries in other languages")
    ax.legend(fontsize=8)
    return _save(fig, path)


def write_report(result: BenchmarkResult, directory: str | Path) -> Path:
    """Write DIRECTORY/report.md with its PNG plots beside it; returns the report's path."""
    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    systems = result.systems
    plots = {
        "hits_at_k": plot_hits_at_k(systems, d / "hits_at_k.png").name,
        "rank_hist": plot_rank_hist(systems, d / "rank_hist.png").name,
        "speed": plot_speed(systems, d / "speed.png").name,
    }
    if any(s.noise for s in systems):
        plots["snr"] = plot_snr(systems, d / "snr.png").name
    if result.query_langs:
        plots["query_langs"] = plot_query_langs(result, d / "query_langs.png").name
    path = d / "report.md"
    path.write_text(markdown(result, plots), encoding="utf-8")
    return path
