"""`clasp serve`: one index, read-only, over HTTP: a search page, a JSON API and each hit's audio.

app.py holds the routes, live.py the open index and model, clips.py the audio cutting, and
static/ the page (plain HTML, CSS and JavaScript; no build step, nothing fetched from elsewhere).
"""

from __future__ import annotations

from .app import create_app
from .live import LiveIndex

__all__ = ["create_app", "LiveIndex"]
