"""`make demo`: index examples/archive with the shipped model and search it in five languages.

Uses the same Python API as the CLI (clasp_cli.indexer / clasp_cli.search); the index goes to a
temporary folder so the demo never touches your own.
"""

from __future__ import annotations

import json
import tempfile
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

from clasp_cli.indexer import index_paths
from clasp_cli.registry import load_model
from clasp_cli.search import Searcher

ARCHIVE = Path(__file__).parent / "archive"
# Questions in five languages, each with the recording that answers it (tests/test_fusion.py checks them all).
QUESTIONS = json.loads((Path(__file__).parent / "questions.json").read_text(encoding="utf-8"))


def main() -> None:
    console = Console()
    model = load_model()
    with tempfile.TemporaryDirectory() as tmp:
        t = time.perf_counter()
        # As `clasp index` does by default: CLASP vectors and transcripts, from one encoder pass.
        s = index_paths([ARCHIVE], Path(tmp) / "index", model=model, transcribe=None)
        console.print(f"indexed {s.added} recordings ({s.audio_seconds:.0f} s of audio, {s.passages} passages, "
                      f"transcribed) in {time.perf_counter() - t:.1f} s")
        right = 0
        with Searcher(Path(tmp) / "index", model=model) as searcher:
            for q in QUESTIONS:
                res = searcher.search(q["query"], top_k=2, weak_level=True)
                top = res.results[0] if res.results else None
                ok = top is not None and top.path.endswith(q["answer"])
                right += ok
                table = Table(title=f"[{q['lang']}] {q['query']}  ({'right' if ok else 'wrong'}: {q['answer']})",
                              title_justify="left")
                for col in ("#", "score", "recording", "time", "what was said"):
                    table.add_column(col, overflow="fold" if col == "what was said" else "ellipsis")
                for r in res.results:
                    weak = r.score < res.auto_min_score
                    table.add_row(str(r.rank), f"{r.score:.3f}" + (" weak" if weak else ""),
                                  str(Path(r.path).relative_to(ARCHIVE)), f"{r.start:.1f}-{r.end:.1f} s", r.text or "")
                console.print(table)
            level = searcher.noise_level()
        console.print(f"{right} of {len(QUESTIONS)} questions found the right recording first.")
        console.print(f"score: the fused match probability (README, 'What the score means'). Queries that mean "
                      f"nothing reach {level:.4f} on this archive at most 19 times in 20; a hit below that is marked weak.")

if __name__ == "__main__":
    main()
