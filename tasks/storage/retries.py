"""One retry policy for storage: the database and the object store wait out an outage the same way.

An operation that fails for a reason that may pass (the server or the network,
not the request) runs again after a pause, each of `RETRY_DELAYS` in turn; any
other failure, and the last one, reaches the caller as it was raised.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import TypeVar

T = TypeVar("T")
RETRY_DELAYS = (0.2, 0.5, 1.0)
"""Waits between attempts at a storage operation that failed for a transient reason."""


def retrying(
    operation: Callable[[], T], transient: Callable[[Exception], bool], delays: Sequence[float] = RETRY_DELAYS
) -> T:
    """The result of `operation`, run again after each of `delays` while it fails with a `transient` error."""
    for delay in (*delays, None):
        try:
            return operation()
        except Exception as exc:
            if delay is None or not transient(exc):
                raise
            time.sleep(delay)
    raise AssertionError("unreachable")
