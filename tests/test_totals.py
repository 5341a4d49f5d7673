"""Item fields scaled to their declared total (`items.totals`): in proportion, whole where the field is an
integer, within the field's bounds; a plan that cannot be scaled is left for the step's checks."""

from __future__ import annotations

from typing import Any

import pytest

from agentflows.tasks.totals import Total, fit_totals, scaled

MINUTES = Total("minutes", 30, whole=True, low=2, high=90)


def plan(*minutes: Any) -> dict[str, Any]:
    return {"title": "Tides", "items": [{"title": f"Stage {n}", "minutes": m} for n, m in enumerate(minutes)]}


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ([10, 15, 20], [7, 10, 13]),  # 45 → 30, the remainder to the largest fractions
        ([5, 5, 5], [10, 10, 10]),  # too few minutes: scaled up as well
        ([1, 1, 40], [2, 2, 26]),  # two pushed up to the minimum of 2: the largest gives way
        ([10, 10, 10], [10, 10, 10]),
    ],
)
def test_whole_minutes_are_scaled_in_proportion_within_their_bounds(values: list[int], expected: list[int]) -> None:
    result = scaled(values, MINUTES)

    assert result == expected and sum(result) == 30
    assert all(isinstance(v, int) for v in result)


def test_a_number_field_is_scaled_exactly() -> None:
    assert scaled([1.0, 3.0], Total("hours", 2.0, whole=False)) == [0.5, 1.5]


@pytest.mark.parametrize(
    ("values", "total"),
    [
        ([0, 0, 0], MINUTES),  # nothing to scale
        ([5, 5], Total("minutes", 30, whole=True, low=2, high=10)),  # two stages of at most 10 cannot hold 30
        ([5, 5], Total("minutes", 2, whole=True, low=2, high=90)),  # two stages of at least 2 cannot fit in 2
        ([5, 5], Total("minutes", 7.5, whole=True)),  # whole minutes cannot add up to 7.5
    ],
)
def test_values_that_cannot_be_scaled_are_left_as_they_are(values: list[float], total: Total) -> None:
    assert scaled(values, total) is None
    assert fit_totals(plan(*values), [total]) == (plan(*values), [])


def test_a_plan_is_fitted_with_a_note_and_the_answer_it_came_from_is_left_alone() -> None:
    answer = plan(10, 35)

    fitted, notes = fit_totals(answer, [MINUTES])

    assert [i["minutes"] for i in fitted["items"]] == [7, 23] and fitted["title"] == "Tides"
    assert notes == ["scaled the items' minutes from 45 to 30, the declared total"]
    assert [i["minutes"] for i in answer["items"]] == [10, 35]


def test_a_plan_that_adds_up_or_lacks_the_field_is_not_changed() -> None:
    assert fit_totals(plan(10, 20), [MINUTES]) == (plan(10, 20), [])
    assert fit_totals(plan(10, "twenty"), [MINUTES]) == (plan(10, "twenty"), [])
