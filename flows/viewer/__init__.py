"""The content viewer: every stored content in a browser, on the embedded store and on PostgreSQL + S3.

    app.py      the routes: index, content page, lineage, files (FastAPI)
    api.py      the same as JSON under /api
    pages.py    the HTML pages (Jinja templates in templates/, styles in static/)
    files.py    how one file is shown: table, Markdown, chart, highlighted source
    safety.py   what keeps model-written files from acting on the viewer: CSP, sandbox, token
    server.py   `agentflows view`: checks, binding, uvicorn

`create_app(store)` gives the ASGI app; `serve(host, port)` runs it. Read-only: it
answers GET only and writes nothing.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from agentflows.viewer.app import create_app
    from agentflows.viewer.server import serve

__all__ = ["create_app", "serve"]


def __getattr__(name: str) -> Any:
    if name == "create_app":
        from agentflows.viewer.app import create_app

        return create_app
    if name == "serve":
        from agentflows.viewer.server import serve

        return serve
    raise AttributeError(f"module 'agentflows.viewer' has no attribute {name!r}")
