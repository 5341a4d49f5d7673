"""Evals: each agent's cases next to its definition, run offline, live, recorded and replayed, against a baseline.

The shipped cases pass offline; breaking a layout makes `agentflows eval` exit 1
naming the assertion; a case below its baseline is a regression, reported per
case; a replay of recorded answers passes with the model's server gone; results
land in the content database and, from the flow, in a table artifact.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from prefect import get_client
from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey
from prefect.deployments.runner import RunnerDeployment

from agentflows import open_store
from agentflows.cli import main
from agentflows.errors import EvalFailed
from agentflows.evals import run_evals
from agentflows.evals.flow import ARTIFACT_KEY, agent_evals
from agentflows.tasks.llm import ModelReply, ModelRequest, OfflineProvider
from agentflows.tasks.llm.recorded import AnswerTape
from agentflows.tasks.storage import StoreSettings
from agentflows.tasks.storage.eval_results import EvalResultStore
from tests.conftest import REPO, SHIPPED_AGENTS
from tests.fake_llm import FakeLLM
from tests.providers import CallLog, using
from tests.servers import free_port
from tests.test_checks import add_checks

QUIZ_HEADING = "  <h1>{{ title }}</h1>\n"
HEADING_ASSERTION = "the page shows the quiz's title as its heading"


def without_quiz_heading(definitions: Path, only_for: str | None = None) -> None:
    """Take the quiz's title out of its page (for every quiz, or only for difficulty `only_for`)."""
    layout = definitions / "layouts" / "quiz_page.html"
    text = layout.read_text(encoding="utf-8")
    assert QUIZ_HEADING in text
    kept = "" if only_for is None else f"{{% if inputs.difficulty != '{only_for}' %}}{QUIZ_HEADING}{{% endif %}}"
    layout.write_text(text.replace(QUIZ_HEADING, kept), encoding="utf-8")


def printed_report(capsys: pytest.CaptureFixture[str]) -> dict[str, Any]:
    return json.loads(capsys.readouterr().out)  # type: ignore[no-any-return]


# -- offline, on the shipped definitions --------------------------------------------------------


def test_agentflows_eval_quiz_passes_offline_on_the_shipped_definitions(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["eval", "quiz"]) == 0

    out = capsys.readouterr().out
    assert "PASS quiz/water_cycle" in out and "PASS quiz/photosynthesis_hard" in out
    assert out.splitlines()[-1].startswith("passed: 2/2 runs passed (100%) in 2 cases")
    assert "offline provider: no language model was called" in out


def test_every_shipped_agent_has_cases_that_pass_offline() -> None:
    report = run_evals(mode="offline")

    assert {case.agent for case in report.cases} == set(SHIPPED_AGENTS)
    assert report.passed and report.pass_rate == 1.0 and report.offline
    lesson = [c for c in report.cases if c.agent == "lesson_plan"]
    minutes = next(a for a in lesson[0].assertions if a.assertion.startswith("the stages' minutes add up"))
    assert minutes.passed == 1 and minutes.failed == 0
    rubrics = [a for c in report.cases for a in c.assertions if a.assertion.startswith("rubric:")]
    assert rubrics and all(r.skipped == 1 and "offline provider" in r.failures[0] for r in rubrics)


def test_removing_the_quiz_title_from_its_layout_fails_the_eval_naming_the_assertion(
    definitions: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    without_quiz_heading(definitions)

    assert main(["--definitions", str(definitions), "eval", "quiz"]) == 1

    out = capsys.readouterr().out
    assert "FAIL quiz/water_cycle" in out
    assert f"- {HEADING_ASSERTION} (failed 1 of 1 runs)" in out
    assert "index.html does not contain '<h1>The water cycle</h1>'" in out
    assert out.splitlines()[-1].startswith("FAILED: 0/2 runs passed (0%)")


def test_repeats_ask_the_model_again_and_count_runs(model_calls: CallLog, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["eval", "quiz", "--repeat", "3", "--json"]) == 0

    report = printed_report(capsys)
    water, hard = report["cases"]
    assert (water["runs"], water["passed_runs"], report["runs"], report["repeat"]) == (3, 3, 6, 3)
    assert model_calls.labels().count("quiz/decide") == 6  # nothing comes from a cache
    assert water["model_calls"] == 3 * (1 + 3) and hard["model_calls"] == 3 * (1 + 5)


def test_a_check_that_can_never_hold_fails_its_runs_with_the_checks_message(
    definitions: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    add_checks(
        definitions / "quiz.yaml", "decide", '- that: "plan.items | length > 100"\n  message: "far too few questions"'
    )

    assert main(["--definitions", str(definitions), "eval", "quiz"]) == 1

    out = capsys.readouterr().out
    assert (
        "run failed: quiz/decide: no answer fit the schema after 5 attempts (4 re-asks); last problem: far too" in out
    )


# -- baselines --------------------------------------------------------------------------------------


def test_a_regression_against_the_baseline_is_reported_per_case(
    definitions: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    baseline = tmp_path / "baseline.json"
    assert main(["--definitions", str(definitions), "eval", "quiz", "--json"]) == 0
    baseline.write_text(capsys.readouterr().out, encoding="utf-8")
    without_quiz_heading(definitions, only_for="hard")

    assert main(["--definitions", str(definitions), "eval", "quiz", "--baseline", str(baseline), "--json"]) == 1

    report = printed_report(capsys)
    assert report["regressions"] == ["quiz/photosynthesis_hard"]
    water, hard = report["cases"]
    assert (water["pass_rate"], water["baseline"], water["regression"]) == (1.0, 1.0, False)
    assert (hard["pass_rate"], hard["baseline"], hard["regression"]) == (0.0, 1.0, True)
    failed = [a for a in hard["assertions"] if a["failed"]]
    assert [a["assertion"] for a in failed] == [HEADING_ASSERTION]

    assert main(["--definitions", str(definitions), "eval", "quiz", "--baseline", str(baseline)]) == 1
    lines = capsys.readouterr().out.splitlines()
    assert next(line for line in lines if "quiz/photosynthesis_hard" in line).endswith("baseline 100%  REGRESSION")
    assert next(line for line in lines if "quiz/water_cycle" in line).endswith("baseline 100%")
    assert lines[-1].endswith(f"1 regression against {baseline}")


def test_a_case_at_or_above_a_lower_baseline_passes(
    definitions: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["--definitions", str(definitions), "eval", "quiz", "--json"]) == 0
    report = printed_report(capsys)
    for case in report["cases"]:
        case["pass_rate"] = 0.0  # what a live model managed when the baseline was taken
    baseline = tmp_path / "baseline.json"
    baseline.write_text(json.dumps(report), encoding="utf-8")
    without_quiz_heading(definitions)

    assert main(["--definitions", str(definitions), "eval", "quiz", "--baseline", str(baseline)]) == 0


@pytest.mark.parametrize(
    ("text", "error"),
    [
        (None, "error: no baseline at {path}; write one with `agentflows eval --all --json > {path}`"),
        ('{"cases": [\n', "error: {path}:2: the baseline is not JSON (Expecting value)"),
        ('{"cases": []}', "error: {path}: not a report of `agentflows eval --json` (mode: field required)"),
    ],
)
def test_a_baseline_that_cannot_be_used_is_one_line_before_anything_runs(
    text: str | None, error: str, tmp_path: Path, capsys: pytest.CaptureFixture[str], model_calls: CallLog
) -> None:
    path = tmp_path / "baseline.json"
    if text is not None:
        path.write_text(text, encoding="utf-8")

    assert main(["eval", "quiz", "--baseline", str(path)]) == 1

    assert capsys.readouterr().err.strip() == error.format(path=path)
    assert len(model_calls) == 0


# -- recorded answers --------------------------------------------------------------------------------


@pytest.fixture
def fake_llm(monkeypatch: pytest.MonkeyPatch) -> Any:
    with FakeLLM() as fake:
        monkeypatch.setenv("AGENTFLOWS_LLM_BASE_URL", fake.base_url)
        monkeypatch.setenv("AGENTFLOWS_LLM_MODEL", "fake-model")
        monkeypatch.setenv("AGENTFLOWS_LLM_LIMIT_SCOPE", "process")
        yield fake


def test_a_recorded_eval_replays_with_no_network_call(
    fake_llm: FakeLLM, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    answers = tmp_path / "answers"
    recorded = run_evals(["quiz"], mode="record", answers=answers)
    calls = len(fake_llm.received)
    tape = AnswerTape.read(answers / "quiz.jsonl")
    assert recorded.passed and not recorded.offline
    assert calls == len(tape.answers) == 2 + 3 + 5 + 2  # decides, questions, and the rubric graded per case
    fake_llm.close()
    monkeypatch.setenv("AGENTFLOWS_LLM_BASE_URL", f"http://127.0.0.1:{free_port()}/v1")  # nothing listens

    assert main(["eval", "quiz", "--replay", "--answers", str(answers), "--json"]) == 0

    replayed = printed_report(capsys)
    assert len(fake_llm.received) == calls
    assert replayed["mode"] == "replay" and replayed["passed"]
    assert [c["model_calls"] for c in replayed["cases"]] == [c.model_calls for c in recorded.cases]
    rubric = next(a for a in replayed["cases"][0]["assertions"] if a["assertion"].startswith("rubric:"))
    assert rubric["passed"] == 1  # the grader's recorded answer, replayed


def test_a_replay_after_a_prompt_edit_says_to_record_again(
    definitions: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    answers = tmp_path / "answers"
    assert main(["--definitions", str(definitions), "eval", "quiz", "--record", "--answers", str(answers)]) == 0
    prompt = definitions / "prompts" / "quiz" / "generate.md"
    prompt.write_text(prompt.read_text(encoding="utf-8") + "\nKeep every choice under ten words.\n", encoding="utf-8")
    capsys.readouterr()

    assert main(["--definitions", str(definitions), "eval", "quiz", "--replay", "--answers", str(answers)]) == 1

    out = capsys.readouterr().out
    assert (
        f"run failed: quiz/generate/01-the-water-cycle-why-it-matters: no recorded answer in {answers / 'quiz.jsonl'} "
        "(its prompt changed since the recording); record the eval again"
    ) in out


def test_an_answers_file_that_is_not_one_is_named_with_its_line(tmp_path: Path) -> None:
    path = tmp_path / "quiz.jsonl"
    path.write_text('\n{"fingerprint": "x"}\n', encoding="utf-8")

    with pytest.raises(Exception, match=rf"^{path}:2: not a recorded answer \(Field required\)$"):
        AnswerTape.read(path)


# -- rubrics -----------------------------------------------------------------------------------------


class StrictGrader(OfflineProvider):
    """The offline answers for the agent's steps, from a provider that is not the offline one; fails every rubric."""

    name = "strict"

    async def complete(self, request: ModelRequest) -> ModelReply:
        reply = await super().complete(request)
        if "/eval/" not in request.label:
            return reply
        verdict = {"pass": False, "reason": "question 2 has two defensible answers"}
        return reply.model_copy(update={"text": json.dumps(verdict), "provider": self.name, "offline": False})


def test_a_rubric_is_graded_by_the_model_and_its_reason_reported(definitions: Path) -> None:
    quiz = definitions / "quiz.yaml"
    quiz.write_text(quiz.read_text().replace("model:\n", "model:\n  provider: strict\n", 1), encoding="utf-8")

    with using(strict=lambda settings: StrictGrader()):
        report = run_evals(["quiz"], definitions=definitions)

    assert not report.passed
    for case in report.cases:
        rubric = next(a for a in case.assertions if a.assertion.startswith("rubric:"))
        assert (rubric.failed, rubric.failures) == (1, ["the grader says: question 2 has two defensible answers"])
        assert [a.assertion for a in case.assertions if a.failed] == [rubric.assertion]


# -- eval files ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("cases: []\n", "quiz.yaml:1: cases: list should have at least 1 item after validation, not 0"),
        (
            "cases:\n  - name: a\n    inputs: {topic: Tides, questions: 300}\n",
            "quiz.yaml:3: cases[0].inputs: agent 'quiz': input 'questions'",
        ),
        (
            "cases:\n  - name: a\n    inputs: {topic: Tides}\n    assert:\n      - that: 'plan.items | length >'\n",
            "quiz.yaml:5: cases[0].assert[0].that: that 'plan.items | length >' is not a valid expression",
        ),
        (
            "assert:\n  - that: 'score > 1'\ncases:\n  - name: a\n    inputs: {topic: Tides}\n",
            "quiz.yaml:2: assert[0].that: that 'score > 1' uses variable 'score'",
        ),
        (
            "cases:\n  - name: a\n    inputs: {topic: Tides}\n    assert:\n      - file: index.html\n"
            "        contians: x\n",
            "quiz.yaml:6: cases[0].assert[0].contians: unknown key 'contians'; did you mean 'contains'?",
        ),
        (
            "cases:\n  - name: a\n    inputs: {topic: Tides}\n    assert:\n      - file: '*.py'\n",
            "quiz.yaml:5: cases[0].assert[0]: an assertion on a file has exactly one of contains, regex or parses",
        ),
        (
            "cases:\n  - name: a\n    inputs: {topic: Tides}\n    assert:\n      - file: index.html\n"
            "        regex: '(x'\n",
            "quiz.yaml:6: cases[0].assert[0].regex: '(x' is not a valid regular expression: missing ), unterminated",
        ),
        (
            "cases:\n  - name: a\n    inputs: {topic: Tides}\n  - name: a\n    inputs: {topic: Tides}\n",
            "quiz.yaml:4: cases[1].name: case name 'a' is used twice; names must be unique",
        ),
    ],
)
def test_a_mistake_in_an_eval_file_is_one_line_with_file_line_and_path(
    text: str, problem: str, definitions: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (definitions / "evals" / "quiz.yaml").write_text(text, encoding="utf-8")

    assert main(["validate", str(definitions)]) == 1
    assert main(["--definitions", str(definitions), "eval", "quiz"]) == 1

    validated, evaluated = capsys.readouterr().err.split("problem(s) found\n")
    assert f"{definitions / 'evals' / problem}" in validated.splitlines()[0]
    assert evaluated.splitlines()[0].startswith(f"{definitions / 'evals' / problem}")


def test_an_eval_file_for_no_agent_is_refused_by_validate(
    definitions: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (definitions / "evals" / "podcast.yaml").write_text("cases: [{name: a}]\n", encoding="utf-8")

    assert main(["validate", str(definitions)]) == 1

    assert capsys.readouterr().err.splitlines()[0] == (
        f"{definitions / 'evals' / 'podcast.yaml'}: eval file for agent 'podcast', but no agent has that name; "
        f"the agents are: {', '.join(sorted(SHIPPED_AGENTS))}"
    )


def test_an_agent_without_eval_cases_and_a_bad_command_line_are_one_line(
    definitions: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (definitions / "evals" / "ebook.yaml").unlink()

    assert main(["--definitions", str(definitions), "eval", "ebook"]) == 1
    assert main(["eval"]) == 1
    assert main(["eval", "quiz", "--all"]) == 1
    assert main(["eval", "quiz", "--repeat", "0"]) == 1

    assert capsys.readouterr().err.splitlines() == [
        f"error: agent 'ebook' has no eval cases; write them in {definitions / 'evals' / 'ebook.yaml'}",
        "error: name one agent, or give --all for every agent with eval cases",
        "error: name one agent, or give --all for every agent with eval cases",
        "error: repeat 0 is not a number of runs from 1 to 100",
    ]


# -- stored, and as a flow ------------------------------------------------------------------------------


def test_results_are_stored_one_row_per_case(any_store: StoreSettings) -> None:
    report = run_evals(["quiz", "lesson_plan"], mode="offline")

    rows = EvalResultStore(open_store().records).of_eval(report.eval_id)
    assert [(r.agent, r.case, r.runs, r.pass_rate, r.mode) for r in rows] == [
        (c.agent, c.case, 1, 1.0, "offline") for c in report.cases
    ]
    assert [r.case for r in EvalResultStore(open_store().records).history("quiz")] == [
        "photosynthesis_hard",
        "water_cycle",
    ]


@pytest.mark.usefixtures("prefect_server")
def test_the_eval_flow_shows_a_table_artifact_and_fails_on_a_regression(
    definitions: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AGENTFLOWS_DEFINITIONS", str(definitions))
    first = asyncio.run(agent_evals(agents=["quiz"], mode="offline"))
    assert first["passed"]
    (definitions / "evals" / "baseline.json").write_text(json.dumps(first), encoding="utf-8")
    without_quiz_heading(definitions)

    with pytest.raises(EvalFailed, match=r"0/2 runs passed \(0%\) in 2 cases, offline, 2 regressed; failing: quiz/"):
        asyncio.run(agent_evals(agents=["quiz"], mode="offline", baseline="evals/baseline.json"))

    artifacts = _artifacts()
    assert len(artifacts) == 2
    rows = json.loads(artifacts[0].data) if isinstance(artifacts[0].data, str) else artifacts[0].data
    assert [(r["case"], r["result"], r["baseline"]) for r in rows] == [
        ("quiz/water_cycle", "REGRESSION", "100%"),
        ("quiz/photosynthesis_hard", "REGRESSION", "100%"),
    ]
    stored = EvalResultStore(open_store().records).history("quiz", "water_cycle")
    assert [r.regression for r in stored] == [True, False]
    assert str(artifacts[0].flow_run_id) == stored[0].flow_run_id


def _artifacts() -> list[Any]:
    with get_client(sync_client=True) as client:
        found = client.read_artifacts(artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=[ARTIFACT_KEY])))
    return sorted(found, key=lambda a: a.created, reverse=True)


def test_prefect_yaml_deploys_the_eval_flow_with_a_typed_form() -> None:
    declared = next(
        d for d in yaml.safe_load((REPO / "prefect.yaml").read_text())["deployments"] if "evals" in d["entrypoint"]
    )
    deployment = RunnerDeployment.from_entrypoint(declared["entrypoint"], name="check")

    properties = deployment._parameter_openapi_schema.properties
    assert properties["mode"]["enum"] == ["offline", "live", "replay"]
    assert set(declared["parameters"]) <= set(properties)
    assert deployment.flow_name == "agent-evals"


def test_an_eval_file_that_links_out_of_the_definitions_folder_is_refused(
    definitions: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    outside = tmp_path / "elsewhere.yaml"
    outside.write_text((definitions / "evals" / "quiz.yaml").read_text(encoding="utf-8"), encoding="utf-8")
    (definitions / "evals" / "quiz.yaml").unlink()
    (definitions / "evals" / "quiz.yaml").symlink_to(outside)

    assert main(["--definitions", str(definitions), "eval", "quiz"]) == 1

    assert capsys.readouterr().err.strip() == (
        f"{definitions / 'evals' / 'quiz.yaml'}: the file is a link to {outside}, outside the definitions folder "
        f"{definitions.resolve()}; copy the file into the folder"
    )
