"""Checks: assertions a definition declares on its model steps, and the builders' checks on finished files.

A failing check is re-asked with its message, kept in provenance like every
attempt, and a run whose answers never pass fails in one line that names it.
The shipped agents' checks hold offline; a lesson plan's stage minutes add up to
its duration in every stored output, offline and over HTTP, with a model that
gets them wrong (scaled to the lesson's length by its declared `totals`).
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from agentflows import open_store, run_agent
from agentflows.cli import main
from agentflows.tasks.builders.file_checks import file_problems
from agentflows.tasks.checks import CheckSpec, check_problems
from agentflows.tasks.errors import BuildError, ModelOutputError
from agentflows.tasks.llm import ModelReply, ModelRequest, ModelSettings, OfflineProvider
from agentflows.tasks.steps import write_draft
from agentflows.tasks.storage import StoreSettings
from tests.conftest import SHIPPED_AGENTS
from tests.fake_llm import FakeLLM, Reply
from tests.offline_steps import CONTEXT, offline_run
from tests.providers import CallLog, RecordingProvider, using

WRONG_MINUTES = [2, 24, 46, 68, 90]
"""The stage lengths a user saw for a 50-minute lesson (230 minutes in all)."""


def add_checks(yaml_file: Path, step: str, checks: str) -> None:
    """Put `checks` (a YAML list, unindented) first among the checks of step `step` in `yaml_file`."""
    text = yaml_file.read_text(encoding="utf-8")
    start = text.index(f"  {step}:\n    prompt: ")
    at = text.index("    checks:\n", start) + len("    checks:\n")
    block = "".join(f"      {line}\n" for line in checks.splitlines())
    yaml_file.write_text(text[:at] + block + text[at:], encoding="utf-8")


# -- evaluating checks ------------------------------------------------------------------------


def test_a_check_says_its_message_filled_in_only_when_it_does_not_hold() -> None:
    check = CheckSpec(
        that="plan.items | sum(attribute='minutes') == inputs.duration_minutes",
        message="the minutes must add up to {{ inputs.duration_minutes }}; they add up to "
        "{{ plan.items | sum(attribute='minutes') }}",
    )
    plan = {"items": [{"minutes": m} for m in WRONG_MINUTES]}

    assert check_problems([check], {"inputs": {"duration_minutes": 230}, "plan": plan}) == []
    assert check_problems([check], {"inputs": {"duration_minutes": 50}, "plan": plan}) == [
        "the minutes must add up to 50; they add up to 230"
    ]


def test_an_each_check_names_every_failing_element_and_counts_past_three() -> None:
    check = CheckSpec(each="plan.items", that="it.minutes >= 5", message="stage {{ it.title }} is too short")
    items = [{"title": f"s{n}", "minutes": n} for n in (1, 2, 9, 3, 4, 0)]

    assert check_problems([check], {"plan": {"items": items}}) == [
        "stage s1 is too short",
        "stage s2 is too short",
        "stage s3 is too short",
        "stage {{ it.title }} is too short (2 more)",
    ]


def test_a_check_that_cannot_be_evaluated_fails_and_says_why() -> None:
    check = CheckSpec(that="item.minutes > 2", message="a stage lasts more than two minutes")

    (problem,) = check_problems([check], {"item": {"title": "Warm-up"}})

    assert problem.startswith("a stage lasts more than two minutes (the check could not be evaluated: ")
    assert "has no attribute 'minutes'" in problem


def test_checks_run_in_the_sandbox() -> None:
    check = CheckSpec(that="''.__class__.__mro__[1].__subclasses__()", message="no escape")

    (problem,) = check_problems([check], {})

    assert problem.startswith("no escape (the check could not be evaluated: access to attribute '__class__'")


def test_matching_and_fromjson_are_there_for_checks() -> None:
    checks = [
        CheckSpec(that="path is matching('^tests/')", message="a test lives under tests/"),
        CheckSpec(that="(quiz | fromjson).questions | length == 2", message="two questions"),
    ]

    assert check_problems(checks, {"path": "tests/test_api.py", "quiz": '{"questions": [1, 2]}'}) == []
    assert check_problems(checks, {"path": "app/main.py", "quiz": '{"questions": []}'}) == [
        "a test lives under tests/",
        "two questions",
    ]


# -- the shipped agents ---------------------------------------------------------------------


@pytest.mark.parametrize("agent", SHIPPED_AGENTS)
def test_every_shipped_agent_declares_checks_and_they_hold_offline_at_the_first_answer(agent: str) -> None:
    run = offline_run(agent)

    assert run.specs.decide.checks or run.specs.generate.checks
    for artifact in (run.plan, *run.drafts):
        assert [(a.method, a.error) for a in artifact.provenance.attempts] == [("strict", None)]


@pytest.mark.parametrize(("duration", "stages"), [(50, 5), (45, 3), (20, 8), (180, 3), (90, 8)])
def test_the_offline_lesson_plan_takes_exactly_the_lesson_length(duration: int, stages: int) -> None:
    run = offline_run("lesson_plan", duration_minutes=duration, stages=stages)

    minutes = [item.fields["minutes"] for item in run.plan.items]
    assert sum(minutes) == duration  # type: ignore[arg-type]
    assert all(2 <= m <= 90 for m in minutes)  # type: ignore[operator]
    assert run.plan.items[0].fields["stage"] == "warm-up"


# -- a check that never holds -------------------------------------------------------------------


@pytest.mark.usefixtures("prefect_server")
def test_a_check_that_never_holds_passes_validate_and_fails_the_run_in_one_line_after_its_reasks(
    definitions: Path, capsys: pytest.CaptureFixture[str], model_calls: CallLog
) -> None:
    add_checks(
        definitions / "quiz.yaml",
        "decide",
        '- that: "plan.items | length > 100"\n  message: "a quiz needs more than {{ 100 }} questions"',
    )

    assert main(["validate", str(definitions)]) == 0
    capsys.readouterr()
    code = main(["--definitions", str(definitions), "run", "quiz", "-p", "topic=Tides", "-p", "questions=2"])
    err = capsys.readouterr().err

    assert code == 1 and "Traceback" not in err
    last = err.strip().splitlines()[-1]
    assert last.startswith("error: quiz/decide: ") and last.endswith("a quiz needs more than 100 questions")
    assert model_calls.labels() == ["quiz/decide"] * 5  # the first answer and the four re-asks quiz.yaml allows


def test_a_failing_check_is_reasked_with_its_message() -> None:
    run = offline_run("quiz")
    spec = run.specs.generate.model_copy(
        update={
            "model": ModelSettings(provider="scripted"),
            "checks": (CheckSpec(that="explanation | wordcount > 8", message="explain it in more than eight words"),),
        }
    )
    short = {"question": "Which is right?", "choices": ["a", "b", "c"], "answer": 1, "explanation": "B."}
    texts = [json.dumps(short), json.dumps({**short, "explanation": "B is right because the text says so, twice."})]
    provider = ScriptedAnswers(texts)

    with using(scripted=lambda settings: provider):
        draft = asyncio.run(write_draft(spec, run.inputs, CONTEXT, run.plan, run.plan.items[0].key))

    attempts = draft.provenance.attempts
    assert [(a.method, a.error) for a in attempts] == [
        (None, "explain it in more than eight words"),
        ("reasked+strict", None),
    ]
    assert "- explain it in more than eight words" in provider.requests[1].messages[-1].content


class ScriptedAnswers:
    """Answers with the given texts in order, recording the requests."""

    name = "scripted"
    context_window = 100_000
    default_model = "scripted-1"

    def __init__(self, texts: list[str]) -> None:
        self.texts = list(texts)
        self.requests: list[ModelRequest] = []

    async def complete(self, request: ModelRequest) -> ModelReply:
        self.requests.append(request)
        reply = await OfflineProvider().complete(request)
        return reply.model_copy(update={"text": self.texts.pop(0), "provider": self.name, "offline": False})


# -- lesson minutes in every stored output ----------------------------------------------------------


class WrongMinutesFirst(RecordingProvider):
    """The offline answers, but a plan asked for the first time has the stage lengths a user once saw."""

    async def complete(self, request: ModelRequest) -> ModelReply:
        reply = await super().complete(request)
        reasked = any(m.role == "assistant" for m in request.messages)
        if not request.label.endswith("/decide") or reasked:
            return reply
        plan = json.loads(reply.text)
        for item, minutes in zip(plan["items"], WRONG_MINUTES, strict=False):
            item["minutes"] = minutes
        return reply.model_copy(update={"text": json.dumps(plan)})


def stored_minutes(content_id: str) -> list[int]:
    """The stage lengths of a stored lesson plan, as its page's timeline shows them."""
    store = open_store()
    page = store.read(store.get(content_id), "index.html").decode()
    timeline = page.split("<h2>Timeline</h2>", 1)[1].split("</ol>", 1)[0]
    return [int(m) for m in re.findall(r"— (\d+) min</li>", timeline)]


@pytest.mark.usefixtures("prefect_server")
@pytest.mark.parametrize(("duration", "stages"), [(50, 5), (45, 3), (120, 6)])
def test_stored_lesson_minutes_add_up_though_the_model_got_them_wrong(
    any_store: StoreSettings, duration: int, stages: int
) -> None:
    log = CallLog()
    with using(offline=lambda settings: WrongMinutesFirst(log)):
        result = run_agent("lesson_plan", topic="Tides", duration_minutes=duration, stages=stages)

    assert sum(stored_minutes(result.content_id)) == duration
    assert len(stored_minutes(result.content_id)) == stages
    scaled = re.compile(rf"decide: scaled the items' minutes from \d+ to {duration}, the declared total")
    assert [w for w in result.warnings if scaled.fullmatch(w)]
    decide = open_store().get(result.content_id).lineage[0]
    assert [a["method"] for a in decide["attempts"]] == ["strict"]  # scaled, not asked again
    assert log.labels().count("lesson_plan/decide") == 1


@pytest.fixture
def fake_llm(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeLLM]:
    with FakeLLM() as fake:
        monkeypatch.setenv("AGENTFLOWS_LLM_BASE_URL", fake.base_url)
        monkeypatch.setenv("AGENTFLOWS_LLM_MODEL", "fake-model")
        monkeypatch.setenv("AGENTFLOWS_LLM_LIMIT_SCOPE", "process")
        yield fake


def wrong_plan(stages: int) -> str:
    """A schema-valid lesson plan whose stages add up to more than the lesson."""
    kinds = ["warm-up", "instruction", "guided practice", "independent practice", "assessment"]
    items = [
        {"title": f"Stage {n + 1}", "stage": kinds[n % len(kinds)], "minutes": WRONG_MINUTES[n % 5]}
        for n in range(stages)
    ]
    return json.dumps(
        {"title": "Tides", "objectives": ["Explain tides", "Predict tides"], "materials": [], "items": items}
    )


@pytest.mark.usefixtures("prefect_server")
def test_over_http_a_plan_whose_minutes_do_not_add_up_is_scaled_and_stored_right(
    fake_llm: FakeLLM, any_store: StoreSettings
) -> None:
    fake_llm.script(Reply(content=wrong_plan(5)))

    result = run_agent("lesson_plan", topic="Tides", duration_minutes=50, stages=5)

    # 2, 24, 46, 68, 90 (230) in proportion to 50, each at least the field's minimum of 2
    assert stored_minutes(result.content_id) == [2, 5, 10, 15, 18]
    assert sum(1 for r in fake_llm.received if r.body["messages"][-1]["content"].startswith("Plan a")) == 1
    assert any("scaled the items' minutes from 230 to 50" in w for w in result.warnings)


@pytest.mark.usefixtures("prefect_server")
def test_over_http_a_plan_that_fails_a_check_is_reasked_with_its_message(
    fake_llm: FakeLLM, any_store: StoreSettings
) -> None:
    no_warm_up = json.loads(wrong_plan(5))
    no_warm_up["items"][0]["stage"] = "instruction"
    fake_llm.script(Reply(content=json.dumps(no_warm_up)), Reply())

    result = run_agent("lesson_plan", topic="Tides", duration_minutes=50, stages=5)

    assert sum(stored_minutes(result.content_id)) == 50
    reask = fake_llm.received[1].body["messages"]
    assert [m["role"] for m in reask][-2:] == ["assistant", "user"]
    assert "the lesson must start with a warm-up stage" in reask[-1]["content"]
    decide = open_store().get(result.content_id).lineage[0]
    assert [a["method"] for a in decide["attempts"]] == [None, "reasked+strict"]


# -- checks on finished files ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "text", "problem"),
    [
        ("app/main.py", "def broken(:\n", "`app/main.py` is not valid Python: invalid syntax (line 1)"),
        ("tests/test_api.py", "import app\n\nHELPER = 1\n", "`tests/test_api.py` is a test file with no test in it"),
        ("tests/api_test.py", "class TestApi:\n    x = 1\n", "`tests/api_test.py` is a test file with no test in it"),
        ("package.json", '{"name": ', "`package.json` is not valid JSON: Expecting value (line 1)"),
        ("pyproject.toml", "[project\n", "`pyproject.toml` is not valid TOML"),
        ("compose.yaml", "a: [1, 2\n", "`compose.yaml` is not valid YAML"),
    ],
)
def test_a_broken_file_is_named_with_what_is_wrong(path: str, text: str, problem: str) -> None:
    (found,) = file_problems(path, text)

    assert found.startswith(problem)


@pytest.mark.parametrize(
    ("path", "text"),
    [
        ("tests/test_api.py", "def test_list() -> None:\n    assert True\n"),
        ("tests/test_api.py", "class TestItems:\n    async def test_create(self) -> None:\n        pass\n"),
        ("app/helpers.py", "HELPER = 1\n"),
        ("README.md", "# not code {"),
        ("app/data.json", "[1, 2]"),
    ],
)
def test_a_sound_file_passes(path: str, text: str) -> None:
    assert file_problems(path, text) == []


class BrokenPythonFirst(OfflineProvider):
    """The offline answers, with the first file of each draft cut off mid-line."""

    def __init__(self, settings: ModelSettings | None = None) -> None:
        super().__init__(settings)
        self.seen: set[str] = set()

    async def complete(self, request: ModelRequest) -> ModelReply:
        reply = await super().complete(request)
        if request.label in self.seen:
            return reply
        self.seen.add(request.label)
        answer: dict[str, Any] = json.loads(reply.text)
        answer["code"] = "def describe(:\n    return 'what the service does'\n"  # long enough for min_words
        return reply.model_copy(update={"text": json.dumps(answer)})


def test_a_scaffold_file_that_does_not_parse_is_reasked() -> None:
    run = offline_run("api_scaffold")
    spec = run.specs.generate.model_copy(update={"model": ModelSettings(provider="broken")})
    provider = BrokenPythonFirst()

    with using(broken=lambda settings: provider):
        draft = asyncio.run(write_draft(spec, run.inputs, CONTEXT, run.plan, run.plan.items[0].key))

    first, second = draft.provenance.attempts
    assert (
        first.error == "`app/main.py` is not valid Python: invalid syntax (line 1); write the whole file so it parses"
    )
    assert second.method == "reasked+strict"
    compile(str(draft.fields["code"]), "app/main.py", "exec")


def test_a_finished_file_that_fails_its_check_is_refused_at_build_time() -> None:
    run = offline_run("api_scaffold")
    test_file = next(d for d in run.drafts if str(run.plan.item(d.item_key).fields["path"]).startswith("tests/"))
    drafts = tuple(
        d.model_copy(update={"fields": {**d.fields, "code": "X = 1\n"}}) if d is test_file else d for d in run.drafts
    )

    with pytest.raises(
        BuildError, match=r"api_scaffold: the built content fails its checks: `tests/test_api\.py` is a"
    ):
        run.build(drafts)


def test_a_model_that_never_writes_valid_python_fails_the_step_naming_the_file() -> None:
    run = offline_run("api_scaffold")
    spec = run.specs.generate.model_copy(update={"model": ModelSettings(provider="broken")})

    class AlwaysBroken(BrokenPythonFirst):
        async def complete(self, request: ModelRequest) -> ModelReply:
            self.seen.clear()
            return await super().complete(request)

    with using(broken=AlwaysBroken), pytest.raises(ModelOutputError, match=r"`app/main\.py` is not valid Python"):
        asyncio.run(write_draft(spec, run.inputs, CONTEXT, run.plan, run.plan.items[0].key))
