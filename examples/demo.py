"""`make demo`: index examples/archive with the shipped model and search it in three languages.

Uses the same Python API as the CLI (clasp_cli.indexer / clasp_cli.search); the index goes to a
temporary folder so the demo never touches your own.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

from clasp_cli.indexer import index_paths
from clasp_cli.registry import load_model
from clasp_cli.search import search

ARCHIVE = Path(__file__).parent / "archive"
QUERIES = [
    ("en", "how are stars born"),
    ("en", "what the council decided about the library budget"),
    ("de", "Wie viele Stunden Schlaf brauchen Erwachsene?"),
    ("de", "Regen und starker Wind am Wochenende"),
    ("fr", "une recette de soupe à la tomate"),
    ("es", "el partido de fútbol terminó en empate"),
]


def main() -> None:
    console = Console()
    model = load_model()
    with tempfile.TemporaryDirectory() as tmp:
        t = time.perf_counter()
        s = index_paths([ARCHIVE], Path(tmp) / "index", model=model)
        console.print(f"indexed {s.added} recordings ({s.audio_seconds:.0f} s of audio, {s.passages} passages) "
                      f"in {time.perf_counter() - t:.1f} s")
        for lang, q in QUERIES:
            res = search(q, Path(tmp) / "index", top_k=3, model=model)
            table = Table(title=f"[{lang}] {q}", title_justify="left")
            for col in ("#", "score", "recording", "time"):
                table.add_column(col)
            for r in res.results:
                table.add_row(str(r.rank), f"{r.score:.3f}", str(Path(r.path).relative_to(ARCHIVE)), f"{r.start:.1f}-{r.end:.1f} s")
            console.print(table)


if __name__ == "__main__":
    main()
