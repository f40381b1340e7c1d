"""The package's layout: no module takes another's private names, and imports never go round in a circle."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "clasp_cli"


def _modules() -> dict[str, Path]:
    out = {}
    for p in PACKAGE.rglob("*.py"):
        name = ".".join(p.relative_to(PACKAGE.parent).with_suffix("").parts)
        out[name.removesuffix(".__init__")] = p
    return out


def _imports(mods: dict[str, Path]) -> tuple[dict[str, set[str]], list[str]]:
    """Every clasp_cli import of each module (at the top, inside functions, or for type checking
    alike: a lazy import still ties two modules together), and the private names taken."""
    edges: dict[str, set[str]] = {m: set() for m in mods}
    private = []
    for m, path in mods.items():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom):
                if node.level:
                    base = m.split(".") if path.name == "__init__.py" else m.split(".")[:-1]
                    base = base[: len(base) - node.level + 1]
                    target = ".".join(base + ([node.module] if node.module else []))
                else:
                    target = node.module or ""
                if not target.startswith("clasp_cli"):
                    continue
                for alias in node.names:
                    whole = f"{target}.{alias.name}"
                    edges[m].add(whole if whole in mods else target)
                    if alias.name.startswith("_") and not alias.name.startswith("__"):
                        private.append(f"{m} imports {whole}")
            elif isinstance(node, ast.Import):
                edges[m].update(a.name for a in node.names if a.name in mods)
    return {m: {t for t in ts if t in mods and t != m} for m, ts in edges.items()}, private


def test_no_module_imports_another_modules_private_name():
    assert _imports(_modules())[1] == []


def test_there_is_no_import_circle():
    edges = _imports(_modules())[0]
    # A package's __init__ may import its own modules; a module importing its package is the
    # usual way down to a sibling, not a circle of two modules.
    edges = {m: {t for t in ts if not (m.startswith(t + ".") and t in edges)} for m, ts in edges.items()}
    seen: dict[str, int] = {}
    circles = []

    def visit(m: str, path: list[str]) -> None:
        seen[m] = 1
        for t in sorted(edges[m]):
            if seen.get(t) == 1:
                circles.append(path[path.index(t):] + [t])
            elif t not in seen:
                visit(t, path + [t])
        seen[m] = 2

    for m in sorted(edges):
        if m not in seen:
            visit(m, [m])
    assert circles == []
