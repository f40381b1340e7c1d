"""A plain install is light: the core package reaches no torch, and what needs an extra says so."""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib
from importlib import metadata
from pathlib import Path

import pytest

from clasp_cli import extras
from clasp_cli.errors import MissingDependencyError

ROOT = Path(__file__).resolve().parents[1]
HEAVY = {"torch", "transformers", "sentence-transformers", "silero-vad", "matplotlib", "tensorflow", "ray", "pyarrow"}


def _name(requirement: str) -> str:
    return re.split(r"[\s<>=!~;\[(]", requirement.strip(), maxsplit=1)[0].lower().replace("_", "-")


def _closure(names: list[str]) -> set[str]:
    """Every distribution the installed core dependencies require, markers for extras left out."""
    seen: set[str] = set()
    todo = list(names)
    while todo:
        n = todo.pop()
        if n in seen:
            continue
        seen.add(n)
        try:
            reqs = metadata.requires(n) or []
        except metadata.PackageNotFoundError:
            continue
        todo += [_name(r) for r in reqs if "extra ==" not in r.replace("extra==", "extra ==")]
    return seen


def test_the_core_dependencies_pull_no_torch_or_cuda():
    core = [_name(r) for r in tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]]
    reached = _closure(core)
    assert not reached & HEAVY, reached & HEAVY
    assert not [n for n in reached if n.startswith("nvidia")]


def test_a_missing_extra_names_the_pip_command(monkeypatch):
    monkeypatch.setitem(extras.EXTRAS, "serve", ("clasp_no_such_module",))
    with pytest.raises(MissingDependencyError, match=r"pip install 'clasp-cli\[serve\]'") as e:
        extras.require("serve", "clasp serve")
    assert e.value.exit_code == 5


def test_clasp_serve_without_its_extra_is_one_line_and_exit_5(tmp_path):
    code = (
        "import sys\n"
        "sys.modules['starlette'] = None; sys.modules['uvicorn'] = None\n"
        "from clasp_cli.cli import main\n"
        f"sys.argv = ['clasp', 'serve', '--index', {str(tmp_path)!r}]\n"
        "main()\n"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert r.returncode == 5, r.stderr
    assert "clasp-cli[serve]" in r.stderr and "Traceback" not in r.stderr


def test_clasp_index_engine_ray_without_its_extra_is_one_line_and_exit_5(tmp_path):
    code = (
        "import sys\n"
        "sys.modules['ray'] = None\n"
        "from clasp_cli.cli import main\n"
        f"sys.argv = ['clasp', 'index', {str(ROOT / 'examples' / 'archive' / 'radio')!r}, '--index', {str(tmp_path / 'i')!r}, "
        "'--engine', 'ray']\n"
        "main()\n"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert r.returncode == 5, r.stderr
    assert "clasp-cli[ray]" in r.stderr and "Traceback" not in r.stderr
    assert not (tmp_path / "i").exists()  # refused before anything was written
