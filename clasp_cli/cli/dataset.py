"""`clasp dataset synth`, `clasp dataset import`, `clasp dataset augment` and `clasp dataset passages`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import List, Optional

import typer

from ..display import shown
from .common import err, friendly_errors, out

app = typer.Typer(
    help="Build synthetic corpora and import real ones into manifests.",
    no_args_is_help=True,
    rich_markup_mode="rich",
)

SYNTH_HELP = """Synthesise a speech corpus with offline voices (espeak-ng, flite, festival, piper, kokoro; kokoro only when named).

Writes train/val/test manifests (plus all.jsonl and test_multilingual.jsonl) and 16 kHz mono FLAC audio into --out. Test sentences and test voices never occur in train or val.

Interrupt at any time: a rerun with the same options keeps the finished audio and makes the rest.

[bold]Examples[/]

  clasp dataset synth --list-voices

  clasp dataset synth --out corpus --n 20000

  clasp dataset synth --out tiny --n 12 --voices espeak,flite --jobs 1

  clasp dataset synth --out mine --text notes.txt --text talks.txt --noise babble --snr 5-20 --json
"""


def _print_json(obj) -> None:
    # Plain text on stdout: never wrapped or coloured, so `--json | jq` always parses.
    typer.echo(json.dumps(obj, indent=2, ensure_ascii=False))


def _parse_snr(value: str) -> tuple[float, float]:
    from ..errors import UsageError

    v = value.strip().replace(":", "-")
    try:
        if "-" in v[1:]:
            i = v.index("-", 1)
            lo, hi = float(v[:i]), float(v[i + 1 :])
        else:
            lo = hi = float(v)
    except ValueError:
        raise UsageError(f"--snr: expected a number of dB or a range like 5-30 (got {value!r})") from None
    if lo > hi:
        raise UsageError(f"--snr: range {value!r} is reversed")
    return lo, hi


def _augment_config(noise: str, noise_prob: float, snr: str, reverb: float, codec: float, phone: float, speed: float):
    """The augmentation chain `synth` and `augment` take from the same flags."""
    from ..data.augment import AugmentConfig
    from ..errors import UsageError

    if noise not in ("white", "babble", "none"):
        raise UsageError(f"--noise must be white, babble or none (got {noise!r})")
    return AugmentConfig(noise=noise, noise_prob=noise_prob, snr_db=_parse_snr(snr), reverb_prob=reverb, codec_prob=codec,
                         phone_prob=phone, speed_prob=speed)


def _voice_table(as_json: bool) -> None:
    from rich.table import Table

    from ..data.voices import voice_table

    rows = voice_table()
    if as_json:
        _print_json(rows)
        return
    t = Table(title="Offline voices", title_justify="left")
    t.add_column("voice", no_wrap=True)
    for col in ("engine", "lang", "gender", "accent", "available"):
        t.add_column(col, overflow="fold")
    for r in rows:
        ok = "[green]yes[/]" if r["available"] else f"[red]no[/] [dim]{r['reason']}[/]"
        t.add_row(r["id"], r["engine"], r["lang"], r["gender"], r["accent"], ok)
    out.print(t)
    n_ok = sum(r["available"] for r in rows)
    out.print(f"{n_ok} of {len(rows)} voices available.")


def _print_summary(summary) -> None:
    from rich.table import Table

    t = Table(title=f"Synthetic corpus in {summary.out}", title_justify="left")
    t.add_column("manifest")
    t.add_column("utterances", justify="right")
    t.add_column("hours", justify="right")
    for g, n in summary.by_split.items():
        t.add_row(f"{g}.jsonl", str(n), f"{summary.hours_by_split.get(g, 0.0):.2f}")
    t.add_row("[bold]total[/]", f"[bold]{summary.written}[/]", f"[bold]{summary.hours:.2f}[/]")
    out.print(t)
    out.print(
        f"{summary.synthesized} synthesised, {summary.resumed} kept from an earlier run, "
        f"{sum(summary.skipped.values())} skipped; {len(summary.voices)} voices "
        f"({', '.join(f'{e} {n}' for e, n in sorted(summary.by_engine.items()))}); "
        f"audio: 16 kHz mono {summary.audio_format.upper()}; {summary.seconds_elapsed:.1f} s."
    )
    out.print(f"held-out test voices: {', '.join(summary.test_voices) or '-'}")
    if summary.skipped:
        s = Table(title="Skipped", title_justify="left")
        s.add_column("reason")
        s.add_column("count", justify="right")
        for reason, n in summary.skipped.items():
            s.add_row(reason, str(n))
        out.print(s)


def _parse_chunk(value: str) -> tuple[int, int]:
    from ..errors import UsageError

    k, sep, n = value.partition("/")
    try:
        kn = (int(k), int(n)) if sep else None
    except ValueError:
        kn = None
    if kn is None or not 1 <= kn[0] <= kn[1]:
        raise UsageError(f"--chunk must be K/N with 1 <= K <= N, e.g. 1/4 (got {value!r})")
    return kn


def _excluded_texts(files: List[Path]) -> frozenset[str]:
    """Every sentence of the files, normalised as the planner compares them: a manifest's texts and
    translations, or a text file's non-empty lines."""
    import json

    from ..errors import UsageError

    keys: set[str] = set()
    for f in files:
        try:
            lines = f.read_text(encoding="utf-8").splitlines()
        except (OSError, UnicodeDecodeError) as e:
            raise UsageError(f"--exclude {f}: cannot read it ({getattr(e, 'strerror', None) or e})") from None
        for line in (x.strip() for x in lines):
            if not line:
                continue
            texts = [line]
            if f.suffix == ".jsonl":
                try:
                    row = json.loads(line)
                except json.JSONDecodeError:
                    raise UsageError(f"--exclude {f}: not a JSONL manifest (a line is not JSON)") from None
                texts = [row.get("text") or "", *(row.get("translations") or {}).values()]
            keys.update(" ".join(t.casefold().split()) for t in texts if isinstance(t, str) and t.strip())
    return frozenset(keys)


@app.command("synth", help=SYNTH_HELP, no_args_is_help=False)
@friendly_errors
def synth(
    out_dir: Optional[Path] = typer.Option(None, "--out", "-o", metavar="DIR", help="Folder to write the corpus into (created if missing).",
                                           file_okay=False),
    text: Optional[List[Path]] = typer.Option(None, "--text", metavar="FILE", help="Text file of sentences (repeatable). "
                                              "Default: the built-in English corpus and its 200 held-out test sentences."),
    n: Optional[int] = typer.Option(None, "--n", help="Number of English utterances (train+val+test). "
                                    "Default: every sentence once."),
    voices: str = typer.Option("all", "--voices", help="'all', or a comma list of voice ids and engine names "
                               "(espeak-ng, flite, festival, piper, kokoro; kokoro only when named)."),
    test_voices: Optional[str] = typer.Option(None, "--test-voices", help="Comma list of English voices to hold out "
                                              "for test. Default: a fixed set, one or more per engine."),
    jobs: Optional[int] = typer.Option(None, "--jobs", "-j", help="Worker processes. Default: all cores."),
    seed: int = typer.Option(0, "--seed", help="Seed for every random choice; same seed, same corpus."),
    snr: str = typer.Option("5-30", "--snr", help="Signal-to-noise ratio in dB for added noise: one value or a range."),
    noise: str = typer.Option("white", "--noise", help="Noise to add: white, babble (other voices talking) or none."),
    noise_prob: float = typer.Option(0.5, "--noise-prob", help="Share of utterances that get noise."),
    reverb: float = typer.Option(0.3, "--reverb", help="Share of utterances that get room reverberation."),
    codec: float = typer.Option(0.2, "--codec", help="Share of utterances passed through mp3/opus at 16-24 kbps."),
    phone: float = typer.Option(0.0, "--phone", help="Share of utterances passed through a telephone line "
                                "(8 kHz, 300-3400 Hz, mu-law)."),
    speed: float = typer.Option(0.0, "--speed", help="Share of utterances played 0.9x or 1.1x as fast."),
    exclude: Optional[List[Path]] = typer.Option(None, "--exclude", metavar="FILE", help="Manifest (JSONL) or text file "
                                                 "whose sentences (and their translations) never go into train or val "
                                                 "(repeatable): another corpus's or a benchmark's test text."),
    chunk: Optional[str] = typer.Option(None, "--chunk", metavar="K/N", help="Make only the first K/N of every split "
                                        "and write manifests of that much; run 1/N, 2/N, ... N/N to build a long "
                                        "corpus in sittings, each keeping the audio of the last."),
    audio_format: str = typer.Option("flac", "--format", help="Audio files: flac (lossless, ~120 KB per "
                                     "utterance) or opus (OGG/Opus, ~5x smaller, lossy)."),
    langs: Optional[str] = typer.Option(None, "--langs", help="Build a non-English corpus instead: comma list of "
                                        "languages (or 'all': de,es,fr,it,nl,pl,pt,ru,tr). Text from installed gettext "
                                        "catalogues (with English originals) and fortunes-<lang>; one voice per language "
                                        "held out for test; test sentences all have an English original."),
    multilingual: Optional[bool] = typer.Option(None, "--multilingual/--no-multilingual",
                                                help="Also write test_multilingual.jsonl (de/fr/es/zh speech). "
                                                "Default: on with the built-in corpus, off with --text."),
    splits: Optional[str] = typer.Option(None, "--splits", help="Build only these splits of the same corpus (comma list of "
                                         "train, val, test, test_multilingual), e.g. the held-out ones for a benchmark; "
                                         "a later full build keeps them."),
    list_voices: bool = typer.Option(False, "--list-voices", help="List the voices and whether they are installed, then exit."),
    as_json: bool = typer.Option(False, "--json", help="Print the summary as JSON on stdout."),
) -> None:
    from ..errors import UsageError

    if list_voices:
        _voice_table(as_json)
        return
    if out_dir is None:
        raise UsageError("--out is required (the folder to write the corpus into)")
    if audio_format not in ("flac", "opus"):
        raise UsageError(f"--format must be flac or opus (got {audio_format!r})")
    aug = _augment_config(noise, noise_prob, snr, reverb, codec, phone, speed)
    if n is not None and n < 1:
        raise UsageError(f"--n must be at least 1 (got {n})")
    if jobs is not None and jobs < 1:
        raise UsageError(f"--jobs must be at least 1 (got {jobs})")

    from ..data.synth import SynthConfig, build_synthetic_corpus
    from ..data.voices import resolve_voices

    resolve_voices(voices)  # fail on a typo before loading the corpus

    sentences = test_sentences = None
    ml = None
    if text:
        from ..data.corpus import load_text_files

        sentences = load_text_files(text)
        if not sentences:
            raise UsageError("the --text files hold no usable sentences")
    if langs:
        if text:
            raise UsageError("--langs builds its own text; leave out --text")
        from ..data.foreign import KOKORO_LANGS, TEST_VOICES, TRAIN_LANGS, foreign_corpus

        chosen = list(TRAIN_LANGS) if langs.strip() == "all" else [x.strip() for x in langs.split(",") if x.strip()]
        unknown = sorted(set(chosen) - set(TRAIN_LANGS) - set(KOKORO_LANGS))
        if unknown:
            raise UsageError(f"--langs: no corpus for {', '.join(unknown)} "
                             f"(choose from {', '.join(TRAIN_LANGS + KOKORO_LANGS)})")
        sentences, test_pool = foreign_corpus(chosen)
        # Only sentences with an English original are tested, so English queries can be scored too.
        test_sentences = [s for s in test_pool if s.translations.get("en")]
        if voices == "all":
            voices = ",".join(v.id for lang in chosen for v in resolve_voices("all") if v.lang == lang)
        if not test_voices:
            test_voices = ",".join(TEST_VOICES[lang] for lang in chosen)
        multilingual = False
    if multilingual is False:
        ml = {}
    elif multilingual and text:
        from ..data.corpus import non_english_sentences

        ml = non_english_sentences()
    cfg = SynthConfig(
        out=out_dir, sentences=sentences, test_sentences=test_sentences, multilingual=ml, voices=voices,
        test_voices=[v.strip() for v in test_voices.split(",") if v.strip()] if test_voices else None,
        n_utterances=n, seed=seed, jobs=jobs, augment=aug, audio_format=audio_format,
        splits=tuple(x.strip() for x in splits.split(",") if x.strip()) if splits else None,
        chunk=_parse_chunk(chunk) if chunk else None,
        exclude=_excluded_texts(exclude or []),
        # A non-English corpus spreads its test split over many languages: 8% keeps each one measurable.
        **({"test_fraction": 0.08} if langs else {}),
    )

    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

    with Progress(
        TextColumn("[progress.description]{task.description}"), BarColumn(), MofNCompleteColumn(),
        TextColumn("{task.fields[counts]}"), TimeElapsedColumn(), TextColumn("eta"), TimeRemainingColumn(),
        console=err, transient=False,
    ) as bar:
        task = bar.add_task("planning", total=None, counts="")
        labels = {"planning": "planning", "babble": "babble bank", "synth": "synthesising",
                  "manifests": "manifests", "done": "done"}

        def progress(p) -> None:
            counts = f"new {p.written} kept {p.resumed} skipped {p.skipped}" if p.total else ""
            bar.update(task, description=labels.get(p.stage, p.stage), completed=p.done,
                       total=p.total or None, counts=counts)

        summary = build_synthetic_corpus(cfg, progress=progress)

    if as_json:
        _print_json(summary.to_dict())
    else:
        _print_summary(summary)


IMPORT_HELP = """Import a real speech corpus into a manifest (one JSON object per line).

[bold]Examples[/]

  clasp dataset import librispeech ~/data/LibriSpeech/test-clean --out libri-test.jsonl

  clasp dataset import commonvoice ~/data/cv-corpus/de --out cv-de.jsonl --json

  apt-get download asterisk-core-sounds-fr asterisk-core-sounds-fr-wav && for f in *.deb; do dpkg-deb -x $f asterisk; done
  clasp dataset import asterisk asterisk --lang fr --out asterisk-fr.jsonl   # real voices, with translations

  apt-get download fillets-ng-data fillets-ng-data-cs && for f in fillets*.deb; do dpkg-deb -x $f fillets; done
  clasp dataset import fillets fillets --out fillets.jsonl   # Czech voice acting: speakers, levels, 11 languages

  clasp dataset import festvox-ru /usr/share/festival/voices/russian --out festvox-ru.jsonl   # read Russian, one voice
"""


@app.command("import", help=IMPORT_HELP)
@friendly_errors
def import_(
    fmt: str = typer.Argument(..., metavar="FORMAT", help="jsonl, csv, librispeech, commonvoice, fleurs, speechbrown, "
                              "asterisk (Debian's asterisk-core-sounds-LANG packages unpacked with dpkg-deb -x) or fillets "
                              "(Debian's fillets-ng-data and fillets-ng-data-cs unpacked: Czech voice acting; its reserved "
                              "levels are never read, the others split into train and val by level) or festvox-ru (Debian's "
                              "festvox-ru voice: 620 read Russian sentences, stress marks and commas stripped)."),
    src: Path = typer.Argument(..., metavar="SRC", help="The corpus folder or file."),
    manifest: Path = typer.Option(..., "--out", "-o", help="Manifest file to write (.jsonl)."),
    no_duration: bool = typer.Option(False, "--no-duration", help="Do not open each audio file to read its duration (faster)."),
    lang: Optional[str] = typer.Option(None, "--lang", help="Keep only these languages (comma list, e.g. en,fr)."),
    split: Optional[str] = typer.Option(None, "--split", help="Keep only this split (train, val, ...) of a corpus "
                                        "that names them."),
    as_json: bool = typer.Option(False, "--json", help="Print the summary as JSON on stdout."),
) -> None:
    from collections import Counter

    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    from ..data.importers import FORMATS, import_corpus
    from ..errors import UsageError

    if fmt not in FORMATS:
        raise UsageError(f"unknown corpus format {fmt!r}; choose one of: {', '.join(FORMATS)}")
    with Progress(SpinnerColumn(), TextColumn("importing: {task.completed} items examined"), TimeElapsedColumn(),
                  console=err, transient=True) as bar:
        task = bar.add_task("import", total=None)
        summary = import_corpus(fmt, src, manifest, with_duration=not no_duration,
                                progress=lambda k: bar.update(task, completed=k),
                                langs=[x.strip() for x in lang.split(",") if x.strip()] if lang else None, split=split)
    reasons = Counter(reason for _, reason in summary.skipped)
    if as_json:
        _print_json({
            "out": str(summary.out), "written": summary.written, "hours": round(summary.hours, 4),
            "skipped": len(summary.skipped), "skipped_by_reason": dict(reasons.most_common()),
            "skipped_examples": [list(s) for s in summary.skipped[:20]],
        })
        return
    out.print(f"wrote {summary.written} utterances ({summary.hours:.2f} h) to {summary.out}")
    if summary.skipped:
        out.print(f"skipped {len(summary.skipped)}:")
        for reason, k in reasons.most_common(10):
            out.print(f"  {k:>6}  {shown(reason)}")


AUGMENT_HELP = """Write augmented copies of a manifest's clips: a telephone line, other people talking, a room, a codec, another speaking rate.

A few hours of recorded voices then count several times in training. The copies (16 kHz FLAC)
and their manifest, named like the source's, go into --out; train on both manifests. Each
copy's augmentation is drawn from --seed, the copy number and the clip, so a rerun keeps the
audio an earlier run finished.

[bold]Examples[/]

  clasp dataset augment data/fillets/train.jsonl --out data/fillets-aug --copies 2

  clasp dataset augment real.jsonl --out real-phone --copies 1 --phone 1 --noise none --reverb 0 --codec 0 --json
"""


@app.command("augment", help=AUGMENT_HELP)
@friendly_errors
def augment(
    manifest: Path = typer.Argument(..., metavar="MANIFEST", help="The manifest (JSONL) whose clips to copy."),
    out_dir: Path = typer.Option(..., "--out", "-o", metavar="DIR", help="Folder for the copies and their manifest.",
                                 file_okay=False),
    copies: int = typer.Option(2, "--copies", help="Augmented copies of every clip."),
    seed: int = typer.Option(0, "--seed", help="Seed for every random choice; same seed, same copies."),
    snr: str = typer.Option("5-30", "--snr", help="Signal-to-noise ratio in dB for added noise: one value or a range."),
    noise: str = typer.Option("babble", "--noise", help="Noise to add: babble (other clips of the manifest talking), "
                              "white or none."),
    noise_prob: float = typer.Option(0.5, "--noise-prob", help="Share of copies that get noise."),
    reverb: float = typer.Option(0.3, "--reverb", help="Share of copies that get room reverberation."),
    codec: float = typer.Option(0.2, "--codec", help="Share of copies passed through mp3/opus at 16-24 kbps."),
    phone: float = typer.Option(0.3, "--phone", help="Share of copies passed through a telephone line "
                                "(8 kHz, 300-3400 Hz, mu-law)."),
    speed: float = typer.Option(0.2, "--speed", help="Share of copies played 0.9x or 1.1x as fast."),
    as_json: bool = typer.Option(False, "--json", help="Print the summary as JSON on stdout."),
) -> None:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

    from ..data.copies import CopiesConfig, make_copies

    aug = _augment_config(noise, noise_prob, snr, reverb, codec, phone, speed)
    with Progress(TextColumn("copying"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), TextColumn("eta"),
                  TimeRemainingColumn(), console=err, transient=True) as bar:
        task = bar.add_task("copies", total=None)
        summary = make_copies(CopiesConfig(manifest=manifest, out=out_dir, copies=copies, seed=seed, augment=aug),
                              progress=lambda k, n: bar.update(task, completed=k, total=n))
    if as_json:
        _print_json(summary.to_dict())
        return
    out.print(f"wrote {summary.written} copies ({summary.hours:.2f} h) to {summary.manifest}: "
              f"{summary.made} made, {summary.kept} kept from an earlier run")
    for clip_id, reason in summary.skipped[:10]:
        out.print(f"  skipped {shown(clip_id)}: {shown(reason)}")
    if len(summary.skipped) > 10:
        out.print(f"  ... and {len(summary.skipped) - 10} more skipped")


PASSAGES_HELP = """Join 2-4 utterances of one voice into passage samples (3-15 s), like the windows an index embeds.

The target text is the joined text. Utterances are joined only within the given manifest
(one split) and one voice. Reruns keep finished audio.

[bold]Examples[/]

  clasp dataset passages -m data/synth/train.jsonl --out data/passages-train --n 4000
"""


@app.command("passages", help=PASSAGES_HELP)
@friendly_errors
def passages(
    manifest: Path = typer.Option(..., "--manifest", "-m", help="Manifest whose utterances are joined.", exists=True, dir_okay=False),
    out_dir: Path = typer.Option(..., "--out", "-o", help="Folder for passages.jsonl and the audio.", file_okay=False),
    n: int = typer.Option(2000, "--n", min=1, help="Number of passages."),
    seed: int = typer.Option(0, "--seed"),
    as_json: bool = typer.Option(False, "--json", help="Print the summary as JSON on stdout."),
) -> None:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    from ..data.joined import JoinConfig, build_passages
    from ..manifest import read_manifest

    with Progress(TextColumn("joining"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(), console=err) as bar:
        task = bar.add_task("join", total=None)
        target, skipped = build_passages(JoinConfig(manifest=manifest, out=out_dir, n=n, seed=seed),
                                         progress=lambda k, total: bar.update(task, completed=k, total=total))
    items = read_manifest(target)
    summary = {"out": str(target), "written": len(items), "hours": round(sum(u.duration for u in items) / 3600, 3),
               "skipped": len(skipped), "skipped_examples": sorted(set(skipped))[:10]}
    if as_json:
        _print_json(summary)
    else:
        out.print(f"wrote {summary['written']} passages ({summary['hours']:.2f} h) to {target}")
        if skipped:
            err.print(f"[yellow]skipped {len(skipped)}[/] passages with an unreadable part, e.g. {shown(skipped[0])}")
