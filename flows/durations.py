"""Durations as definitions and the CLI write them: `90`, `"90s"`, `"30m"`, `"12h"`, `"7d"`."""

from __future__ import annotations

import re
from datetime import timedelta


def parse_duration(value: int | float | str, *, allow_zero: bool = False) -> timedelta:
    """Parse `90`, `"90s"`, `"30m"`, `"12h"` or `"7d"` into a timedelta (zero only when allowed)."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        seconds = float(value)
    else:
        match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smhd]?)\s*", str(value))
        if not match:
            raise ValueError(f"{value!r} is not a duration; use seconds or e.g. '90s', '30m', '12h', '7d'")
        unit = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}[match.group(2)]
        seconds = float(match.group(1)) * unit
    if seconds < 0 or (seconds == 0 and not allow_zero):
        raise ValueError(f"{value!r} is not a positive duration")
    return timedelta(seconds=seconds)
