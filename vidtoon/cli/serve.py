"""`vidtoon serve`: the local web page (docs/web.md). Starlette and uvicorn come
with the web extra and are imported only here, when the command runs."""

from __future__ import annotations

import argparse
import importlib.util
import webbrowser
from pathlib import Path

from rich.console import Console
from rich.markup import escape

from ..errors import BackendUnavailable, SettingsError
from ..progress import printable
from .status import ExitStatus

DESCRIPTION = (
    "Serve a local web page: upload a video, try styles on a frame, cartoonize it with a progress bar, "
    "watch the browser's camera cartoonized live, and read batch reports. Bound to this machine only "
    "unless --host says otherwise. Uploads live in a temporary folder removed on exit."
)


def add(commands: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    serve = commands.add_parser("serve", parents=[common], help="a local web page to cartoonize videos and the webcam",
                                description=DESCRIPTION)
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1: this machine only)")
    serve.add_argument("--port", type=int, default=7860, help="port (default 7860; 0: any free port)")
    serve.add_argument("--open", action="store_true", help="open the page in the default browser")
    serve.add_argument("--out-dir", type=Path, metavar="DIR",
                       help="keep the cartoons made from the page here (default: the temporary folder, removed on exit)")
    serve.add_argument("--batch-dir", type=Path, metavar="DIR",
                       help="a `vidtoon batch` OUT_DIR whose report.html the page shows, read-only")
    serve.add_argument("--max-upload", default="2G", metavar="SIZE", help="largest upload, e.g. 500M (default 2G)")
    serve.set_defaults(run=run)


def run(args: argparse.Namespace, console: Console) -> int:
    if importlib.util.find_spec("starlette") is None or importlib.util.find_spec("uvicorn") is None:
        raise BackendUnavailable("vidtoon serve needs the web extra; install the web extra: pip install -e '.[web]'")
    from ..web.server import bind, serve
    from ..web.store import Store, parse_bytes

    limit = parse_bytes(args.max_upload)
    if not 0 <= args.port <= 65535:
        raise SettingsError(f"--port must be between 0 and 65535, got {args.port}")
    for option, folder in (("--out-dir", args.out_dir), ("--batch-dir", args.batch_dir)):
        if folder is not None and folder.exists() and not folder.is_dir():
            raise SettingsError(f"{option} {printable(str(folder))}: is not a folder")
    if args.batch_dir is not None and not (args.batch_dir / "report.html").is_file():
        raise SettingsError(f"--batch-dir {printable(str(args.batch_dir))}: holds no report.html "
                            "(vidtoon batch writes it with --report-html)")
    try:
        sock = bind(args.host, args.port)
    except OSError as e:
        raise SettingsError(f"cannot listen on {printable(args.host)}:{args.port} ({e.strerror or e})") from None
    store = Store(args.out_dir, args.batch_dir, limit)

    def ready(url: str) -> None:
        where = "this machine only" if args.host in ("127.0.0.1", "localhost", "::1") else f"reachable on {args.host}"
        console.print(f"serving on {escape(url)} ({where}); Ctrl-C stops and removes the uploads")
        if args.open:
            webbrowser.open(url)

    try:
        serve(sock, store, ready)
    finally:
        sock.close()
        store.close()
    return ExitStatus.SUCCESS
