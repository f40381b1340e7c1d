"""`clasp train`: contrastive training of the fusion head."""

from __future__ import annotations

import json
from pathlib import Path
from typing import List, Optional

import typer

from ..display import shown
from .common import DEVICE_HELP, err, friendly_errors, out


def register(app: typer.Typer) -> None:
    @app.command("train")
    @friendly_errors
    def train(
        manifest: List[Path] = typer.Option(..., "--manifest", "-m", help="Training manifest (JSONL); repeat to train on several.",
                                            exists=True, dir_okay=False),
        val: List[Path] = typer.Option(..., "--val", help="Validation manifest (repeatable); early stopping watches its MRR.",
                                       exists=True, dir_okay=False),
        out_dir: Path = typer.Option(..., "--out", "-o", help="Model directory to write (config.json + model.safetensors)."),
        config: str = typer.Option("clasp-tiny", "--config", "-c", help="Architecture to start from: a registry name or a config.json."),
        fusion: Optional[str] = typer.Option(None, help="Override fusion: concat, gating or attention."),
        pooling: Optional[str] = typer.Option(None, help="Override pooling: mean, attention or transformer."),
        norm: Optional[str] = typer.Option(None, help="Override the MLPs' normalisation: batch (the paper's) or layer."),
        frame_downsample: Optional[int] = typer.Option(None, "--frame-downsample", min=1, help="Average the speech frames over "
                                                       "this many steps before pooling (2: half the training cost)."),
        speech_encoder: Optional[str] = typer.Option(None, "--speech-encoder", help="Override the frozen speech encoder: "
                                                     "whisper-tiny.en, whisper-base, whisper-ct2:<dir> or hf:<id or dir>."),
        spectrogram: Optional[bool] = typer.Option(None, "--spectrogram/--no-spectrogram", help="Use the log-mel CNN branch."),
        loss: str = typer.Option("infonce", help="infonce (CLASP), sigmoid (SigLIP: calibrated match probabilities) "
                                 "or huber (LASP regression)."),
        learnable_temperature: bool = typer.Option(False, help="Learn the InfoNCE temperature (default fixed 0.07)."),
        epochs: int = typer.Option(40, min=1, help="Length of the learning-rate schedule, in epochs."),
        stop_after: Optional[int] = typer.Option(None, min=1, help="Stop after this many epochs (the schedule keeps --epochs)."),
        batch_size: int = typer.Option(128, min=2),
        lr: float = typer.Option(1e-3, min=0.0),
        patience: int = typer.Option(5, min=1, help="Stop after this many epochs without a better validation MRR."),
        seed: int = typer.Option(0),
        augment: bool = typer.Option(False, help="Feature-level augmentation: frame dropout, noise, mel band masking."),
        limit: Optional[int] = typer.Option(None, min=2, help="Use only the first N training utterances."),
        cache: Optional[Path] = typer.Option(None, help="Feature cache folder (default: $CLASP_CACHE or ~/.cache/clasp)."),
        resume: bool = typer.Option(True, "--resume/--no-resume", help="Continue from OUT/checkpoint when it exists."),
        calibrate: bool = typer.Option(True, "--calibrate/--no-calibrate", help="Fit match-probability scores and the "
                                       "default --min-score on the validation set after training."),
        device: str = typer.Option("auto", help=DEVICE_HELP),
        init: Optional[str] = typer.Option(None, "--init", help="Start from this trained model's weights (registry name "
                                           "or directory) and its architecture, e.g. to fine-tune the shipped model."),
        negatives: str = typer.Option("batch", help="batch (the batch's other texts) or bank (every training text at "
                                      "every step, frozen)."),
        positives: str = typer.Option("own", help="own, or translations: an utterance's translations are right answers "
                                      "too (needs --negatives bank)."),
        target: str = typer.Option("own", help="own text, or mean: the mean of the text's and its translations' embeddings."),
        cosine_weight: float = typer.Option(0.0, "--cosine-weight", min=0.0, help="Add this much of a 1 - cosine "
                                            "regression term toward the target."),
        as_json: bool = typer.Option(False, "--json", help="Print the result as JSON."),
    ) -> None:
        """Train the CLASP fusion head contrastively on a manifest.

        Frozen encoders run once; their outputs are cached on disk, so reruns and ablations
        take minutes.

        Examples:

          clasp train -m data/synth/train.jsonl --val data/synth/val.jsonl -o runs/concat-mean

          clasp train -m train.jsonl --val val.jsonl -o runs/gating --fusion gating --pooling attention

          clasp train --init clasp-base -m kokoro/train.jsonl --val kokoro/val.jsonl -o runs/ft --negatives bank
        """
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

        from ..train import TrainConfig, train as run

        cfg = TrainConfig(
            manifest=[str(m) for m in manifest], val=[str(v) for v in val], out=str(out_dir), base=config, fusion=fusion,
            pooling=pooling, norm=norm, frame_downsample=frame_downsample, speech_encoder=speech_encoder,
            use_spectrogram=spectrogram, loss=loss, learnable_temperature=learnable_temperature, epochs=epochs, stop_after=stop_after,
            batch_size=batch_size, lr=lr, patience=patience, seed=seed, augment=augment, limit=limit,
            cache=str(cache) if cache else None, resume=resume, device=device, calibrate=calibrate,
            init=init, negatives=negatives, positives=positives, target=target, cosine_weight=cosine_weight,
        )
        progress = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                            TextColumn("{task.fields[info]}"), console=err, transient=False)
        tasks: dict[str, int] = {}
        skipped: list[str] = []

        def on_event(kind: str, **d) -> None:
            if kind == "featurize_start" and d["todo"]:
                tasks["feat"] = progress.add_task("encoding audio", total=d["todo"], info="")
            elif kind == "featurize_advance" and "feat" in tasks:
                progress.advance(tasks["feat"], d["n"])
            elif kind == "skip":
                skipped.append(f"{d['id']}: {d['reason']}")
            elif kind == "resumed":
                err.print(f"resuming from epoch {d['epoch']}")
            elif kind == "train_start":
                tasks["train"] = progress.add_task("training", total=d["epochs"] * d["steps_per_epoch"], info="")
            elif kind == "step":
                progress.update(tasks["train"], advance=1, info=f"epoch {d['epoch'] + 1} loss {d['loss']:.3f}")
            elif kind == "calibrated":
                progress.console.print(_calibration_line(d))
            elif kind == "calibration_skipped":
                progress.console.print(f"[yellow]no score calibration[/]: {d['reason']}")
            elif kind == "epoch":
                mark = " [green]best[/]" if d["best"] else ""
                progress.console.print(
                    f"epoch {d['epoch']:>3}  loss {d['loss']:.4f}  val HITS@1 {d['hits@1']:.3f}  MRR {d['mrr']:.3f}  meanR {d['meanr']:.1f}{mark}"
                )

        with progress:
            result = run(cfg, on_event)
        for s in skipped[:20]:
            err.print(f"[yellow]skipped[/] {shown(s)}")
        summary = {"out": str(result.out), "best_epoch": result.best_epoch, "epochs_run": result.epochs_run,
                   "seconds": round(result.seconds, 1), "best": result.best, "skipped": len(skipped)}
        if as_json:
            out.print_json(json.dumps(summary))
        else:
            b = result.best
            out.print(f"best epoch {result.best_epoch}: val HITS@1 {b.get('hits@1', 0):.3f}  MRR {b.get('mrr', 0):.3f}  "
                      f"meanR {b.get('meanr', 0):.1f}  ->  {result.out}  ({result.seconds:.0f} s)")


    @app.command("calibrate")
    @friendly_errors
    def calibrate(
        model: Path = typer.Argument(..., help="Trained model directory (config.json + model.safetensors).", exists=True, file_okay=False),
        val: List[Path] = typer.Option(..., "--val", help="Validation manifest (repeatable); never the test split.",
                                       exists=True, dir_okay=False),
        cache: Optional[Path] = typer.Option(None, help="Feature cache folder (default: $CLASP_CACHE or ~/.cache/clasp)."),
        seed: int = typer.Option(0),
        device: str = typer.Option("auto", help=DEVICE_HELP),
        as_json: bool = typer.Option(False, "--json", help="Print what the calibration achieves on validation as JSON."),
    ) -> None:
        """Fit a trained model's match-probability scores and its default --min-score, in place.

        Scores become the probability that a passage says the query: each cosine is measured against how the same query scores on a bank of held-out speech, then mapped by a logistic fit. The default --min-score is the lowest score that nonsense queries (emoji, punctuation, random letters) stay under on validation. `clasp train` does this itself at the end.

        Examples:

          clasp calibrate runs/clasp-base --val data/synth/val.jsonl --val data/synth-ml/val.jsonl
        """
        from ..train import calibrate_on_manifests

        report = calibrate_on_manifests(model, [str(v) for v in val], cache=str(cache) if cache else None, device=device, seed=seed)
        if as_json:
            out.print_json(json.dumps(report))
        else:
            out.print(_calibration_line(report))


def _calibration_line(d: dict) -> str:
    return (f"calibrated on {d['fit_candidates']} validation recordings: default --min-score {d['threshold']:.3f}; "
            f"true matches above it {d['true_above']:.1%}, nonsense queries {d['nonsense_above']:.1%}")
