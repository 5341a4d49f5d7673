"""`agentflows view`: the viewer on an address of its own, served by uvicorn.

Before anything is served: a bind beyond loopback without `AGENTFLOWS_VIEWER_TOKEN`
is refused, the content store is opened (a bad setting is one line), and the port
is bound here, so that a port in use is one clear `ViewerError` rather than a
server log. Ctrl-C stops it.
"""

from __future__ import annotations

import errno
import os
import socket
import sys
from collections.abc import Mapping

import uvicorn

from agentflows.errors import ViewerError
from agentflows.tasks.runtime import current_runtime
from agentflows.tasks.settings import VIEWER_TOKEN_VARIABLE
from agentflows.viewer.app import create_app
from agentflows.viewer.safety import is_loopback

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 4300


def serve(host: str = DEFAULT_HOST, port: int = DEFAULT_PORT, echo: bool = True) -> None:
    """Serve the configured content store at `host:port` until interrupted."""
    settings = current_runtime().settings
    token = settings.viewer_token.get_secret_value() if settings.viewer_token else None
    if token is None and not is_loopback(host):
        raise ViewerError(
            f"--host {host!r} is reachable from other machines; set {VIEWER_TOKEN_VARIABLE} to a secret "
            "that every request must carry, or listen on 127.0.0.1"
        )
    store = current_runtime().store()
    app = create_app(store, token=token, prefect_ui=prefect_ui_url())
    listening = bind(host, port)
    if echo:
        where = current_runtime().store_settings().describe_database()
        print(f"viewer on {url_of(host, port)} (contents of {where}); Ctrl-C stops it", file=sys.stderr, flush=True)
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off"))
    try:
        server.run(sockets=[listening])
    except KeyboardInterrupt:
        pass
    finally:
        listening.close()


def bind(host: str, port: int) -> socket.socket:
    """A listening socket on `host:port`; `ViewerError` in one sentence when the address cannot be had."""
    try:
        family = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0][0]
    except socket.gaierror as exc:
        raise ViewerError(f"--host {host!r} is not an address of this machine ({exc.strerror})") from None
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
        sock.listen(128)
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EADDRINUSE:
            raise ViewerError(f"port {port} on {host} is in use; stop what listens there or pick --port") from None
        raise ViewerError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    return sock


def url_of(host: str, port: int) -> str:
    """The URL of the viewer on `host:port` (IPv6 addresses in brackets)."""
    shown = f"[{host}]" if ":" in host else host
    return f"http://{shown}:{port}"


def prefect_ui_url(environ: Mapping[str, str] | None = None) -> str | None:
    """The Prefect UI that flow runs link to: `PREFECT_UI_URL`, else beside `PREFECT_API_URL`, else the profile's.

    The variables are read first because importing Prefect's settings costs seconds of start-up.
    """
    env = os.environ if environ is None else environ
    if ui := env.get("PREFECT_UI_URL", "").strip():
        return ui.rstrip("/")
    if api := env.get("PREFECT_API_URL", "").strip():
        return api.rstrip("/").removesuffix("/api")
    from prefect.settings import get_current_settings

    found: str | None = get_current_settings().ui_url
    return found
