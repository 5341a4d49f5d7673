"""The content viewer over HTTP, on the embedded store (SQLite + folder) and on PostgreSQL + S3 (moto):
every route, media types, the Content-Security-Policy of pages and files, 404 for traversal attempts and
unknown ids, read-only, prefixes, links refused."""

from __future__ import annotations

import base64
import hashlib
import http.client
import os
import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import s3fs

from agentflows import open_store
from agentflows.tasks.runtime import Runtime
from agentflows.tasks.settings import Settings
from agentflows.tasks.storage import ContentStore, upgrade_database
from agentflows.viewer import create_app
from agentflows.viewer.safety import VIEWER_POLICY
from tests.offline_steps import offline_run, with_fields
from tests.servers import PostgresCluster, S3Server
from tests.test_storage import run_info
from tests.viewing import Seeded, seed, serving


@dataclass(frozen=True)
class Site:
    """A seeded store and the viewer serving it."""

    base: str
    store: ContentStore
    seeded: Seeded

    def get(self, path: str, **options: object) -> httpx.Response:
        return httpx.get(self.base + path, timeout=30, **options)  # type: ignore[arg-type]


def _environment(kind: str, home: Path, request: pytest.FixtureRequest) -> dict[str, str]:
    env = {"AGENTFLOWS_HOME": str(home)}
    if kind == "embedded":
        return env
    postgres: PostgresCluster = request.getfixturevalue("postgres")
    s3: S3Server = request.getfixturevalue("s3")
    name = f"v{uuid.uuid4().hex[:12]}"
    postgres.create_database(name)
    s3fs.S3FileSystem(endpoint_url=s3.endpoint, key="testing", secret="testing").mkdir(name)
    return {
        **env,
        "AGENTFLOWS_DATABASE_URL": postgres.url(name),
        "AGENTFLOWS_STORAGE_URL": f"s3://{name}/outputs",
        "AGENTFLOWS_S3_ENDPOINT_URL": s3.endpoint,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
    }


@pytest.fixture(scope="module", params=["embedded", "postgres+s3"])
def site(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    runtime = Runtime(Settings.from_env(_environment(request.param, tmp_path_factory.mktemp("home"), request)))
    upgrade_database(runtime.settings.store)
    store = runtime.store()
    with runtime.active():  # only while seeding: the tests after it keep their own runtime
        seeded = seed(store)
    with serving(create_app(store, prefect_ui="http://prefect.example:4200")) as base:
        yield Site(base, store, seeded)
    runtime.close()


def test_the_index_lists_every_content_newest_first_and_filters_searches_and_pages(site: Site) -> None:
    everything = site.get("/api/contents").json()
    quizzes = site.get("/api/contents", params={"type": "interactive"}).json()
    by_agent = site.get("/api/contents", params={"agent": "data_report"}).json()
    searched = site.get("/api/contents", params={"q": site.store.get(site.seeded.ids["ebook"]).title.upper()}).json()
    first, second = (site.get("/api/contents", params={"limit": 2, "offset": o}).json() for o in (0, 2))
    page = site.get("/", params={"type": "code"})

    ids = [item["id"] for item in everything["items"]]
    assert everything["total"] == 5 and set(ids) == {*site.seeded.ids.values(), site.seeded.manifest}
    created = [item["created_at"] for item in everything["items"]]
    assert created == sorted(created, reverse=True)
    assert [(i["id"], i["flow_run_id"]) for i in quizzes["items"]] == [(site.seeded.ids["quiz"], "run-quiz")]
    assert [i["agent"] for i in by_agent["items"]] == ["data_report"]
    assert site.seeded.ids["ebook"] in [i["id"] for i in searched["items"]]
    assert first["total"] == 5 and [i["id"] for i in first["items"] + second["items"]] == ids[:4]
    assert page.status_code == 200 and page.headers["content-security-policy"] == VIEWER_POLICY
    assert f'href="/contents/{site.seeded.ids["api_scaffold"]}/"' in page.text
    assert f'href="/contents/{site.seeded.ids["quiz"]}/"' not in page.text
    assert site.get("/api/contents", params={"type": "poster"}).status_code == 400


def test_a_content_page_has_its_header_bar_and_its_page_in_a_sandboxed_frame(site: Site) -> None:
    quiz = site.store.get(site.seeded.ids["quiz"])
    page = site.get(f"/contents/{quiz.id}/")

    assert page.status_code == 200 and page.headers["content-type"] == "text/html; charset=utf-8"
    assert page.headers["content-security-policy"] == VIEWER_POLICY
    assert quiz.title in page.text and "quiz 1.0.0" in page.text and "offline</span>" in page.text
    assert f'href="/contents/{quiz.id}/lineage"' in page.text
    assert 'href="http://prefect.example:4200/runs/flow-run/run-quiz"' in page.text
    frame = re.search(r'<iframe class="content-frame"[^>]*>', page.text)
    assert frame is not None and f'src="/contents/{quiz.id}/index.html"' in frame.group(0)
    assert 'sandbox="allow-scripts allow-forms"' in frame.group(0)  # never allow-same-origin
    assert "<script" not in page.text


def test_only_the_quiz_page_may_run_its_own_inline_script_and_every_file_is_sandboxed(site: Site) -> None:
    quiz, report = (site.store.get(site.seeded.ids[a]) for a in ("quiz", "data_report"))
    quiz_page = site.get(f"/contents/{quiz.id}/index.html")
    report_page = site.get(f"/contents/{report.id}/index.html")

    script = re.search(r"<script>(.*?)</script>", quiz_page.text, re.S)
    assert script is not None
    digest = base64.b64encode(hashlib.sha256(script.group(1).encode()).digest()).decode()
    policy = quiz_page.headers["content-security-policy"]
    assert f"script-src 'sha256-{digest}';" in policy and "sandbox allow-scripts allow-forms" in policy
    assert "default-src 'none'" in policy and "allow-same-origin" not in policy
    assert quiz_page.headers["content-type"] == "text/html; charset=utf-8"
    assert "script-src 'none'" in report_page.headers["content-security-policy"]
    assert report_page.headers["content-security-policy"].endswith("sandbox")


def test_every_file_is_served_with_its_media_type_and_text_is_shown_in_a_page(site: Site) -> None:
    report, code = (site.store.get(site.seeded.ids[a]) for a in ("data_report", "api_scaffold"))
    table = next(p for p in report.keys if p.endswith(".csv"))
    spec = next(p for p in report.keys if p.endswith(".vl.json"))
    source = next(p for p in code.keys if p.endswith(".py"))

    raw = {path: site.get(f"/contents/{report.id}/{path}", params={"raw": ""}) for path in report.keys}
    assert {p: r.headers["content-type"].split(";")[0] for p, r in raw.items()} == report.metadata["files"]
    assert all(r.content == site.store.read(report, p) for p, r in raw.items())
    assert all("sandbox" in r.headers["content-security-policy"] for r in raw.values())
    csv_page = site.get(f"/contents/{report.id}/{table}")
    assert (
        csv_page.headers["content-type"].startswith("text/html") and '<table class="dataframe table">' in csv_page.text
    )
    assert "<svg" in site.get(f"/contents/{report.id}/{spec}").text
    code_page = site.get(f"/contents/{code.id}/{source}")
    assert 'class="highlight' in code_page.text and code_page.headers["content-security-policy"] == VIEWER_POLICY
    assert site.get(f"/contents/{code.id}/{source}", params={"raw": ""}).headers["content-type"] == (
        "text/x-python; charset=utf-8"
    )


@pytest.mark.parametrize(
    "path",
    [
        "../../../../etc/passwd",
        "%2e%2e/%2e%2e/%2e%2e/etc/passwd",
        "..%2f..%2f..%2fetc%2fpasswd",
        "%2Fetc%2Fpasswd",
        "/etc/passwd",
        "index.html/../quiz.json/..",
        "no-such-file.txt",
    ],
)
def test_paths_that_are_not_one_of_the_contents_files_are_404(site: Site, path: str) -> None:
    quiz = site.seeded.ids["quiz"]
    connection = http.client.HTTPConnection(site.base.removeprefix("http://"), timeout=30)
    connection.request("GET", f"/contents/{quiz}/{path}")  # sent as written: no client folds the dots away
    answer = connection.getresponse()

    assert answer.status == 404
    assert b"root:" not in answer.read()
    connection.close()


def test_unknown_ids_are_404_as_pages_and_as_json(site: Site) -> None:
    for path in ("/contents/ffffffffffffffffffff/", "/contents/ffffffffffffffffffff/lineage", "/contents/abc/x"):
        assert site.get(path).status_code == 404
    answer = site.get("/api/contents/ffffffffffffffffffff")
    assert answer.status_code == 404 and "no stored content has id" in answer.json()["detail"]


def test_an_id_prefix_redirects_to_the_full_id(site: Site) -> None:
    quiz = site.seeded.ids["quiz"]
    answer = site.get(f"/contents/{quiz[:8]}/lineage")

    assert answer.status_code == 307 and answer.headers["location"] == f"/contents/{quiz}/lineage"


def test_the_viewer_is_read_only(site: Site) -> None:
    quiz = site.seeded.ids["quiz"]
    for method in ("POST", "PUT", "DELETE", "PATCH"):
        for path in ("/", f"/contents/{quiz}/", f"/contents/{quiz}/index.html", f"/api/contents/{quiz}"):
            assert httpx.request(method, site.base + path).status_code == 405, (method, path)


def test_a_router_manifest_is_a_page_of_its_components_each_linked(site: Site) -> None:
    page = site.get(f"/contents/{site.seeded.manifest}/")

    assert page.status_code == 200 and "a quiz on the water cycle and an e-book on tides" in page.text
    for agent in ("quiz", "ebook"):
        assert f'href="/contents/{site.seeded.ids[agent]}/"' in page.text
    assert "<iframe" not in page.text


def test_the_lineage_page_shows_the_plan_drafts_and_build_with_models_tokens_and_templates(site: Site) -> None:
    report = site.store.get(site.seeded.ids["data_report"])
    page = site.get(f"/contents/{report.id}/lineage").text

    for step in report.lineage:
        assert f"<h4>{step['label']}</h4>" in page
        assert f"{step['usage']['prompt_tokens']} + {step['usage']['completion_tokens']}" in page
        assert all(name in page for name in step["template_hashes"])
    assert "offline/" in page and "Attempts (1)" in page and "No other content was made by data_report" in page


def test_the_json_of_a_content_is_the_stored_content_with_links(site: Site) -> None:
    report = site.store.get(site.seeded.ids["data_report"])
    data = site.get(f"/api/contents/{report.id[:10]}").json()

    assert data["id"] == report.id and data["title"] == report.title and data["lineage"] == report.lineage
    assert data["links"]["page"] == f"/contents/{report.id}/" and set(data["links"]["files"]) == set(report.keys)
    assert data["offline"] is True and data["flow_run_id"] == "run-data_report"


def test_a_link_put_in_place_of_a_stored_file_is_404(tmp_path: Path) -> None:
    run = offline_run("quiz")
    built = run.build()
    store = open_store()
    saved = store.save(built, run_info(run, built))
    secret = tmp_path / "secret.txt"
    secret.write_text("not a file of the content")
    stored_file = Path(saved.files["quiz.json"].removeprefix("file://"))
    stored_file.unlink()
    os.symlink(secret, stored_file)

    with serving(create_app(store)) as base:
        answer = httpx.get(f"{base}/contents/{saved.content_id}/quiz.json", params={"raw": ""})

    assert answer.status_code == 404 and "not a file of the content" not in answer.text


def test_the_lineage_page_lists_the_other_versions_made_from_the_same_inputs() -> None:
    run = offline_run("ebook")
    first = run.build()
    second = run.build((with_fields(run.drafts[0], body="A rewritten first chapter."), *run.drafts[1:]))
    store = open_store()
    older, newer = (store.save(b, run_info(run, b, flow_run_id=f"run-{n}")) for n, b in enumerate((first, second)))
    other = offline_run("ebook", topic="Something else entirely")
    store.save(other.build(), run_info(other, other.build(), flow_run_id="run-other"))

    with serving(create_app(store)) as base:
        page = httpx.get(f"{base}/contents/{newer.content_id}/lineage").text

    versions = page[page.index("<h3>Versions</h3>") :]
    assert "this one" in versions and f'href="/contents/{older.content_id}/"' in versions
    assert versions.count("<li>") == 2
