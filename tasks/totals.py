"""Item fields that add up to a declared total (`items.totals` in decide's `returns`).

A lesson's stage minutes must add up to the lesson's length. A model gets the parts
right more often than their sum (SmolLM2-135M's plans rarely added up: 40 minutes of
stages for a 30-minute lesson, re-ask after re-ask), and the sum is arithmetic, not judgement:
so a plan whose values do not add up is scaled to the total, each value in
proportion, rather than asked for again. Whole numbers stay whole (the remainder
goes to the values with the largest fractions); every value stays within its
field's `minimum`/`maximum`. What was changed is said in a warning. A plan that
cannot be scaled (values that sum to nothing, bounds the total cannot fit in) is
left as it is, for the step's checks to refuse.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from agentflows.tasks.errors import TemplateRenderError
from agentflows.tasks.parsing import Adjust
from agentflows.tasks.prompts import evaluate
from agentflows.tasks.specs import DecideSpec


@dataclass(frozen=True)
class Total:
    """One item field and what its values add up to."""

    field: str
    total: float
    whole: bool
    """Integer field: the scaled values are whole numbers."""
    low: float | None = None
    high: float | None = None


def fit_totals(payload: dict[str, Any], totals: Sequence[Total]) -> tuple[dict[str, Any], list[str]]:
    """`payload` (a plan) with each total's values scaled to add up, and a note for each one changed."""
    notes: list[str] = []
    items = payload.get("items")
    if not isinstance(items, list) or not totals:
        return payload, notes
    fitted = [dict(item) for item in items]
    for total in totals:
        found = [item.get(total.field) for item in fitted]
        values = [v for v in found if isinstance(v, int | float) and not isinstance(v, bool)]
        if len(values) != len(found):
            continue
        given = sum(values)
        if math.isclose(given, total.total):
            continue
        scaled_values = scaled(values, total)
        if scaled_values is None:
            continue
        for item, value in zip(fitted, scaled_values, strict=True):
            item[total.field] = value
        notes.append(
            f"scaled the items' {total.field} from {_number(given)} to {_number(total.total)}, the declared total"
        )
    return ({**payload, "items": fitted}, notes) if notes else (payload, notes)


def scaled(values: Sequence[float], total: Total) -> list[Any] | None:
    """`values` in proportion, adding up to `total.total` within its bounds, or None when they cannot."""
    given = sum(values)
    if given <= 0 or total.total <= 0 or any(v < 0 for v in values):
        return None
    if total.whole and not float(total.total).is_integer():
        return None
    shares = [v * total.total / given for v in values]
    result: list[Any] | None = _whole(shares, int(total.total)) if total.whole else shares
    bounded = [_bounded(v, total) for v in result or ()]
    if bounded != result:  # a value pushed to its bound: what that changed goes to the others
        result = _rebalanced(bounded, total)
    if result is None or not math.isclose(sum(result), total.total):
        return None
    return result


def plan_totals(spec: DecideSpec, inputs: Mapping[str, Any]) -> Adjust | None:
    """What scales a plan's item fields to their declared totals (`items.totals`), or None without any."""
    if not spec.items_totals:
        return None
    declared: dict[str, float] = {}
    for name, total in spec.items_totals.items():
        value = evaluate(total, {"inputs": inputs}) if isinstance(total, str) else total
        if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
            raise TemplateRenderError(
                f"{spec.agent_name}: items totals {name} {total!r} gave {value!r}; it must be a number above 0"
            )
        declared[name] = value
    totals = totals_from(declared, spec.item_schema)
    return lambda payload: fit_totals(payload, totals)


def totals_from(declared: Mapping[str, float], item_schema: Mapping[str, Any]) -> list[Total]:
    """The `Total` of each declared field, with its type and bounds read from the item's JSON Schema."""
    properties = item_schema.get("properties", {})
    return [
        Total(
            field=name,
            total=float(value),
            whole=properties.get(name, {}).get("type") == "integer",
            low=properties.get(name, {}).get("minimum"),
            high=properties.get(name, {}).get("maximum"),
        )
        for name, value in declared.items()
    ]


def _whole(shares: Sequence[float], target: int) -> list[int]:
    """Whole numbers near `shares` adding up to `target`: floors, then one more for the largest fractions."""
    floors = [math.floor(s) for s in shares]
    order = sorted(range(len(shares)), key=lambda i: shares[i] - floors[i], reverse=True)
    for index in order[: target - sum(floors)]:
        floors[index] += 1
    return floors


def _bounded(value: float, total: Total) -> Any:
    if total.low is not None and value < total.low:
        value = math.ceil(total.low) if total.whole else total.low
    if total.high is not None and value > total.high:
        value = math.floor(total.high) if total.whole else total.high
    return value


def _rebalanced(values: list[Any], total: Total) -> list[Any] | None:
    """`values` with the difference from the total moved onto those with room for it, largest first."""
    result = list(values)
    difference = total.total - sum(result)
    for index in sorted(range(len(result)), key=lambda i: result[i], reverse=True):
        if abs(difference) < 1e-9:
            break
        if difference > 0:
            room = math.inf if total.high is None else total.high - result[index]
        else:
            room = result[index] - (0 if total.low is None else total.low)
        move = min(abs(difference), room)
        if total.whole:
            move = math.floor(move)
        if move > 0:
            signed = move if difference > 0 else -move
            result[index] += signed
            difference -= signed
    return result if abs(difference) < 1e-9 else None


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:g}"
