"""clasp: search audio archives by what was said, in any supported language.

Importing the package is cheap: torch, transformers and the encoders load only when a model runs.

    import clasp_cli
    model = clasp_cli.load_model()
    clasp_cli.index_paths(["recordings/"], "my-index", model=model)
    from clasp_cli.api import search   # `clasp_cli.search` is the module of that name
"""

from __future__ import annotations

import importlib

__version__ = "0.1.0"

_EXPORTS = {
    "load_model": "clasp_cli.registry",
    "create_model": "clasp_cli.registry",
    "list_models": "clasp_cli.registry",
    "index_paths": "clasp_cli.indexer",
    "load_audio": "clasp_cli.audio",
    "read_manifest": "clasp_cli.manifest",
    "ClaspError": "clasp_cli.errors",
}
__all__ = list(_EXPORTS)


def __getattr__(name: str):
    # Lazy: `import clasp_cli` must not pull in numpy-heavy or torch-heavy modules.
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'clasp_cli' has no attribute {name!r}")
