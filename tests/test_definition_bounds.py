"""Hostile definitions are refused with one line each, and cheaply: alias bombs, deep nesting, huge files,
and links that lead out of the definitions folder.

The alias bomb runs the real `agentflows list` in a child process with a cap on its address space, so
a loader that expanded the aliases would die of a MemoryError instead of printing the one line.
"""

from __future__ import annotations

import resource
import subprocess
import sys
from pathlib import Path

import pytest

from agentflows.catalog import load_agents
from agentflows.errors import DefinitionError
from agentflows.loader import MAX_DEFINITION_BYTES
from agentflows.templates import MAX_TEMPLATE_BYTES
from agentflows.yaml_source import MAX_DEPTH, MAX_REPEATED_VALUES
from tests.conftest import REPO
from tests.test_definition_errors import AGENT, BASE_FILES, BASE_YAML, DOMAIN, write_files

ADDRESS_SPACE = 2 * 1024**3
"""Cap on the child's address space: enough to import agentflows and Prefect, far from enough for a bomb."""


def alias_bomb(levels: int, width: int = 9) -> str:
    """`levels` lines of YAML, each a list of `width` aliases to the line before: width**levels values."""
    lines = ["a0: &a0 [" + ", ".join(['"lol"'] * width) + "]"]
    for level in range(1, levels):
        lines.append(f"a{level}: &a{level} [" + ", ".join([f"*a{level - 1}"] * width) + "]")
    return "\n".join(lines) + "\n"


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    """A valid definitions folder with one agent, `demo`."""
    target = tmp_path / "definitions"
    write_files(target, dict(BASE_FILES))
    return target


def problems_of(folder: Path) -> list[str]:
    with pytest.raises(DefinitionError) as caught:
        load_agents(folder)
    return [str(p) for p in caught.value.problems]


def limit_address_space() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (ADDRESS_SPACE, ADDRESS_SPACE))


def test_a_nine_level_alias_bomb_makes_list_fail_with_one_line(folder: Path, tmp_path: Path) -> None:
    bomb = folder / "bomb.yaml"
    bomb.write_text(alias_bomb(9))  # 9**9 = 387 million strings once expanded, from 300 bytes

    done = subprocess.run(
        [str(Path(sys.executable).with_name("agentflows")), "--definitions", str(folder), "list"],
        cwd=REPO,
        env={"AGENTFLOWS_HOME": str(tmp_path / "home"), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=120,  # a guard against a hang, not a measurement
        preexec_fn=limit_address_space,
    )

    assert done.returncode == 1 and done.stdout == ""
    # a0 holds 10 values with itself, a1 91, a2 820, a3 7,381: lines 2-4 repeat 8,289 values,
    # and the first *a3 on line 5 takes the count past the bound
    assert done.stderr.splitlines() == [
        f"{bomb}:5: invalid YAML: alias *a3 takes the values that aliases repeat past {MAX_REPEATED_VALUES:,}; "
        "a definition needs far fewer, so write them out or use fewer aliases"
    ]


def test_aliases_and_merge_keys_of_normal_size_still_load(folder: Path) -> None:
    yaml = BASE_YAML.replace("model:\n  temperature: 0.5\n", "model: &model\n  temperature: 0.5\n")
    yaml = yaml.replace(
        "    prompt: prompts/demo/decide.md\n",
        "    prompt: prompts/demo/decide.md\n    model: {<<: *model, max_tokens: 500}\n",
    )
    write_files(folder, {AGENT: yaml})

    decide = load_agents(folder)["demo"].definition.steps.decide

    assert decide.model is not None and (decide.model.temperature, decide.model.max_tokens) == (0.5, 500)


def test_values_nested_too_deep_are_refused_at_their_line(folder: Path) -> None:
    deep = "[" * (MAX_DEPTH + 10) + "]" * (MAX_DEPTH + 10)
    write_files(folder, {AGENT: BASE_YAML + f"nested:\n  - {deep}\n"})
    line = BASE_YAML.count("\n") + 2

    assert problems_of(folder) == [
        f"{folder / AGENT}:{line}: invalid YAML: values nest more than {MAX_DEPTH} levels deep here; "
        "a definition needs far fewer"
    ]


def test_a_definition_larger_than_the_bound_is_refused_without_being_parsed(folder: Path) -> None:
    filler = "# " + "x" * 97 + "\n"  # 100 bytes a line
    write_files(folder, {AGENT: BASE_YAML + filler * (MAX_DEFINITION_BYTES // 100 + 10)})
    line = BASE_YAML.count("\n") + (MAX_DEFINITION_BYTES - len(BASE_YAML.encode())) // 100 + 1

    assert problems_of(folder) == [
        f"{folder / AGENT}:{line}: the file is larger than the {MAX_DEFINITION_BYTES:,} bytes a definition may have "
        "(the limit falls on this line); move long text into its templates"
    ]


def test_a_template_larger_than_the_bound_is_refused_at_the_key_that_names_it(folder: Path) -> None:
    size = MAX_TEMPLATE_BYTES + 1
    write_files(folder, {DOMAIN: "x" * size})
    line = BASE_YAML[: BASE_YAML.index("  domain:")].count("\n") + 1

    assert problems_of(folder) == [
        f"{folder / AGENT}:{line}: prompts.domain: template {DOMAIN!r} has {size:,} bytes, "
        f"more than the {MAX_TEMPLATE_BYTES:,} a template may have"
    ]


def test_a_definition_linked_from_outside_the_folder_is_refused(folder: Path, tmp_path: Path) -> None:
    outside = tmp_path / "elsewhere" / "stolen.yaml"
    outside.parent.mkdir()
    outside.write_text(BASE_YAML.replace("name: demo", "name: stolen"))
    (folder / "stolen.yaml").symlink_to(outside)

    assert problems_of(folder) == [
        f"{folder / 'stolen.yaml'}: the file is a link to {outside}, outside the definitions folder {folder}; "
        "copy the file into the folder"
    ]


def test_a_link_that_stays_inside_the_folder_is_a_definition_like_any_other(folder: Path) -> None:
    (folder / "archive").mkdir()
    (folder / "archive" / "second.yaml").write_text(BASE_YAML.replace("name: demo", "name: second"))
    (folder / "second.yaml").symlink_to(folder / "archive" / "second.yaml")

    assert sorted(load_agents(folder)) == ["demo", "second"]


def test_a_template_linked_from_outside_the_folder_is_refused(folder: Path, tmp_path: Path) -> None:
    outside = tmp_path / "secret.md"
    outside.write_text("The secret.\n")
    (folder / DOMAIN).unlink()
    (folder / DOMAIN).symlink_to(outside)
    line = BASE_YAML[: BASE_YAML.index("  domain:")].count("\n") + 1

    assert problems_of(folder) == [
        f"{folder / AGENT}:{line}: prompts.domain: template {DOMAIN!r} is outside the definitions folder {folder}"
    ]
