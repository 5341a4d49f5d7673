"""The viewer's JSON: `/api/contents` (a page of the index) and `/api/contents/<id>` (one content).

    GET /api/contents?type=&agent=&q=&limit=&offset=
        {"total": 12, "limit": 25, "offset": 0, "items": [summary, …]}
    GET /api/contents/<id or unique prefix>
        the stored content (files, metadata, render hints, parameters, lineage) plus `links`

A summary has id, title, content_type, format, agent, agent_version, created_at,
size, offline, flow_run_id, files (paths) and `links` (viewer paths of its page,
lineage and JSON).
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse

from agentflows.tasks.artifacts import ContentType
from agentflows.tasks.runtime import open_store
from agentflows.tasks.storage import ContentStore, StoredContent
from agentflows.viewer.pages import iso

TYPES = [t.value for t in ContentType]
router = APIRouter(prefix="/api")


def _store(request: Request) -> ContentStore:
    store: ContentStore | None = request.app.state.store
    return store if store is not None else open_store()


def links(content: StoredContent) -> dict[str, Any]:
    """Where the viewer shows the content, its lineage, its JSON and each of its files."""
    page = f"/contents/{content.id}/"
    return {
        "page": page,
        "lineage": f"{page}lineage",
        "api": f"/api/contents/{content.id}",
        "files": {path: f"{page}{path}" for path in sorted(content.keys)},
    }


def summary(content: StoredContent) -> dict[str, Any]:
    """What the index shows of a content, as JSON."""
    return {
        "id": content.id,
        "title": content.title,
        "content_type": content.content_type.value,
        "format": content.format,
        "agent": content.agent,
        "agent_version": content.agent_version,
        "created_at": iso(content.created_at),
        "size": content.size,
        "offline": bool(content.metadata.get("offline")),
        "flow_run_id": content.flow_run_id,
        "files": sorted(content.keys),
        "links": links(content),
    }


@router.get("/health")
def health() -> dict[str, str]:
    """The viewer answers (the store is not read)."""
    return {"status": "ok"}


@router.get("/contents")
def list_contents(
    request: Request,
    type: str = "",
    agent: str = "",
    q: str = "",
    limit: int = Query(25, ge=1, le=200),
    offset: int = Query(0, ge=0),
) -> JSONResponse:
    """A page of the stored contents, newest first, filtered like the index."""
    try:
        found = _store(request).search(type or None, agent, q.strip(), limit=limit, offset=offset)
    except ValueError as exc:
        return JSONResponse({"detail": str(exc)}, status_code=400)
    return JSONResponse(
        {"total": found.total, "limit": limit, "offset": offset, "items": [summary(c) for c in found.items]}
    )


@router.get("/contents/{content_id}")
def get_content(request: Request, content_id: str) -> JSONResponse:
    """One stored content with its lineage (404 for an unknown id)."""
    content = _store(request).get(content_id)
    data = content.model_dump(mode="json")
    data["created_at"] = iso(content.created_at)
    data["offline"] = bool(content.metadata.get("offline"))
    data["links"] = links(content)
    return JSONResponse(data)
