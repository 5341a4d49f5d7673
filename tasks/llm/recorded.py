"""Recorded model answers: capture a real endpoint's answers once, answer from them later with no network.

    AnswerTape               the answers, by request fingerprint in the order they were given; a JSON Lines file
    RecordingProvider        answers through another provider and keeps every answer on a tape
    ReplayProvider           answers from a tape only: no network, no model; a request it has no answer for fails

A request's fingerprint is the sha256 of what its answer depends on: its label
(`quiz/generate/02-…`), its messages (system prompt, user prompt, re-asks) and
the JSON Schema it asks for. The model's name is not part of it, so a recording
replays under any model settings; a prompt edited since recording has no answer,
and the replay says to record again. The same request asked several times (the
repeats of an eval) gets the answers recorded for it in turn.

One line of the file is one answer: `{"fingerprint", "label", "text", "provider",
"model", "offline", "finish_reason", "usage"}`; the file is written whole when a recording
ends, so an interrupted recording leaves the previous file as it was.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
from collections import defaultdict
from collections.abc import Iterable
from pathlib import Path

from pydantic import BaseModel, ConfigDict, ValidationError

from agentflows.tasks.artifacts import Usage
from agentflows.tasks.errors import ConfigurationError, ModelCallError
from agentflows.tasks.llm.base import ModelProvider, ModelReply, ModelRequest

REPLAY_CONTEXT_WINDOW = 1_000_000
"""A replay fits any prompt: the recorded model already answered it."""


class RecordedAnswer(BaseModel):
    """One answer as the model gave it, and the request it answered."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    fingerprint: str
    label: str
    text: str
    provider: str
    model: str
    offline: bool = False
    """True when the built-in offline provider wrote it (a replay says so, as the original did)."""
    finish_reason: str = ""
    usage: Usage = Usage()


def fingerprint(request: ModelRequest) -> str:
    """sha256 of what an answer depends on: label, messages and the schema asked for."""
    key = {
        "label": request.label,
        "messages": [[m.role, m.content] for m in request.messages],
        "schema": request.output_schema,
    }
    return hashlib.sha256(json.dumps(key, sort_keys=True, ensure_ascii=False).encode()).hexdigest()


class AnswerTape:
    """Recorded answers by fingerprint; `next_for` hands each request's answers out in turn."""

    def __init__(self, answers: Iterable[RecordedAnswer] = (), source: str = "") -> None:
        self.answers: list[RecordedAnswer] = list(answers)
        self.source = source
        """Where the answers came from (a file), for messages."""
        self._lock = threading.Lock()
        self._given: dict[str, int] = defaultdict(int)

    @classmethod
    def read(cls, path: Path) -> AnswerTape:
        """The answers recorded in `path`; `ConfigurationError` naming the file and line when it cannot be read."""
        try:
            lines = path.read_text(encoding="utf-8").splitlines()
        except FileNotFoundError:
            raise ConfigurationError(f"no recorded answers at {path}; record them first with --record") from None
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigurationError(f"cannot read recorded answers {path}: {exc}") from None
        answers = []
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            try:
                answers.append(RecordedAnswer.model_validate_json(line))
            except ValidationError as exc:
                problem = exc.errors()[0]["msg"]
                raise ConfigurationError(f"{path}:{number}: not a recorded answer ({problem})") from None
        return cls(answers, str(path))

    def write(self, path: Path) -> None:
        """Write every answer to `path` at once (a new file replaces the old one only when complete)."""
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_name(f".{path.name}.{os.getpid()}.partial")
        partial.write_text("".join(a.model_dump_json() + "\n" for a in self.answers), encoding="utf-8")
        partial.replace(path)

    def add(self, request: ModelRequest, reply: ModelReply) -> None:
        answer = RecordedAnswer(
            fingerprint=fingerprint(request),
            label=request.label,
            text=reply.text,
            provider=reply.provider,
            model=reply.model,
            offline=reply.offline,
            finish_reason=reply.finish_reason,
            usage=reply.usage,
        )
        with self._lock:
            self.answers.append(answer)

    def next_for(self, request: ModelRequest) -> RecordedAnswer:
        """The next answer recorded for `request`; `ModelCallError` when there is none."""
        key = fingerprint(request)
        with self._lock:
            recorded = [a for a in self.answers if a.fingerprint == key]
            turn = self._given[key]
            self._given[key] += 1
        if turn < len(recorded):
            return recorded[turn]
        where = f" in {self.source}" if self.source else ""
        if recorded:
            raise ModelCallError(
                f"{request.label}: {len(recorded)} answers to this request are recorded{where} and all were "
                f"given; record with as many repeats as you replay"
            )
        known = any(a.label == request.label for a in self.answers)
        why = "its prompt changed since the recording" if known else "it was never recorded"
        raise ModelCallError(f"{request.label}: no recorded answer{where} ({why}); record the eval again")


class RecordingProvider:
    """Answers through `inner` and keeps every answer on `tape`."""

    def __init__(self, inner: ModelProvider, tape: AnswerTape) -> None:
        self.inner = inner
        self.tape = tape
        self.name = inner.name
        self.context_window = inner.context_window
        self.default_model = inner.default_model
        self.offline = bool(getattr(inner, "offline", inner.name == "offline"))

    async def complete(self, request: ModelRequest) -> ModelReply:
        reply = await self.inner.complete(request)
        self.tape.add(request, reply)
        return reply


class ReplayProvider:
    """Answers from `tape`: the recorded text, model and usage; never the network."""

    name = "replay"
    context_window = REPLAY_CONTEXT_WINDOW

    def __init__(self, tape: AnswerTape) -> None:
        self.tape = tape
        self.default_model = tape.answers[0].model if tape.answers else "recorded"

    @property
    def offline(self) -> bool:
        """Whether every recorded answer came from the offline provider (no language model would grade)."""
        return all(a.offline for a in self.tape.answers)

    async def complete(self, request: ModelRequest) -> ModelReply:
        answer = self.tape.next_for(request)
        return ModelReply(
            text=answer.text,
            provider=self.name,
            model=answer.model,
            usage=answer.usage,
            offline=answer.offline,
            finish_reason=answer.finish_reason,
        )
