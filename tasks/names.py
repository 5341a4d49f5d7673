"""Names made from free text: file names, plan item keys, Prefect artifact and limit names, run names.

One rule serves all the machine names (`slug`), so a title gives the same name
wherever it is used: lower case, every run of anything but ASCII letters and
digits one hyphen, no hyphen at either end, at most `limit` characters. Names
people read (flow runs, manifest components) keep their words (`shortened`):
one space between words, cut at a word boundary with an ellipsis.
"""

from __future__ import annotations

import re

FALLBACK = "item"
"""The slug of a text with no letter or digit in it."""


def slug(text: str, limit: int = 48) -> str:
    """`"How It Works!"` → `how-it-works`: lower-case, hyphenated, safe in a file name or a Prefect name."""
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:limit].strip("-") or FALLBACK


def item_key(index: int, title: str) -> str:
    """`03-how-it-works`: position plus a slug of the title; unique within a plan."""
    return f"{index + 1:02d}-{slug(title, 32)}"


ELLIPSIS = "…"


def shortened(text: str, limit: int = 80) -> str:
    """`text` on one line, at most `limit` characters, cut after a whole word and marked with "…".

    A first word longer than the limit is cut inside it (there is no boundary to cut at);
    punctuation left dangling at the cut (`,`, `;`, `:`, `-`) goes.
    """
    flat = " ".join(text.split())
    if len(flat) <= limit:
        return flat
    room = flat[: max(limit - len(ELLIPSIS), 1)]
    cut = room.rsplit(" ", 1)[0] if " " in room and flat[len(room)] != " " else room
    return cut.rstrip(" ,;:-–—") + ELLIPSIS
