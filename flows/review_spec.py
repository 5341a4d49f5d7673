"""The `review:` key of an agent definition: an editor reviews the plan after decide, before any draft.

    review:
      default: true          # runs pause for review unless they say `review: false` (default: false)
      timeout: 24h           # how long a paused run waits for a decision: seconds or 90s, 30m, 12h, 7d
      on_timeout: fail       # then: `fail` (the run ends Failed, nothing stored) or `approve` the plan as it is
      rounds: 3              # most plans an editor sees in one run: `revise` asks for one more

`review: true` is short for `review: {default: true}`. Whether a run is reviewed
is the flow's `review` parameter (`agentflows run … --review`); this key sets its
default and how a review waits.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from agentflows.durations import parse_duration
from agentflows.fields import Spec

MAX_TIMEOUT_SECONDS = 30 * 86_400


class ReviewSpec(Spec):
    """How an editor's review of the plan works for this agent."""

    default: bool = False
    """Whether a run pauses for review when it does not say (`review` parameter, `--review` on the CLI)."""
    timeout: int | float | str = "24h"
    """How long a paused run waits for a decision: seconds or e.g. '90s', '30m', '12h', '7d' (at most 30 days)."""
    on_timeout: Literal["fail", "approve"] = "fail"
    """What happens when nobody decides in time: the run ends Failed with nothing stored (`fail`), or the
    plan is approved as decide made it (`approve`; the run then keeps its process while it waits)."""
    rounds: int = Field(default=3, ge=1, le=10)
    """Most plans an editor is shown in one run: each `revise` asks decide for another, up to this many;
    the last round offers only approve and reject."""

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, value: Any) -> Any:
        return {"default": value} if isinstance(value, bool) else value

    @field_validator("timeout")
    @classmethod
    def _valid_timeout(cls, value: int | float | str) -> int | float | str:
        if parse_duration(value).total_seconds() > MAX_TIMEOUT_SECONDS:
            raise ValueError(f"review timeout {value!r} is longer than 30 days")
        return value

    @property
    def timeout_seconds(self) -> int:
        """The timeout in whole seconds (at least one)."""
        return max(1, round(parse_duration(self.timeout).total_seconds()))
