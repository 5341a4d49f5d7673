"""The viewer in a real browser: Debian's Chromium, headless, driven by Playwright. A person opens the
index, takes a quiz and sees the score, reads a data report's charts, follows lineage and a manifest's
components; model-written HTML cannot script the viewer."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from playwright.sync_api import ConsoleMessage, Page, expect

from agentflows.tasks.artifacts import BuiltContent, BuiltFile, ContentType, Provenance
from agentflows.tasks.runtime import Runtime
from agentflows.tasks.settings import Settings
from agentflows.tasks.storage import ContentStore, RunInfo
from agentflows.viewer import create_app
from tests.viewing import Seeded, chromium, seed, serving

pytestmark = pytest.mark.slow


@dataclass(frozen=True)
class Site:
    base: str
    store: ContentStore
    seeded: Seeded
    hostile: str
    """A code tree whose HTML file tries to script whatever shows it."""


HOSTILE_PAGE = """<!doctype html><title>model page</title>
<script>document.title = "scripted"; try { parent.document.title = "viewer scripted" } catch (e) {}</script>
<p id="said">written by a model</p>"""


def _hostile_content() -> BuiltContent:
    provenance = Provenance(agent="api_scaffold", agent_version="1.0.0", step="build")
    files = (
        BuiltFile(path="agentflows-preview.html", media_type="text/html", text="<p>preview</p>"),
        BuiltFile(path="static/index.html", media_type="text/html", text=HOSTILE_PAGE),
    )
    return BuiltContent(
        content_type=ContentType.code,
        title="Hostile",
        primary="agentflows-preview.html",
        files=files,
        provenance=provenance,
    ).sealed()


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    runtime = Runtime(Settings.from_env({"AGENTFLOWS_HOME": str(tmp_path_factory.mktemp("home"))}))
    store = runtime.store()
    with runtime.active():
        seeded = seed(store)
    hostile = store.save(_hostile_content(), RunInfo()).content_id
    with serving(create_app(store)) as base:
        yield Site(base, store, seeded, hostile)
    runtime.close()


@pytest.fixture
def problems() -> list[str]:
    """Errors the browser reports (console errors, uncaught exceptions); none may be left at the end."""
    return []


@pytest.fixture
def page(problems: list[str]) -> Iterator[Page]:
    with chromium() as browser:
        tab = browser.new_page(viewport={"width": 1200, "height": 900})
        tab.on("console", lambda m: _note(problems, m))
        tab.on("pageerror", lambda error: problems.append(str(error)))
        yield tab
        assert problems == [], "the browser reported problems"


def _note(problems: list[str], message: ConsoleMessage) -> None:
    if message.type == "error":
        problems.append(message.text)


def test_from_the_index_a_person_takes_the_quiz_and_sees_the_score(site: Site, page: Page) -> None:
    quiz = site.store.get(site.seeded.ids["quiz"])
    answers = [q["answer"] for q in json.loads(site.store.read(quiz, "quiz.json"))["questions"]]

    page.goto(site.base + "/")
    page.get_by_role("link", name=quiz.title, exact=True).click()
    expect(page.get_by_role("heading", level=1, name=quiz.title, exact=True)).to_be_visible()
    frame = page.frame_locator("iframe.content-frame")
    frame.locator(f'input[name="q0"][value="{answers[0]}"]').check()
    frame.get_by_role("button", name="Check my answers").click()

    expect(frame.locator("#score")).to_have_text(f"You got 1 of {len(answers)} right.")
    expect(frame.locator(".answered").first).to_be_visible()


def test_a_data_report_shows_its_charts_and_its_chart_specs_draw_too(site: Site, page: Page) -> None:
    report = site.store.get(site.seeded.ids["data_report"])
    charts = len(report.metadata["chart_specs"])

    page.goto(f"{site.base}/contents/{report.id}/")
    frame = page.frame_locator("iframe.content-frame")
    expect(frame.locator("figure svg rect").first).to_be_visible()
    expect(frame.locator("figure svg")).to_have_count(charts)
    expect(frame.get_by_text("Key finding:")).to_be_visible()
    frame.get_by_role("link", name=report.metadata["chart_specs"][0]).click()

    expect(frame.locator("figure.chart svg")).to_be_visible()
    expect(frame.locator(".highlight")).to_contain_text('"$schema"')


def test_lineage_is_one_click_away_and_leads_from_a_draft_to_its_plan(site: Site, page: Page) -> None:
    report = site.store.get(site.seeded.ids["data_report"])

    page.goto(f"{site.base}/contents/{report.id}/")
    page.get_by_role("link", name="Lineage").click()
    expect(page.get_by_role("heading", name="Artifacts")).to_be_visible()
    expect(page.locator("li.artifact")).to_have_count(len(report.lineage))
    draft = page.locator("li.step-generate").first
    draft.get_by_role("link", name="decide").click()

    assert page.url.endswith(f"#a-{report.lineage[0]['checksum'][:12]}")
    expect(page.locator("li.step-decide")).to_contain_text("offline/")


def test_a_manifest_links_each_component_to_its_page(site: Site, page: Page) -> None:
    ebook = site.store.get(site.seeded.ids["ebook"])

    page.goto(f"{site.base}/contents/{site.seeded.manifest}/")
    page.locator(f'a[href="/contents/{ebook.id}/"]').click()

    expect(page.get_by_role("heading", level=1, name=ebook.title, exact=True)).to_be_visible()
    expect(page.frame_locator("iframe.content-frame").locator("h1")).to_have_text(ebook.title)


def test_model_written_html_cannot_script_the_viewer(site: Site, page: Page, problems: list[str]) -> None:
    page.goto(f"{site.base}/contents/{site.hostile}/static/index.html")
    expect(page.locator("#said")).to_have_text("written by a model")
    assert page.title() == "model page"  # its script was refused
    assert len(problems) == 1 and "Blocked script execution" in problems.pop()

    quiz = site.store.get(site.seeded.ids["quiz"])
    page.goto(f"{site.base}/contents/{quiz.id}/")
    frame = next(f for f in page.frames if f.url.endswith("/index.html"))
    frame.wait_for_load_state()
    reach = frame.evaluate("() => { try { return parent.document.title } catch (e) { return e.name } }")
    assert reach == "SecurityError" and page.title().startswith(quiz.title)  # the quiz's own script cannot reach out


def test_the_index_filters_by_type_and_pages_stay_styled(site: Site, page: Page) -> None:
    page.goto(site.base + "/")
    page.get_by_label("Type").select_option("code")
    page.get_by_role("button", name="Filter").click()

    rows = page.locator("table.contents tbody tr")
    expect(rows).to_have_count(2)
    expect(rows.first.locator(".badge.type")).to_have_text("code")
    assert page.evaluate("getComputedStyle(document.querySelector('nav.top')).borderBottomStyle") == "solid"
    assert Path(page.url).name.startswith("?type=code")
