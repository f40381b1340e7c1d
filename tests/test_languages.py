"""One language per recording, a switch where the speaker really changes language, and the
language as something to see and to filter by: real speech (espeak-ng), the shipped reader."""

from __future__ import annotations

import json

import numpy as np
import pytest
import soundfile as sf
from typer.testing import CliRunner

from clasp_cli.cli import app
from clasp_cli.indexer import index_paths
from clasp_cli.store import Store

runner = CliRunner()
ENGLISH = [
    "The committee approved the budget for the new library on Tuesday.",
    "Construction will start next spring and the building should open in two years.",
    "The mayor said the old library will become a museum for the history of the town.",
    "Readers asked for longer opening hours, and the council agreed to stay open until nine.",
]
SPANISH = [
    "El comité aprobó el martes el presupuesto para la nueva biblioteca.",
    "La construcción empezará la próxima primavera y el edificio abrirá dentro de dos años.",
    "El alcalde dijo que la vieja biblioteca será un museo de la historia de la ciudad.",
    "Los lectores pidieron un horario más largo y el consejo aceptó abrir hasta las nueve.",
]


def _joined(say, folder, parts: list[tuple[str, str]], pause: float = 0.7, switch_pause: float = 2.5):
    """One recording of (voice, sentence) parts; returns its path and the second the language changes."""
    waves, sr, changed_at, t, last = [], 22050, None, 0.0, None
    for n, (voice, text) in enumerate(parts):
        x, sr = sf.read(say(text, folder / f"part{n}.wav", voice), dtype="float32")
        if last is not None and voice != last:
            waves.append(np.zeros(int(switch_pause * sr), np.float32))
            t += switch_pause
            changed_at = t
        elif last is not None:
            waves.append(np.zeros(int(pause * sr), np.float32))
            t += pause
        waves.append(x)
        t += x.size / sr
        last = voice
    for f in folder.glob("part*.wav"):
        f.unlink()
    return np.concatenate(waves), sr, changed_at


@pytest.fixture(scope="module")
def recordings(tmp_path_factory, say):
    d = tmp_path_factory.mktemp("langs")
    (d / "rec").mkdir()
    two, sr, changed_at = _joined(say, d, [("en", s) for s in ENGLISH] + [("es", s) for s in SPANISH])
    sf.write(d / "rec" / "interview.wav", two, sr)
    es, sr, _ = _joined(say, d, [("es", s) for s in SPANISH])
    sf.write(d / "rec" / "noticias.wav", es, sr)
    return d / "rec", changed_at


@pytest.fixture(scope="module")
def indexed(tmp_path_factory, recordings, shipped_model):
    d = tmp_path_factory.mktemp("langs-index") / "idx"
    index_paths([recordings[0]], d, model=shipped_model, transcribe=True)
    return d


def test_a_recording_that_changes_language_is_read_in_each_language_where_it_is_spoken(indexed, recordings):
    root, changed_at = recordings
    with Store.open(indexed) as st:
        rec = st.file(str(root / "interview.wav"))
        rows = st.db.execute("SELECT p.start, p.end, t.language FROM passages p JOIN transcripts t ON t.passage_id=p.id "
                             "WHERE p.file_id=?", (rec.id,)).fetchall()
    own = [("en" if (a + b) / 2 < changed_at else "es") == lang for a, b, lang in rows]
    assert len(rows) >= 6 and sum(own) >= 0.8 * len(rows), rows


def test_each_recording_has_one_language_shown_by_info(indexed):
    r = runner.invoke(app, ["info", "--index", str(indexed), "--json"])
    assert r.exit_code == 0, r.output
    langs = json.loads(r.stdout)["languages"]
    assert sum(langs.values()) == 2 and langs.get("es", 0) >= 1


def test_search_language_keeps_only_what_was_read_in_it(indexed):
    r = runner.invoke(app, ["search", "la nueva biblioteca", "--index", str(indexed), "--language", "es", "--json", "--device", "cpu"])
    assert r.exit_code == 0, r.output
    results = json.loads(r.stdout)["results"]
    assert results and all(x["language"] == "es" for x in results)
    none = runner.invoke(app, ["search", "la nueva biblioteca", "--index", str(indexed), "--language", "fr", "--device", "cpu"])
    assert none.exit_code == 1 and "no results" in none.output


def test_index_language_forces_the_language_every_recording_is_read_in(tmp_path, recordings, shipped_model):
    index_paths([recordings[0] / "noticias.wav"], tmp_path / "idx", model=shipped_model, transcribe=True, language="en")
    with Store.open(tmp_path / "idx") as st:
        (rec,) = st.files()
        langs = {r[0] for r in st.db.execute("SELECT language FROM transcripts")}
    assert rec.language == "en" and langs == {"en"}


def test_an_unknown_language_code_is_a_usage_error(tmp_path, recordings):
    r = runner.invoke(app, ["index", str(recordings[0]), "--index", str(tmp_path / "idx"), "--language", "klingon",
                            "--device", "cpu"])
    assert r.exit_code == 2 and "not a language Whisper reads" in r.output
