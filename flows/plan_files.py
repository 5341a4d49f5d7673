"""Plan files: a plan as an editor writes it, for `agentflows approve --plan FILE` and `agentflows rerun --plan FILE`.

    # plan.yaml — what `agentflows review RUN_ID` prints for a paused run
    title: How tides work
    objectives: [Explain what causes tides, Read a tide table]     # the plan-level fields, by name
    items:                                                          # in order; each needs a title
      - {title: Warm-up, stage: warm-up, minutes: 5}
      - {title: The Moon's pull, stage: instruction, minutes: 15}

JSON is YAML too. Item keys are not written: they follow from each item's
position and title, as decide makes them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from agentflows.errors import InputError
from agentflows.tasks.review import PlanContent

RUN_HEADER = "# Edit, then: agentflows approve {run_id} --plan FILE\n"
CONTENT_HEADER = "# Edit, then: agentflows rerun {content_id} --from generate --plan FILE\n"


def read_plan_file(path: Path | str) -> PlanContent:
    """The plan in the YAML or JSON file at `path`; `InputError` names the file and what is wrong."""
    where = Path(path)
    try:
        data = yaml.safe_load(where.read_text(encoding="utf-8"))
    except OSError as exc:
        raise InputError(f"--plan {str(where)!r} cannot be read: {exc.strerror or exc}") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f":{mark.line + 1}" if mark is not None else ""
        raise InputError(f"{where}{line}: not valid YAML or JSON ({getattr(exc, 'problem', None) or exc})") from None
    return plan_from_data(data, str(where))


def plan_from_data(data: Any, where: str) -> PlanContent:
    """The plan in `data`, a plan file's mapping (`items` may also be called `plan_items`, as in the form)."""
    if not isinstance(data, dict) or "title" not in data:
        raise InputError(f"{where}: a plan file is a mapping with `title`, the plan's fields and `items`")
    fields = dict(data)
    title = fields.pop("title")
    items = fields.pop("items", fields.pop("plan_items", None))
    if not isinstance(items, list) or not all(isinstance(i, dict) and "title" in i for i in items):
        raise InputError(f"{where}: `items` must be a list of mappings, each with a `title`")
    try:
        return PlanContent(title=str(title), fields=fields, items=tuple(items))
    except ValidationError as exc:
        first = exc.errors()[0]
        raise InputError(f"{where}: {'.'.join(map(str, first['loc']))}: {first['msg']}") from None


def plan_file_text(content: PlanContent, run_id: str | None = None, content_id: str | None = None) -> str:
    """`content` as a plan file (YAML), with a first line that says what to do with it: approve the waiting
    run `run_id`, or rework the stored content `content_id`."""
    body = yaml.safe_dump(content.view(), sort_keys=False, allow_unicode=True, width=100)
    if content_id is not None:
        return CONTENT_HEADER.format(content_id=content_id) + body
    return RUN_HEADER.format(run_id=run_id or "RUN_ID") + body
