"""The routes of `clasp serve`. Searching and index figures come from the same library calls as
the CLI's `--json` output (clasp_cli.api); this module only maps them onto HTTP.

    GET /                         the search page (static/)
    GET /api/search?q=&top_k=&mode=&rerank=  `clasp search --json`, each result with an "audio_url"
    GET /api/info                 `clasp info --json`
    GET /passages/{id}/audio      the passage, cut from its recording (WAV)
    GET /passages/{id}/recording  the whole recording, with HTTP Range so players can seek

Requests from other sites' pages are refused (guard.py), `top_k` and `rerank` are capped
(ServeLimits), and reranked searches run beside plain ones, never in front of them (live.py).
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from ..api import info_json, search_json
from ..errors import AudioError, ClaspError, UsageError
from ..search import Result, score
from ..store import Hit
from . import clips
from .guard import Guard
from .live import Busy, LiveIndex

STATIC = Path(__file__).parent / "static"

# /api/search's parameters: each is a `clasp search` option, read with the parser given and
# passed to Searcher.search under the keyword given. A new CLI option (a search mode, a
# reranker) becomes an API parameter by adding its row here; anything not listed gets a 400.
SEARCH_PARAMS: dict[str, tuple[str, Callable[[str], Any]]] = {
    "q": ("query", str),
    "top_k": ("top_k", int),
    "min_score": ("min_score", score),
    "path": ("path_glob", str),
    "mode": ("mode", str),
    "rerank": ("rerank", int),
    "language": ("language", str),
    "speaker": ("speaker", str),
}

# The header a request that makes the server transcribe (rerank) must carry; see api_search.
EXPENSIVE_HEADER = "X-Clasp-Request"

# SQLite integers are 64-bit; a larger id in a URL is simply not a passage.
MAX_ID = 2**63 - 1


@dataclass(frozen=True)
class ServeLimits:
    """What one request may ask for (`clasp serve --max-top-k/--max-rerank`). Reranking
    transcribes each window it reads (about 0.1 s of CPU per window with whisper-base), so its
    cap bounds the work any request can cause; heavy_queue bounds how many run or wait at once."""

    max_top_k: int = 100
    max_rerank: int = 50
    heavy_queue: int = 2


def api_message(message: str) -> str:
    """A library message as the API's: it names parameters (top_k), not CLI flags (--top-k)."""
    for name in SEARCH_PARAMS:
        message = message.replace(f"--{name.replace('_', '-')}", name)
    return message.replace("--audio FILE", "q")


def error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message, "status": status}, status_code=status)


def search_options(request: Request, limits: ServeLimits | None = None) -> dict[str, Any]:
    """The query string as Searcher.search keywords; a UsageError names what is wrong."""
    params = request.query_params
    unknown = sorted(set(params) - set(SEARCH_PARAMS))
    if unknown:
        raise UsageError(f"unsupported parameter {', '.join(unknown)}; /api/search takes {', '.join(SEARCH_PARAMS)}")
    options: dict[str, Any] = {}
    for name, value in params.items():
        keyword, parse = SEARCH_PARAMS[name]
        try:
            options[keyword] = parse(value)
        except ValueError:
            raise UsageError(f"{name}={value!r} is not a valid {parse.__name__}") from None
    if "query" not in options:
        raise UsageError("missing q: /api/search?q=what+was+said")
    if limits is not None:
        for keyword, most, flag in (("top_k", limits.max_top_k, "--max-top-k"), ("rerank", limits.max_rerank, "--max-rerank")):
            if options.get(keyword, 0) > most:
                raise UsageError(f"{keyword} is at most {most} on this server (clasp serve {flag})")
    return options


# A server on loopback answers only to loopback names: otherwise any web page the user opens
# could rebind its own domain to 127.0.0.1 and read the archive through the browser.
LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1", "[::1]")


def create_app(live: LiveIndex, allowed_hosts: Sequence[str] | None = None,
               limits: ServeLimits = ServeLimits()) -> Starlette:
    """The ASGI app over one open index; `live` is closed when the app shuts down.

    allowed_hosts: the host names to answer (loopback's and the one served on, when bound to
    loopback); None answers any.
    """

    async def page(request: Request) -> Response:
        return FileResponse(STATIC / "index.html", media_type="text/html; charset=utf-8")

    async def api_search(request: Request) -> Response:
        options = search_options(request, limits)
        query = options.pop("query")
        if options.get("rerank", 0) > 0 and request.headers.get(EXPENSIVE_HEADER) is None:
            # A page on another site can make a browser send a plain GET (an <img>, say) with no
            # Origin or Sec-Fetch-Site in older browsers, but never a custom header without a
            # CORS preflight, which this server does not answer: so work that transcribes asks for one.
            raise UsageError(f"rerank transcribes, so it needs the header {EXPENSIVE_HEADER}: 1 "
                             f"(curl -H '{EXPENSIVE_HEADER}: 1' ...)")

        def audio_url(result: Result, resp) -> dict:
            # "weak": below the mode's `--min-score auto` level, where nonsense queries' best hits
            # lie; the page draws a line there rather than hiding the rest.
            weak = resp.auto_min_score is not None and result.score < resp.auto_min_score
            return {"audio_url": str(request.url_for("passage_audio", passage_id=result.passage_id)), "weak": weak}

        payload = await live.call(lambda s: search_json(s, query, per_result=audio_url, weak_level=True, **options),
                                  heavy=options.get("rerank", 0) > 0)
        return JSONResponse(payload)

    async def api_info(request: Request) -> Response:
        return JSONResponse(await live.call(lambda s: info_json(live.dir)))

    async def api_speakers(request: Request) -> Response:
        """`clasp speakers --json`, each with the URL of its sample's audio."""
        from ..speakers.index import list_speakers

        def rows(s) -> list[dict]:
            return [{**sp.to_json(), **({"sample_url": str(request.url_for("passage_audio", passage_id=sp.sample_passage))}
                                        if sp.sample_passage is not None else {})} for sp in list_speakers(s.store)]

        return JSONResponse(await live.call(rows))

    async def indexed_passage(request: Request) -> tuple[Hit, str]:
        """The passage and the name to open its recording by (its real bytes when not UTF-8)."""
        pid = request.path_params["passage_id"]
        found = await live.call(lambda s: (s.store.passage(pid), s.store.recording_path(pid))) if pid <= MAX_ID else (None, None)
        hit, path = found
        if hit is None:
            raise HTTPException(404, f"no passage {pid} in this index")
        if not Path(path).is_file():
            raise HTTPException(404, f"passage {pid}'s recording is gone from disk: {hit.path}")
        return hit, path

    async def passage_audio(request: Request) -> Response:
        hit, path = await indexed_passage(request)
        samples, rate = await run_in_threadpool(clips.cut, path, hit.start, hit.end)
        body = await run_in_threadpool(clips.wav_bytes, samples, rate)
        return Response(body, media_type="audio/wav")

    async def passage_recording(request: Request) -> Response:
        hit, path = await indexed_passage(request)
        # FileResponse answers Range requests (206 and 416) itself.
        return FileResponse(path, media_type=clips.media_type(path))

    async def http_error(request: Request, exc: HTTPException) -> Response:
        return error(exc.status_code, str(exc.detail))

    async def clasp_error(request: Request, exc: ClaspError) -> Response:
        # Bad parameters are the client's (400), an unreadable recording is as good as gone (404), and
        # too much expensive work already waiting is 503, and anything else (an index damaged or
        # replaced under the server) conflicts with the request (409).
        status = 404 if isinstance(exc, AudioError) else 400 if isinstance(exc, UsageError) else 503 if isinstance(exc, Busy) else 409
        return error(status, api_message(str(exc)))

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette):
        try:
            yield
        finally:
            live.close()

    routes = [
        Route("/", page),
        Route("/api/search", api_search),
        Route("/api/info", api_info),
        Route("/api/speakers", api_speakers),
        Route("/passages/{passage_id:int}/audio", passage_audio, name="passage_audio"),
        Route("/passages/{passage_id:int}/recording", passage_recording, name="passage_recording"),
        Mount("/static", StaticFiles(directory=STATIC), name="static"),
    ]
    return Starlette(routes=routes, lifespan=lifespan,
                     middleware=[Middleware(Guard, allowed_hosts=allowed_hosts)],
                     exception_handlers={HTTPException: http_error, ClaspError: clasp_error})
