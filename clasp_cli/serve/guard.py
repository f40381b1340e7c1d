"""Who `clasp serve` answers: requests for its own host name, from its own page or from no page.

A browser sends every page's requests to 127.0.0.1 if the page asks, so any site the user
visits could drive the API (and make it transcribe). Two headers tell such requests apart:
`Origin` (sent with cross-origin requests and every non-GET one) names the page's origin, and
`Sec-Fetch-Site` (sent by current browsers) says whether the page is this server's own. A
request that shows another site is refused with 403; curl and scripts send neither header and
are answered. The Host check stops DNS rebinding: a foreign name resolved to loopback.
"""

from __future__ import annotations

import json
from typing import Sequence
from urllib.parse import urlsplit

# Sec-Fetch-Site values of requests this server's own page (or the user typing a URL) makes.
OWN_SITE = ("same-origin", "none")


def host_name(host_header: str) -> str:
    """The name in a Host header, without its port ("[::1]:8765" -> "::1")."""
    h = host_header.strip().lower()
    if h.startswith("["):
        return h[1 : h.find("]")] if "]" in h else h
    return h.rsplit(":", 1)[0] if h.count(":") == 1 else h


def refusal(headers: dict[str, str], allowed_hosts: Sequence[str] | None) -> tuple[int, str] | None:
    """(status, reason) when the request must not be answered, else None. allowed_hosts None: any host."""
    host = headers.get("host", "")
    if allowed_hosts is not None and host_name(host) not in allowed_hosts:
        return 400, f"this server answers only to {', '.join(allowed_hosts)}; the request was for host {host!r}"
    site = headers.get("sec-fetch-site")
    if site is not None and site not in OWN_SITE:
        return 403, f"requests from other sites are refused (Sec-Fetch-Site: {site})"
    origin = headers.get("origin")
    if origin is not None:
        u = urlsplit(origin)
        if origin == "null" or not u.netloc or u.netloc.lower() != host.strip().lower():
            return 403, f"requests from other sites are refused (Origin: {origin})"
    return None


class Guard:
    """ASGI middleware applying `refusal` to every HTTP request; refusals are JSON like every API error."""

    def __init__(self, app, allowed_hosts: Sequence[str] | None = None) -> None:
        self.app = app
        self.allowed_hosts = None if allowed_hosts is None else tuple(h.lower() for h in allowed_hosts)

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] == "http":
            headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
            refused = refusal(headers, self.allowed_hosts)
            if refused is not None:
                status, message = refused
                body = json.dumps({"error": message, "status": status}).encode()
                await send({"type": "http.response.start", "status": status,
                            "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
                await send({"type": "http.response.body", "body": body})
                return
        await self.app(scope, receive, send)
