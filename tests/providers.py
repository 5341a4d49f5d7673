"""Model providers for tests: real `ModelProvider` implementations, no mocks.

`using(name=factory, …)` runs the code inside it on a runtime with those providers
(`offline=…` replaces the built-in one), the way a plugin would give its own.

`RecordingProvider` answers like the offline provider and records every call
(label and time), so tests count model calls independently of agentflows' own
bookkeeping. `FlakyProvider` fails a given number of times per call label before
answering.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from agentflows.tasks.artifacts import Usage
from agentflows.tasks.errors import ModelCallError
from agentflows.tasks.llm import ModelReply, ModelRequest, OfflineProvider
from agentflows.tasks.runtime import ProviderFactory, Runtime


@dataclass(frozen=True)
class Call:
    """One model call a provider received."""

    label: str
    started: float
    ended: float


@dataclass
class CallLog:
    """Calls received, in order."""

    calls: list[Call] = field(default_factory=list)

    def labels(self) -> list[str]:
        return [c.label for c in self.calls]

    def steps(self) -> list[str]:
        """The step of each call (`decide` or `generate`)."""
        return [c.label.split("/")[1] for c in self.calls]

    def __len__(self) -> int:
        return len(self.calls)


class RecordingProvider:
    """The offline provider's answers, with every call written to a `CallLog`."""

    name = "offline"
    context_window = OfflineProvider.context_window
    default_model = OfflineProvider.default_model

    def __init__(self, log: CallLog) -> None:
        self.log = log
        self.offline = OfflineProvider()

    async def complete(self, request: ModelRequest) -> ModelReply:
        started = time.monotonic()
        reply = await self.offline.complete(request)
        self.log.calls.append(Call(request.label, started, time.monotonic()))
        return reply


class FlakyProvider(RecordingProvider):
    """Fails `failures` times for each label whose step is in `steps`, then answers."""

    def __init__(self, log: CallLog, *, failures: int, steps: tuple[str, ...], retryable: bool = True) -> None:
        super().__init__(log)
        self.failures = failures
        self.steps = steps
        self.retryable = retryable
        self.seen: dict[str, int] = {}

    async def complete(self, request: ModelRequest) -> ModelReply:
        step = request.label.split("/")[1]
        count = self.seen.get(request.label, 0)
        self.seen[request.label] = count + 1
        if step in self.steps and count < self.failures:
            self.log.calls.append(Call(request.label, time.monotonic(), time.monotonic()))
            raise ModelCallError(f"{request.label}: scripted failure {count + 1}", retryable=self.retryable)
        return await super().complete(request)


class ScriptedProvider:
    """Answers with the given texts in order; records every request it got."""

    name = "scripted"
    context_window = 100_000
    default_model = "scripted-1"

    def __init__(self, texts: list[str]) -> None:
        self.texts = list(texts)
        self.requests: list[ModelRequest] = []

    async def complete(self, request: ModelRequest) -> ModelReply:
        self.requests.append(request)
        text = self.texts.pop(0) if self.texts else ""
        return ModelReply(
            text=text,
            provider=self.name,
            model="scripted-1",
            usage=Usage(calls=1, prompt_tokens=10, completion_tokens=len(text) // 4),
        )


@contextmanager
def using(**providers: ProviderFactory) -> Iterator[Runtime]:
    """A runtime of the current environment with `providers`, active inside the block."""
    with Runtime.from_environment(providers=providers).active() as runtime:
        yield runtime
