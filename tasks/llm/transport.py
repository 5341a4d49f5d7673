"""Transport policy of the HTTP client: which failures to retry, how long to wait, when to stop.

Contracts:
- connection errors, timeouts, 408, 409, 429 and 5xx are retried; every other
  4xx fails at once;
- the wait before retry `n` (0-based) is drawn uniformly from
  `0 .. min(cap, base * 2**n)` ("full jitter"), unless the server sent
  `Retry-After` (seconds or an HTTP date), which is honoured up to its own cap;
- a circuit breaker per endpoint opens after `threshold` consecutive failed
  calls, fails fast while open, and after `reset_seconds` lets one probe through:
  its success closes the breaker, its failure opens it again.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

from agentflows.tasks.llm.settings import ProviderSettings

RETRYABLE_STATUSES = frozenset({408, 409, 429})


def is_retryable_status(status: int) -> bool:
    """True for statuses a later attempt may pass: 408, 409, 429 and every 5xx."""
    return status in RETRYABLE_STATUSES or 500 <= status <= 599


def backoff_delay(retry: int, settings: ProviderSettings, rng: random.Random | None = None) -> float:
    """Full-jitter delay before retry number `retry` (0-based)."""
    ceiling = min(settings.backoff_cap_seconds, settings.backoff_seconds * 2**retry)
    return (rng or random).uniform(0, ceiling)


def retry_after_seconds(header: str | None, now: datetime | None = None) -> float | None:
    """Seconds a `Retry-After` header asks for (a number or an HTTP date), or None when absent or unreadable."""
    if header is None or not header.strip():
        return None
    text = header.strip()
    try:
        return max(0.0, float(text))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


def wait_before_retry(retry: int, header: str | None, settings: ProviderSettings) -> float:
    """How long to wait before retry `retry`: the server's `Retry-After` (capped) or full-jitter backoff."""
    asked = retry_after_seconds(header)
    if asked is not None:
        return min(asked, settings.retry_after_cap_seconds)
    return backoff_delay(retry, settings)


@dataclass
class CircuitBreaker:
    """Per-endpoint breaker: closed → open after repeated failures → one probe → closed or open again."""

    threshold: int
    reset_seconds: float
    failures: int = 0
    opened_at: float | None = None
    probing: bool = False
    clock: Callable[[], float] = field(default=time.monotonic, repr=False)

    def _now(self) -> float:
        return self.clock()

    def allow(self) -> bool:
        """Whether a call may go out now (an open breaker lets one probe through after its reset time)."""
        if self.opened_at is None:
            return True
        if not self.probing and self._now() - self.opened_at >= self.reset_seconds:
            self.probing = True
            return True
        return False

    def retry_in(self) -> float:
        """Seconds until an open breaker lets a probe through."""
        if self.opened_at is None:
            return 0.0
        return max(0.0, self.reset_seconds - (self._now() - self.opened_at))

    def record_success(self) -> None:
        self.failures, self.opened_at, self.probing = 0, None, False

    def record_failure(self) -> None:
        self.failures += 1
        if self.probing or self.failures >= self.threshold:
            self.opened_at, self.probing = self._now(), False
