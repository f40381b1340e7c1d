"""The command line: its commands, fast start-up, and errors as one line with an exit code."""

from __future__ import annotations

import json
import subprocess
import sys

from typer.testing import CliRunner

from clasp_cli.cli import app
from clasp_cli.defaults import DEFAULT_MODEL

runner = CliRunner()


def test_help_lists_every_command():
    r = runner.invoke(app, ["--help"])
    assert r.exit_code == 0
    for cmd in ("index", "search", "serve", "benchmark", "train", "dataset", "models"):
        assert cmd in r.output


def test_import_and_help_do_not_load_torch_or_transformers():
    code = (
        "import sys, clasp_cli, clasp_cli.cli\n"
        "from typer.testing import CliRunner\n"
        "CliRunner().invoke(clasp_cli.cli.app, ['--help'])\n"
        "heavy = [m for m in ('torch', 'transformers', 'ctranslate2', 'sentence_transformers') if m in sys.modules]\n"
        "assert not heavy, heavy\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_python_dash_m_works():
    r = subprocess.run([sys.executable, "-m", "clasp_cli", "--help"], capture_output=True, text=True)
    assert r.returncode == 0 and "index" in r.stdout


def test_models_json_reports_weights_presence():
    r = runner.invoke(app, ["models", "--json"])
    assert r.exit_code == 0
    rows = json.loads(r.output)
    default = next(x for x in rows if x["default"])
    assert default["name"] == DEFAULT_MODEL and isinstance(default["weights"], bool)
    assert default["text_encoder"] == "use-multilingual" and default["dim"] == 512
    assert not next(x for x in rows if x["name"] == "clasp-tiny")["default"]


def test_models_table_fits_80_columns_without_cutting_names():
    r = CliRunner().invoke(app, ["models"], env={"COLUMNS": "80"}, terminal_width=80)
    assert r.exit_code == 0 and "…" not in r.output and DEFAULT_MODEL + " *" in r.output


def test_search_with_no_query_asks_for_one_before_looking_for_an_index(tmp_path):
    r = runner.invoke(app, ["search", "--index", str(tmp_path / "none")])
    assert r.exit_code == 2 and "give a text query" in r.output and "not both" not in r.output


def test_flags_show_no_type_in_help():
    r = runner.invoke(app, ["search", "--help"])
    assert r.exit_code == 0 and "<bool>" not in r.output
