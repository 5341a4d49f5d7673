"""The viewer's routes (FastAPI): read-only pages and JSON over a `ContentStore`.

    GET /                               every content, newest first (?type= &agent= &q= &page=)
    GET /contents/<id>/                 the content's page under its header bar
    GET /contents/<id>/lineage          the artifacts behind it
    GET /contents/<id>/<path>           one of its files (?raw: the bytes as stored; ?source: as source)
    GET /api/contents, /api/contents/<id>   the same as JSON
    GET /api/health                     {"status": "ok"}

An id may be a unique prefix (6+ characters): pages redirect to the full id. Unknown
ids and paths are 404, a store that cannot be read 503; every answer carries the
headers of `safety`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import FastAPI, Request, Response
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse
from starlette.exceptions import HTTPException

import agentflows.viewer.pages as pages
from agentflows.tasks.errors import ContentNotFound, ObjectMissing, StorageError
from agentflows.tasks.runtime import open_store
from agentflows.tasks.storage import ContentStore, StoredContent
from agentflows.viewer.api import TYPES
from agentflows.viewer.api import router as api_router
from agentflows.viewer.files import file_view, highlight_css, media_type, shown_in_page
from agentflows.viewer.safety import (
    SECURITY_HEADERS,
    TOKEN_COOKIE,
    VIEWER_POLICY,
    bearer,
    content_policy,
    frame_sandbox,
    token_matches,
)

STYLESHEET = pages.TEMPLATES.parent / "static" / "viewer.css"


def create_app(
    store: ContentStore | None = None, *, token: str | None = None, prefect_ui: str | None = None
) -> FastAPI:
    """The viewer of `store` (default: the configured one), asking for `token` when given."""
    app = FastAPI(title="agentflows viewer", docs_url=None, redoc_url=None, openapi_url="/api/openapi.json")
    app.state.store = store
    app.state.prefect_ui = prefect_ui
    _guard(app, token)
    _handle_errors(app)
    app.include_router(api_router)
    _page_routes(app)
    return app


def store_of(request: Request) -> ContentStore:
    """The store the app was made for, else the configured one."""
    store: ContentStore | None = request.app.state.store
    return store if store is not None else open_store()


def html(body: str, status: int = 200) -> HTMLResponse:
    return HTMLResponse(body, status_code=status)


def _page_routes(app: FastAPI) -> None:
    app.add_api_route("/", index, methods=["GET"], response_class=HTMLResponse)
    app.add_api_route("/static/viewer.css", stylesheet, methods=["GET"])
    app.add_api_route("/contents/{content_id}", with_slash, methods=["GET"])
    app.add_api_route("/contents/{content_id}/", content_page, methods=["GET"], response_class=HTMLResponse)
    app.add_api_route("/contents/{content_id}/lineage", lineage_page, methods=["GET"], response_class=HTMLResponse)
    app.add_api_route("/contents/{content_id}/{path:path}", content_file, methods=["GET"])


def index(request: Request, type: str = "", agent: str = "", q: str = "", page: int = 1) -> HTMLResponse:
    """Every content, newest first, filtered and paged."""
    query = pages.IndexQuery(content_type=type, agent=agent, text=q.strip(), page=max(page, 1))
    store = store_of(request)
    try:
        found = store.search(type or None, agent, query.text, limit=pages.PAGE_SIZE, offset=query.offset)
    except ValueError as exc:
        return html(pages.render("error.html", status=400, message=str(exc)), 400)
    return html(pages.render("index.html", found=found, query=query, agents=store.agents(), types=TYPES))


def stylesheet() -> Response:
    return Response(STYLESHEET.read_text() + highlight_css(), media_type="text/css; charset=utf-8")


def with_slash(content_id: str) -> RedirectResponse:
    return RedirectResponse(pages.page_url(content_id), status_code=308)


def content_page(request: Request, content_id: str) -> Response:
    """The content's own page under its header bar."""
    content = store_of(request).get(content_id)
    if content.id != content_id:
        return RedirectResponse(pages.page_url(content.id), status_code=307)
    primary = content.render.get("open", "")
    manifest = None
    if content.content_type.value == "mixed" and pages.MANIFEST_FILE in content.keys:
        manifest = pages.manifest_of(store_of(request).read(content, pages.MANIFEST_FILE))
    body = _primary_body(request, content, primary) if manifest is None else None
    values = {"header": _header(request, content), "manifest": manifest, "primary": primary, **(body or {})}
    return html(pages.render("content.html", **values))


def _primary_body(request: Request, content: StoredContent, primary: str) -> dict[str, Any]:
    """How the content page shows the primary file: in a sandboxed frame, as Markdown, or not at all."""
    kind = media_type(primary, content.metadata.get("files", {})) if primary in content.keys else ""
    if kind.startswith("text/html"):
        return {"frame": pages.page_url(content.id, primary), "sandbox": frame_sandbox(_runs_scripts(content, primary))}
    if kind.startswith("text/markdown"):
        view = file_view(primary, kind, store_of(request).read(content, primary))
        return {"markdown": view.html if view else None}
    return {}


def lineage_page(request: Request, content_id: str) -> Response:
    """Plan, drafts and build behind the content, with template hashes, models, usage and attempts."""
    store = store_of(request)
    content = store.get(content_id)
    if content.id != content_id:
        return RedirectResponse(pages.page_url(content.id, "lineage"), status_code=307)
    return html(
        pages.render(
            "lineage.html",
            header=_header(request, content, "lineage"),
            totals=pages.lineage_totals(content),
            names=pages.lineage_names(content),
            versions=store.versions(content),
        )
    )


def content_file(request: Request, content_id: str, path: str) -> Response:
    """One file of the content: a viewer page for text, else the bytes as stored, sandboxed."""
    content = store_of(request).get(content_id)
    if path not in content.keys:
        raise HTTPException(404, f"content {content.id!r} has no file {path!r}")
    if content.id != content_id:
        return RedirectResponse(pages.page_url(content.id, path), status_code=307)
    data = store_of(request).read(content, path)
    kind = media_type(path, content.metadata.get("files", {}))
    wants = request.query_params
    view = None
    if "raw" not in wants and (shown_in_page(kind) or "source" in wants):
        view = file_view(path, kind, data)
    if view is None:
        policy = content_policy(data, run_scripts=_runs_scripts(content, path))
        return Response(data, media_type=kind, headers={"Content-Security-Policy": policy})
    framed = request.headers.get("sec-fetch-dest") == "iframe"
    values = {"header": _header(request, content, path), "path": path, "view": view, "framed": framed}
    return html(pages.render("file.html", **values))


def _runs_scripts(content: StoredContent, path: str) -> bool:
    """Only the builder-made primary page of interactive content may run its own inline scripts."""
    return content.render.get("viewer") == "sandboxed-iframe" and path == content.render.get("open")


def _header(request: Request, content: StoredContent, current: str = "page") -> pages.Header:
    return pages.header(content, request.app.state.prefect_ui, current)


# -- token and headers ----------------------------------------------------------------------

Handler = Callable[[Request], Awaitable[Response]]


def _guard(app: FastAPI, token: str | None) -> None:
    """Every answer gets the security headers; with a token, only requests that carry it get through."""

    @app.middleware("http")
    async def guarded(request: Request, call_next: Handler) -> Response:
        if token is not None and request.url.path != "/api/health":
            given = request.query_params.get("token")
            if token_matches(given, token):
                response: Response = RedirectResponse(str(request.url.remove_query_params("token")), 303)
                response.set_cookie(TOKEN_COOKIE, token, httponly=True, samesite="lax")
                return _secured(response)
            presented = bearer(request.headers.get("authorization")) or request.cookies.get(TOKEN_COOKIE)
            if not token_matches(presented, token):
                return _secured(_error(request, 401, "this viewer needs its token: open it with ?token=…"))
        return _secured(await call_next(request))


def _secured(response: Response) -> Response:
    response.headers.setdefault("Content-Security-Policy", VIEWER_POLICY)
    for name, value in SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)
    return response


def _handle_errors(app: FastAPI) -> None:
    async def not_found(request: Request, exc: Exception) -> Response:
        return _error(request, 404, str(exc))

    async def unavailable(request: Request, exc: Exception) -> Response:
        return _error(request, 503, str(exc))

    async def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        return _error(request, exc.status_code, str(exc.detail))

    app.add_exception_handler(ContentNotFound, not_found)
    app.add_exception_handler(ObjectMissing, not_found)
    app.add_exception_handler(StorageError, unavailable)
    app.add_exception_handler(HTTPException, http_error)


def _error(request: Request, status: int, message: str) -> Response:
    """An error as JSON for the API, else as a page: one sentence, no traceback."""
    if request.url.path.startswith("/api/"):
        return JSONResponse({"detail": message}, status_code=status)
    return html(pages.render("error.html", status=status, message=message), status)
