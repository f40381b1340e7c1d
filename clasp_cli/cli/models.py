"""`clasp models`: the registry and whether each model's weights are present."""

from __future__ import annotations

import json

import typer
from rich.table import Table

from .common import friendly_errors, out


def register(app: typer.Typer) -> None:
    @app.command("models")
    @friendly_errors
    def models(
        as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table."),
    ) -> None:
        """List the named models and whether their trained weights are present.

        Examples:

          clasp models

          clasp models --json | jq '.[] | select(.weights)'
        """
        from ..encoders.e5 import E5_ID, available, unavailable_reason
        from ..encoders.languages import covered
        from ..fusion import FusionWeights
        from ..registry import DEFAULT_MODEL, list_models

        e5_here = available() is not None
        rows = []
        for e in list_models():
            h = e.config.head
            # The text encoders a search with this model uses: its own, and e5 where its fusion knows e5.
            encoders = [e.config.text_encoder] + ([E5_ID] if FusionWeights.from_config(e.config.fusion).e5 else [])
            rows.append({
                "name": e.name,
                "default": e.name == DEFAULT_MODEL,
                "weights": e.has_weights,
                "speech_encoder": e.config.speech_encoder,
                "text_encoder": e.config.text_encoder,
                "text_encoders": [{"id": t, "languages": list(covered(t)), "available": t != E5_ID or e5_here}
                                  for t in encoders],
                "fusion": h.fusion,
                "pooling": h.pooling,
                "spectrogram": h.use_spectrogram,
                "dim": h.out_dim,
                "min_score": e.config.calibration.get("min_score"),
                "path": str(e.path),
            })
        if as_json:
            out.print_json(json.dumps(rows))
            return
        # Six columns fit 80: the head's make-up (fusion, pooling, spectrogram) is in --json.
        t = Table(title="clasp models")
        t.add_column("name", no_wrap=True)
        t.add_column("weights", no_wrap=True)
        t.add_column("speech encoder", no_wrap=True)
        t.add_column("text encoder", no_wrap=True)
        t.add_column("dim", justify="right")
        t.add_column("min score", justify="right")
        for r in rows:
            t.add_row(
                r["name"] + (" *" if r["default"] else ""),
                "[green]present[/]" if r["weights"] else "[yellow]not trained[/]",
                r["speech_encoder"], " + ".join(t["id"] for t in r["text_encoders"]), str(r["dim"]),
                "-" if r["min_score"] is None else f"{r['min_score']:.2f}",
            )
        t.caption = "* the default model"
        out.print(t)
        seen = {x["id"]: x for r in rows for x in r["text_encoders"]}
        for enc in seen.values():
            if enc["languages"]:
                out.print(f"{enc['id']}: {len(enc['languages'])} languages ({' '.join(enc['languages'])})", soft_wrap=True,
                          highlight=False)
        if E5_ID in seen and not e5_here:
            out.print(f"[yellow]note:[/] {unavailable_reason()}; searching with USE's 16 languages only", soft_wrap=True)
