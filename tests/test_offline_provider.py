"""The offline provider, driven through the real decide and generate steps of every
shipped agent: schema-valid, exact plan sizes, deterministic, traceable, and
content a builder accepts (valid answer indexes, safe paths, full table rows)."""

from __future__ import annotations

import asyncio
import hashlib
import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from agentflows import load_agents
from agentflows.tasks.artifacts import checksum_of
from agentflows.tasks.builders import check_draft, data_report
from agentflows.tasks.builders.code_tree import path_problem
from agentflows.tasks.llm import Message, ModelRequest, ModelSettings, OfflineProvider
from agentflows.tasks.llm.offline import MODEL_NAME
from agentflows.tasks.parsing import schema_problems
from agentflows.tasks.steps import item_bounds, plan_schema
from tests.conftest import REPO, SHIPPED_AGENTS
from tests.offline_steps import OfflineRun, offline_run


def plan_payload(run: OfflineRun) -> dict[str, Any]:
    """The plan as the model answered it (before it became a `Plan`)."""
    items = [{"title": item.title, **item.fields} for item in run.plan.items]
    return {"title": run.plan.title, "items": items, **run.plan.fields}


def test_every_shipped_agent_is_covered() -> None:
    assert sorted(load_agents()) == sorted(SHIPPED_AGENTS)


@pytest.mark.parametrize("agent", SHIPPED_AGENTS)
def test_plan_and_drafts_satisfy_the_step_schemas_and_builder_checks(agent: str) -> None:
    run = offline_run(agent)
    schema = plan_schema(run.specs.decide, *item_bounds(run.specs.decide, run.inputs))

    assert schema_problems(plan_payload(run), schema) == []
    assert [d.item_key for d in run.drafts] == [item.key for item in run.plan.items]
    for draft in run.drafts:
        assert schema_problems(draft.fields, run.specs.generate.draft_schema) == []
        item = run.plan.item(draft.item_key)
        assert check_draft(run.specs.generate.builder, {**item.fields, **draft.fields}) == []


@pytest.mark.parametrize(
    ("agent", "inputs", "count"),
    [
        ("ebook", {"chapters": 3}, 3),
        ("ebook", {"chapters": 1}, 1),
        ("ebook", {"chapters": 12}, 12),
        ("lesson_plan", {"stages": 8}, 8),
        ("quiz", {"questions": 20}, 20),
        ("data_report", {"sections": 6}, 6),
    ],
)
def test_plan_has_exactly_the_number_of_items_the_inputs_ask_for(
    agent: str, inputs: dict[str, Any], count: int
) -> None:
    run = offline_run(agent, **inputs)

    assert len(run.plan.items) == len(run.drafts) == count
    assert len({item.key for item in run.plan.items}) == count
    assert len({item.title for item in run.plan.items}) == count


def test_plan_without_a_count_stays_within_its_bounds() -> None:
    run = offline_run("api_scaffold")

    assert run.specs.decide.items_count is None
    assert run.specs.decide.items_min <= len(run.plan.items) <= run.specs.decide.items_max


@pytest.mark.parametrize("agent", SHIPPED_AGENTS)
def test_same_inputs_give_equal_artifacts(agent: str) -> None:
    first, second = offline_run(agent), offline_run(agent)

    assert first.plan == second.plan
    assert first.drafts == second.drafts
    assert first.build().checksum == second.build().checksum


@pytest.mark.slow
def test_answers_do_not_depend_on_the_process(tmp_path: Path) -> None:
    script = (
        "from tests.offline_steps import offline_run\n"
        "run = offline_run('data_report')\n"
        "print(run.plan.checksum, *(d.checksum for d in run.drafts))\n"
    )
    run = offline_run("data_report")
    expected = " ".join([run.plan.checksum, *(d.checksum for d in run.drafts)])

    for seed in ("1", "2"):
        env = {
            "PYTHONHASHSEED": seed,
            "PATH": "/usr/bin:/bin",
            "AGENTFLOWS_HOME": str(tmp_path),
            "PREFECT_HOME": str(tmp_path / "prefect"),
        }
        result = subprocess.run(
            [sys.executable, "-c", script], cwd=REPO, env=env, capture_output=True, text=True, check=True
        )
        assert result.stdout.split() == expected.split()


def test_a_different_topic_gives_different_content() -> None:
    tides, volcanoes = offline_run("ebook", topic="How tides work"), offline_run("ebook", topic="Volcanoes")

    assert tides.plan.title == "How tides work" and volcanoes.plan.title == "Volcanoes"
    assert tides.plan.checksum != volcanoes.plan.checksum
    for tide, volcano in zip(tides.drafts, volcanoes.drafts, strict=True):
        assert "How tides work" in str(tide.fields["body"]) and "Volcanoes" not in str(tide.fields["body"])
        assert "Volcanoes" in str(volcano.fields["body"])
    assert tides.build().checksum != volcanoes.build().checksum


def test_drafts_of_one_plan_differ_from_each_other() -> None:
    run = offline_run("ebook", chapters=4)

    assert len({str(d.fields["body"]) for d in run.drafts}) == 4


@pytest.mark.parametrize("agent", SHIPPED_AGENTS)
def test_provenance_says_offline_and_chains_checksums(agent: str) -> None:
    run = offline_run(agent)
    definition = load_agents()[agent].definition

    for artifact, step in [(run.plan, "decide"), *((d, "generate") for d in run.drafts)]:
        p = artifact.provenance
        assert (p.agent, p.agent_version, p.step) == (agent, definition.version, step)
        assert (p.offline, p.provider, p.model) == (True, "offline", MODEL_NAME)
        assert p.usage.calls == 1 and p.usage.prompt_tokens > 0 and p.usage.completion_tokens > 0
        assert artifact.checksum == checksum_of(artifact)
    assert set(run.plan.provenance.template_hashes) == set(run.specs.decide.templates)
    assert run.specs.decide.prompt in run.plan.provenance.template_hashes
    assert all(d.provenance.parent_checksum == run.plan.checksum for d in run.drafts)
    assert re.fullmatch(r"[0-9a-f]{64}", run.plan.provenance.parent_checksum or "")

    built = run.build()
    chained = hashlib.sha256("".join([run.plan.checksum, *(d.checksum for d in run.drafts)]).encode()).hexdigest()
    assert built.provenance.parent_checksum == chained
    assert built.provenance.offline is True and built.provenance.step == "build"


def test_plan_parent_checksum_follows_the_request() -> None:
    assert (
        offline_run("quiz").plan.provenance.parent_checksum
        != offline_run("quiz", topic="Volcanoes").plan.provenance.parent_checksum
    )


def test_quiz_answers_are_valid_indexes_of_distinct_choices() -> None:
    run = offline_run("quiz", questions=20)

    answers = []
    for draft in run.drafts:
        choices, answer = draft.fields["choices"], draft.fields["answer"]
        assert isinstance(choices, list) and isinstance(answer, int)
        assert 3 <= len(choices) <= 5 and len(set(choices)) == len(choices)
        assert 0 <= answer < len(choices)
        assert str(choices[answer]).endswith("is part of The water cycle.")
        assert draft.title in str(draft.fields["question"])
        answers.append(answer)
    assert len(set(answers)) > 1, "the right answer should not always be in the same place"


def test_code_paths_are_safe_distinct_and_match_their_code() -> None:
    run = offline_run("api_scaffold")

    paths = [str(item.fields["path"]) for item in run.plan.items]
    assert len(set(paths)) == len(paths)
    for item, draft in zip(run.plan.items, run.drafts, strict=True):
        path, code = str(item.fields["path"]), str(draft.fields["code"])
        assert path_problem(path) is None
        if path.endswith(".py"):
            assert draft.fields["language"] == "python"
            compile(code, path, "exec")
        elif path.endswith(".md"):
            assert draft.fields["language"] == "markdown" and code.startswith("# ")


def test_more_files_than_path_examples_still_get_distinct_safe_paths(definitions: Path) -> None:
    yaml_file = definitions / "api_scaffold.yaml"
    yaml_file.write_text(
        yaml_file.read_text().replace("min: 4\n        max: 6\n", "min: 7\n        max: 10\n"), encoding="utf-8"
    )

    run = offline_run("api_scaffold", root=definitions)

    paths = [str(item.fields["path"]) for item in run.plan.items]
    assert len(paths) == 7 and len(set(paths)) == 7
    assert all(path_problem(p) is None for p in paths)
    assert {f.path for f in run.build().files} >= set(paths)


def test_data_rows_have_one_cell_per_column_and_a_numeric_y() -> None:
    run = offline_run("data_report", sections=4)

    for draft in run.drafts:
        columns, rows, chart = draft.fields["columns"], draft.fields["rows"], draft.fields["chart"]
        assert isinstance(columns, list) and isinstance(rows, list) and isinstance(chart, dict)
        assert len(set(columns)) == len(columns) >= 2
        assert rows and all(isinstance(row, dict) and list(row) == ["label", "value"] for row in rows)
        assert chart == {"kind": chart["kind"]} and len(columns) == 2  # charted: first column on x, second on y
        assert all(isinstance(row["value"], int | float) for row in rows)
        assert data_report.check(draft.fields) == []


def test_table_columns_are_distinct_without_examples_to_copy(definitions: Path) -> None:
    yaml_file = definitions / "data_report.yaml"
    text = yaml_file.read_text(encoding="utf-8")
    without_examples = re.sub(r"\n +examples: \[\[Month.*\n", "\n", text)
    assert without_examples != text
    yaml_file.write_text(without_examples, encoding="utf-8")

    for subject in ("rainfall in Lisbon", "visitors to a museum", "energy use of a school"):
        run = offline_run("data_report", root=definitions, subject=subject, sections=6)
        for draft in run.drafts:
            columns = draft.fields["columns"]
            assert isinstance(columns, list) and len(set(columns)) == len(columns)


def test_list_fields_hold_different_entries() -> None:
    run = offline_run("lesson_plan")

    for name in ("objectives", "materials"):
        entries = run.plan.fields[name]
        assert isinstance(entries, list) and entries
        assert len(set(entries)) == len(entries), f"{name} repeats an entry: {entries}"


def test_reply_is_json_of_the_answer_and_usage_counts_the_text() -> None:
    schema = {"type": "object", "properties": {"title": {"type": "string"}}, "required": ["title"]}
    request = ModelRequest(
        label="demo/decide",
        messages=(Message(role="user", content="x" * 400),),
        settings=ModelSettings(),
        output_schema=schema,
        context={"inputs": {"topic": "Bees"}},
    )

    reply = asyncio.run(OfflineProvider().complete(request))

    assert json.loads(reply.text) == {"title": "Bees"}
    assert reply.offline is True and reply.usage.prompt_tokens == 101
