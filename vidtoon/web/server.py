"""Run the app under uvicorn on a socket bound here first, so that the URL printed
is the one that answers (also with --port 0: any free port)."""

from __future__ import annotations

import contextlib
import signal
import socket
from collections.abc import Callable, Iterator

import uvicorn
from uvicorn.server import HANDLED_SIGNALS

from .app import create_app
from .store import Store


class _Server(uvicorn.Server):
    """uvicorn's server, but a Ctrl-C, SIGTERM or SIGHUP that stopped it is raised again only
    after its event loop has ended, so that vidtoon's main() handles it as for every
    command (one line, exit 130/143) instead of the event loop printing a traceback."""

    stopped_by: int | None = None

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        wanted = [*HANDLED_SIGNALS]
        if hasattr(signal, "SIGHUP") and signal.getsignal(signal.SIGHUP) is not signal.SIG_IGN:  # nohup: keep ignoring
            wanted.append(signal.SIGHUP)  # a closed terminal: shut down as for Ctrl-C
        originals = {sig: signal.signal(sig, self.handle_exit) for sig in wanted}
        try:
            yield
        finally:
            for sig, handler in originals.items():
                signal.signal(sig, handler)

    def handle_exit(self, sig: int, frame: object) -> None:
        self.stopped_by = self.stopped_by or sig
        super().handle_exit(sig, frame)


def bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(64)
    return sock


def url_of(sock: socket.socket) -> str:
    host, port = sock.getsockname()[:2]
    return f"http://[{host}]:{port}/" if ":" in host else f"http://{host}:{port}/"


def serve(sock: socket.socket, store: Store, ready: Callable[[str], None]) -> None:
    """Serve until Ctrl-C or SIGTERM; `ready(url)` runs once the socket listens."""
    config = uvicorn.Config(create_app(store), log_level="warning", lifespan="on", ws="none")
    server = _Server(config)
    ready(url_of(sock))
    server.run(sockets=[sock])
    if server.stopped_by is not None:
        signal.raise_signal(server.stopped_by)  # main(): "interrupted; no output was left behind"
