"""Names made from free text: file names, plan item keys, Prefect artifact and limit names.

One rule serves all of them, so a title gives the same name wherever it is used:
lower case, every run of anything but ASCII letters and digits one hyphen, no
hyphen at either end, at most `limit` characters.
"""

from __future__ import annotations

import re

FALLBACK = "item"
"""The slug of a text with no letter or digit in it."""


def slug(text: str, limit: int = 48) -> str:
    """`"How It Works!"` → `how-it-works`: lower-case, hyphenated, safe in a file name or a Prefect name."""
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:limit].strip("-") or FALLBACK
