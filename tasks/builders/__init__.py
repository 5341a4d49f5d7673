"""Builders: the `build` step's ways of turning drafts into finished content.

A builder is a module with five names:

- `REQUIRES`: the draft fields it reads, as `{name: (type, format)}`; the loader
  checks that a definition's `generate.returns` (or its plan items) declare them;
- `LAYOUT_VARIABLES`: the variables its layout template receives, besides the
  common ones (`agent`, `inputs`, `plan`, `title`, `offline`, `notice`);
- `check_plan(items)`: problems with the plan's items, as a whole, that the model
  could fix when asked again in `decide` (two items writing one file), so that no
  draft is paid for a plan the build would refuse;
- `check(fields)`: problems with one draft a model could fix when asked again;
- `assemble(job)`: the files, primary file and metadata of the content.

Every finished file then passes the checks of its kind (`file_checks`: Python
parses, tests have a test, JSON, TOML and YAML parse) or the build fails.
Builders make no model call and do no I/O.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from types import ModuleType
from typing import Any, Literal, get_args

from agentflows.tasks.artifacts import BuiltContent, ContentType, Provenance
from agentflows.tasks.builders import code_tree, data_report, document, quiz_page
from agentflows.tasks.builders.common import COMMON_LAYOUT_VARIABLES, BuildJob
from agentflows.tasks.builders.file_checks import file_problems
from agentflows.tasks.errors import BuildError

BuilderName = Literal["document", "code_tree", "quiz_page", "data_report"]
BUILDERS: dict[str, ModuleType] = {
    "document": document,
    "code_tree": code_tree,
    "quiz_page": quiz_page,
    "data_report": data_report,
}
DEFAULT_BUILDER: dict[ContentType, BuilderName] = {
    ContentType.text: "document",
    ContentType.mixed: "document",
    ContentType.file: "code_tree",
    ContentType.code: "code_tree",
    ContentType.chart: "data_report",
    ContentType.interactive: "quiz_page",
}
assert set(BUILDERS) == set(get_args(BuilderName))


def required_fields(builder: str) -> Mapping[str, tuple[str, str | None]]:
    """Draft fields `builder` reads, with their type and string format."""
    return BUILDERS[builder].REQUIRES


def layout_variables(builder: str) -> frozenset[str]:
    """Every variable `builder`'s layout template receives."""
    return COMMON_LAYOUT_VARIABLES | BUILDERS[builder].LAYOUT_VARIABLES


def check_plan(builder: str, items: Sequence[Mapping[str, Any]]) -> list[str]:
    """Problems with a plan's items (each item's fields, its title included)."""
    return BUILDERS[builder].check_plan(items)


def check_draft(builder: str, fields: Mapping[str, Any]) -> list[str]:
    """Problems with one draft's fields (plan item fields included)."""
    return BUILDERS[builder].check(fields)


def build_content(builder: str, job: BuildJob, provenance: Provenance) -> BuiltContent:
    """Assemble `job` with `builder` into sealed `BuiltContent`; refuse files that fail their checks."""
    assembly = BUILDERS[builder].assemble(job)
    problems = [problem for f in assembly.files for problem in file_problems(f.path, f.text)]
    if problems:
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        raise BuildError(f"{job.agent.get('name', builder)}: the built content fails its checks: {problems[0]}{more}")
    return BuiltContent(
        content_type=job.content_type,
        title=job.plan.title,
        primary=assembly.primary,
        files=assembly.files,
        metadata={**assembly.metadata, "builder": builder, "offline": job.offline},
        provenance=provenance,
    ).sealed()


__all__ = [
    "BUILDERS",
    "DEFAULT_BUILDER",
    "BuildJob",
    "BuilderName",
    "build_content",
    "check_draft",
    "check_plan",
    "layout_variables",
    "required_fields",
]
