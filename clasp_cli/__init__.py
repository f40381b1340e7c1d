"""clasp: search audio archives by what was said, in any supported language.

Importing the package is cheap: torch, transformers and the encoders load only when a model runs.
"""

__version__ = "0.1.0"
