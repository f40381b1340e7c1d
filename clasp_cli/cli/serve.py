"""`clasp serve`."""

from __future__ import annotations

import ipaddress
import socket
from pathlib import Path
from typing import Optional

import typer

from ..display import shown
from .common import DEVICE_HELP, err, friendly_errors
from .common_options import IndexOption, index_dir


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # a host name: it may resolve anywhere


def listen(host: str, port: int) -> socket.socket:
    """A listening socket, bound before the server starts so the printed URL carries the real port (also for --port 0)."""
    from ..errors import UsageError

    try:
        family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
        # proto must say TCP: asyncio sets TCP_NODELAY only on such sockets, and without it
        # Nagle's algorithm and delayed ACKs add 40 ms to every response.
        sock = socket.socket(family, kind, proto)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(128)
    except OSError as e:
        raise UsageError(f"cannot listen on {host}:{port}: {e.strerror or e}") from None
    return sock


def register(app: typer.Typer) -> None:
    @app.command("serve")
    @friendly_errors
    def serve(
        index: Optional[Path] = IndexOption,
        host: str = typer.Option("127.0.0.1", help="Address to listen on. Anything but loopback lets other machines in."),
        port: int = typer.Option(8765, min=0, max=65535, help="Port (0: any free one; the URL printed says which)."),
        device: str = typer.Option("auto", help=DEVICE_HELP),
        max_top_k: int = typer.Option(100, min=1, help="The most results one request may ask for (top_k)."),
        max_rerank: int = typer.Option(50, min=0, help="The most windows one request may have transcribed (rerank); 0 turns reranking off."),
    ) -> None:
        """Serve an index read-only: a search page, a JSON API and the audio of each hit.

        The model and index stay open, so a query answers in milliseconds.

        An index updated by `clasp index` meanwhile is picked up without a restart.

        Examples:

          clasp serve              # then open http://127.0.0.1:8765/

          clasp serve --index ~/archive-index --port 9000

          curl 'http://127.0.0.1:8765/api/search?q=rain+at+the+weekend&top_k=3'

          curl 'http://127.0.0.1:8765/api/search?q=regn+och+h%C3%A5rd+vind+i+helgen'   # Swedish (e5)

          curl -H 'X-Clasp-Request: 1' 'http://127.0.0.1:8765/api/search?q=rain&rerank=10'

        Pages of other sites cannot use it: requests whose Origin or Sec-Fetch-Site header
        shows another site get 403, and a search that transcribes (rerank) needs the
        X-Clasp-Request header, which no other page can make a browser send.
        """
        from ..extras import require

        require("serve", "clasp serve")
        import uvicorn

        from ..serve import LiveIndex, create_app
        from ..serve.app import LOOPBACK_HOSTS, ServeLimits

        loopback = is_loopback(host)
        if not loopback:
            err.print(f"[yellow]warning:[/] listening on {host}: anyone who can reach this machine can search "
                      "the index and play its recordings (there is no login)")
        limits = ServeLimits(max_top_k=max_top_k, max_rerank=max_rerank)
        live = LiveIndex(index_dir(index), device=device, heavy_queue=limits.heavy_queue)
        try:
            sock = listen(host, port)
        except BaseException:
            live.close()
            raise
        bound_host, bound_port = sock.getsockname()[:2]
        at = f"[{bound_host}]" if ":" in bound_host else bound_host
        err.print(f"clasp serve: {shown(live.dir)} at http://{at}:{bound_port}/  (Ctrl+C stops)", soft_wrap=True)
        # On loopback, answer loopback's names and the address asked for (127.0.0.2 is loopback too).
        app = create_app(live, allowed_hosts=(*LOOPBACK_HOSTS, host.strip("[]")) if loopback else None, limits=limits)
        config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="on")
        uvicorn.Server(config).run(sockets=[sock])
