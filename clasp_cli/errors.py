"""Errors a user can cause. The library raises these; the CLI prints one line and exits.

Programming errors are not wrapped: they still raise with a traceback.
"""

from __future__ import annotations

from pathlib import Path


class ClaspError(Exception):
    """Base class for every error the user can cause and fix."""

    exit_code = 1


class AudioError(ClaspError):
    """A file could not be read as audio. Names the file and the reason."""

    exit_code = 3

    def __init__(self, path: str | Path, reason: str) -> None:
        self.path = str(path)
        self.reason = reason
        super().__init__(f"{self.path}: {reason}")


class ModelError(ClaspError):
    """A model could not be found, resolved or loaded."""

    exit_code = 4


class PickleRefusedError(ModelError):
    """A weight file is a pickle, which could run arbitrary code when loaded."""


class MissingDependencyError(ClaspError):
    """An optional package or system program is needed for this feature."""

    exit_code = 5


class ManifestError(ClaspError):
    """A manifest (or corpus source) is malformed."""

    exit_code = 6


class UsageError(ClaspError):
    """Invalid combination of options or arguments."""

    exit_code = 2


class ClusterError(ClaspError):
    """`--engine ray`: the cluster could not be reached, or the run on it failed (finished files are kept)."""

    exit_code = 8


class PartialAudioWarning(UserWarning):
    """A file decoded only up to some point (a truncated download): what came before is usable."""

    def __init__(self, path: str | Path, seconds: float, detail: str) -> None:
        self.path = str(path)
        self.seconds = seconds
        self.reason = f"decoding stopped at {seconds:.1f} s ({detail}); only the audio before it is used"
        super().__init__(f"{self.path}: {self.reason}")
