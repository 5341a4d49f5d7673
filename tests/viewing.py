"""Helpers of the viewer tests: a store filled with one content of each kind, the viewer on a free
loopback port (uvicorn in a thread), and headless Chromium driven by Playwright."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime

import httpx
import uvicorn
from fastapi import FastAPI
from playwright.sync_api import Browser, sync_playwright

from agentflows.router import manifest_content
from agentflows.tasks.artifacts import SavedContent
from agentflows.tasks.manifest import Component, Manifest
from agentflows.tasks.storage import ContentStore, RunInfo
from tests.offline_steps import offline_run
from tests.servers import free_port
from tests.test_storage import run_info

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SEEDED = ("quiz", "data_report", "api_scaffold", "ebook")


@dataclass(frozen=True)
class Seeded:
    """What `seed` stored: the content id of each agent's content, and of a router manifest over two of them."""

    ids: dict[str, str]
    manifest: str


def seed(store: ContentStore) -> Seeded:
    """Store one content of each seeded agent (planned and drafted offline) and a manifest over quiz and ebook."""
    saved: dict[str, SavedContent] = {}
    for agent in SEEDED:
        run = offline_run(agent)
        built = run.build()
        saved[agent] = store.save(built, run_info(run, built, flow_run_id=f"run-{agent}"))
    manifest = Manifest(
        request="a quiz on the water cycle and an e-book on tides",
        route="rules",
        evidence={"quiz": ["quiz"], "ebook": ["e-book"]},
        components=tuple(_component(agent, saved[agent]) for agent in ("quiz", "ebook")),
        status="completed",
        seconds=1.5,
    )
    stored = store.save(manifest_content(manifest), RunInfo(flow_run_id="run-router", inputs={"request": "…"}))
    return Seeded(ids={agent: s.content_id for agent, s in saved.items()}, manifest=stored.content_id)


def _component(agent: str, saved: SavedContent) -> Component:
    return Component(
        agent=agent,
        content_type=saved.content_type,
        status="completed",
        name=saved.title,
        content_id=saved.content_id,
        title=saved.title,
        location=saved.location,
        started_at=datetime.now(UTC),
        seconds=0.5,
    )


@contextmanager
def serving(app: FastAPI) -> Iterator[str]:
    """Serve `app` on a free loopback port in a thread; yields its base URL."""
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{port}"
    wait_until_up(f"{base}/api/health")
    try:
        yield base
    finally:
        server.should_exit = True
        thread.join(timeout=30)


def wait_until_up(url: str, timeout: float = 60, headers: dict[str, str] | None = None) -> None:
    """Return once `url` answers 200; fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(url, headers=headers, timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise AssertionError(f"{url} did not answer within {timeout:.0f} s")


@contextmanager
def chromium() -> Iterator[Browser]:
    """Debian's Chromium, headless, driven by Playwright (no browser download)."""
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()
