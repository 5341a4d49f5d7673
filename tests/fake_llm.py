"""A fake OpenAI-compatible server: a real HTTP server on loopback, scriptable per request.

Each request to `/v1/chat/completions` takes the next scripted `Reply` for its
model (or for any model), else a default reply: a chat completion whose content
is a schema-valid JSON answer, written by the offline provider's writer around
the first «user text» of the user messages and what the prompt states that the
shipped agents' checks hold an answer to (a lesson's length, an API's framework,
the file to write), as a model that reads its prompt would, to the schema the
request's `response_format` carries (else the JSON shown in the prompt). A
request with `stream: true` is answered as server-sent events, one chunk per few
characters, `chunk_delay` apart, with the usage chunk when
`stream_options.include_usage` asks for it; a reply can stall mid-stream.
`slots` makes `GET /props` answer as llama.cpp's server does. Every request is
recorded with its body and its start and end times, so tests can count calls
and see which ones overlapped.

`/v1/embeddings` answers every input with a deterministic bag-of-words vector
(`embedding_of`: texts sharing words point the same way), or the next scripted
`Reply` queued for the embeddings model; its inputs are recorded in `embedded`.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import re
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from agentflows.tasks.llm.offline import answer_for

_SCHEMA = re.compile(r"```json\n(.*?)\n```", re.DOTALL)
_SHAPE = re.compile(r"shaped like this \(replace every <…>\):\n(\{.*\})", re.DOTALL)
_USER_TEXT = re.compile(r"«([^»]*)»")
CHUNK_CHARS = 6
_STATED: dict[str, tuple[re.Pattern[str], Callable[[str], Any]]] = {
    "duration_minutes": (re.compile(r"\b(\d+)-minute\b"), int),
    "framework": (re.compile(r"«(fastapi|flask)»"), str),
}
"""Inputs a prompt states, with how to read them: what the shipped agents' checks compare answers to."""
_FILE = re.compile(r"the complete file `([^`]+)`")
_GUIDE_EXAMPLE = re.compile(r"^- ([\w.\[\]]+): [^\n]*?; e\.g\. ([^\n]+)$", re.MULTILINE)


@dataclass(frozen=True)
class Reply:
    """One scripted answer: status, headers, body (a chat completion around `content` by default) and delay.

    `Reply()` with no content or body is the default answer, so a script can let some calls through."""

    content: str | None = None
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    body: str | None = None
    """Raw body; overrides `content` (and is never streamed)."""
    delay: float = 0.0
    """Seconds before the answer starts (streamed: before the first chunk)."""
    usage: tuple[int, int] = (120, 80)
    finish_reason: str = "stop"
    chunk_delay: float = 0.0
    """Streamed: seconds between chunks."""
    stall_after: int | None = None
    """Streamed: chunks sent before the stream goes silent (for `stall` seconds, then the connection closes)."""
    stall: float = 30.0


@dataclass(frozen=True)
class Received:
    """One request the server got."""

    model: str
    body: dict[str, Any]
    headers: dict[str, str]
    started: float
    ended: float


class FakeLLM:
    """The server; use as a context manager or call `close()`."""

    def __init__(self, latency: float = 0.0, *, slots: int | None = None, chunk_delay: float = 0.0) -> None:
        self.latency = latency
        self.slots = slots
        """What `GET /props` reports as `total_slots` (None: `/props` is not found, as on most servers)."""
        self.chunk_delay = chunk_delay
        self.received: list[Received] = []
        self.embedded: list[list[str]] = []
        """The inputs of every `/v1/embeddings` request, in order."""
        self._scripts: dict[str | None, deque[Reply]] = {}
        self._lock = threading.Lock()
        self._closing = threading.Event()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self.server.daemon_threads = True
        self.server.block_on_close = False
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/v1"

    @property
    def control_url(self) -> str:
        """Where another process reads (`GET /received`) or clears (`POST /reset`) the recorded requests."""
        return f"http://127.0.0.1:{self.server.server_address[1]}/_control"

    def script(self, *replies: Reply, model: str | None = None) -> None:
        """Queue replies for `model` (or for any model)."""
        with self._lock:
            self._scripts.setdefault(model, deque()).extend(replies)

    def models(self) -> list[str]:
        return [r.model for r in self.received]

    def max_overlap(self) -> int:
        """Most requests that were in flight at the same moment."""
        events = sorted([(r.started, 1) for r in self.received] + [(r.ended, -1) for r in self.received])
        current = peak = 0
        for _, step in events:
            current += step
            peak = max(peak, current)
        return peak

    def close(self) -> None:
        self._closing.set()
        self.server.shutdown()
        self.server.server_close()

    def __enter__(self) -> FakeLLM:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def next_reply(self, model: str, body: dict[str, Any]) -> Reply:
        with self._lock:
            for key in (model, None):
                queue = self._scripts.get(key)
                if queue:
                    reply = queue.popleft()
                    if reply.content is None and reply.body is None and reply.status == 200:
                        return replace(reply, content=json.dumps(default_answer(body)))
                    return reply
        return Reply(content=json.dumps(default_answer(body)), delay=self.latency, chunk_delay=self.chunk_delay)

    def wait(self, seconds: float) -> None:
        self._closing.wait(seconds)


def default_answer(body: dict[str, Any]) -> Any:
    """A schema-valid answer to the request's schema (`response_format`, else the prompt's), about the first
    «user text» of the user messages (the system prompt's « and » is not a topic), so different requests get
    different answers."""
    prompt = "\n".join(str(m.get("content", "")) for m in body.get("messages", []))
    asked = "\n".join(str(m.get("content", "")) for m in body.get("messages", []) if m.get("role") == "user")
    schema = (body.get("response_format") or {}).get("json_schema", {}).get("schema")
    if schema is None:
        shown = _SCHEMA.findall(prompt) or _SHAPE.findall(prompt)
        schema = _schema_of(json.loads(shown[-1])) if shown else {"type": "object", "properties": {}}
    schema = _with_guide_examples(schema, prompt)
    inputs: dict[str, Any] = {"topic": next(iter(_USER_TEXT.findall(asked)), "the subject")}
    for name, (pattern, kind) in _STATED.items():
        if found := pattern.search(prompt):
            inputs[name] = kind(found.group(1))
    item = {"path": found.group(1)} if (found := _FILE.search(prompt)) else {}
    return answer_for(schema, {"inputs": inputs, "item": item}, prompt[-200:])


def _with_guide_examples(schema: dict[str, Any], prompt: str) -> dict[str, Any]:
    """`schema` with the examples the prompt's field guide shows (`- items[].path: text; e.g. "app/main.py", …`):
    the wire schema leaves them out, and a model that reads its prompt sees them."""
    schema = json.loads(json.dumps(schema))
    for path, shown in _GUIDE_EXAMPLE.findall(prompt):
        node: Any = schema
        for part in path.split("."):
            node = (node.get("properties") or {}).get(part.removesuffix("[]")) if isinstance(node, dict) else None
            if isinstance(node, dict) and part.endswith("[]"):
                node = node.get("items")
        if isinstance(node, dict):
            with contextlib.suppress(ValueError):
                node["examples"] = json.loads(f"[{shown}]")
    return schema


def _schema_of(shown: Any) -> dict[str, Any]:
    """A JSON Schema, or the schema of a skeleton the prompt showed (`{"title": "<…>", "items": [{…}]}`)."""
    if isinstance(shown, dict) and shown.get("type") == "object" and "properties" in shown:
        return shown
    if isinstance(shown, dict):
        return {"type": "object", "properties": {k: _schema_of(v) for k, v in shown.items()}, "required": list(shown)}
    if isinstance(shown, list):
        return {"type": "array", "items": _schema_of(shown[0] if shown else ""), "minItems": 1}
    return {"type": "string"}


EMBEDDING_SIZE = 64
_WORD = re.compile(r"[^\W_]+")


def embedding_of(text: str) -> list[float]:
    """A deterministic unit vector of `text`'s words (each word hashed to one dimension)."""
    vector = [0.0] * EMBEDDING_SIZE
    for word in _WORD.findall(text.lower()):
        digest = hashlib.sha256(word.encode()).digest()
        vector[digest[0] % EMBEDDING_SIZE] += 1.0 if digest[1] % 2 else -1.0
    norm = sum(v * v for v in vector) ** 0.5 or 1.0
    return [v / norm for v in vector]


def _handler(fake: FakeLLM) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:
            """`/_control/received`: the bodies received so far; `/props`: llama.cpp's server properties."""
            if self.path == "/props" and fake.slots is not None:
                props = {"total_slots": fake.slots, "default_generation_settings": {"n_ctx": 8192}}
                self._reply(200, json.dumps(props).encode())
                return
            if self.path != "/_control/received":
                self._reply(404, b'{"error": {"message": "File Not Found"}}')
                return
            with fake._lock:
                payload = json.dumps([r.body for r in fake.received]).encode()
            self._reply(200, payload)

        def do_POST(self) -> None:
            length = int(self.headers.get("content-length") or 0)
            raw = self.rfile.read(length) or b"{}"
            if self.path == "/_control/reset":
                with fake._lock:
                    fake.received.clear()
                self._reply(204, b"")
                return
            started = time.monotonic()
            body = json.loads(raw)
            model = str(body.get("model", ""))
            if self.path.endswith("/embeddings"):
                self._embeddings(model, body)
                return
            reply = fake.next_reply(model, body)
            if reply.delay:
                fake.wait(reply.delay)
            streamed = bool(body.get("stream")) and reply.status == 200 and reply.body is None
            with contextlib.suppress(OSError):  # the client gave up (a timeout test): nothing to send to
                if streamed:
                    self._stream(reply, model, body)
            with fake._lock:  # recorded before a whole answer leaves, so a client that has it finds it recorded
                fake.received.append(Received(model, body, dict(self.headers), started, time.monotonic()))
            with contextlib.suppress(OSError):
                if not streamed:
                    self._send(reply, model)

        def _send(self, reply: Reply, model: str) -> None:
            if reply.body is not None:
                payload = reply.body.encode()
            else:
                prompt_tokens, completion_tokens = reply.usage
                payload = json.dumps(
                    {
                        "id": "chatcmpl-fake",
                        "object": "chat.completion",
                        "created": int(time.time()),
                        "model": model,
                        "choices": [
                            {
                                "index": 0,
                                "message": {"role": "assistant", "content": reply.content or ""},
                                "finish_reason": reply.finish_reason,
                            }
                        ],
                        # total_tokens and created: clients that validate the whole answer (pydantic-ai) need them
                        "usage": {
                            "prompt_tokens": prompt_tokens,
                            "completion_tokens": completion_tokens,
                            "total_tokens": prompt_tokens + completion_tokens,
                        },
                    }
                ).encode()
            self.send_response(reply.status)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(payload)))
            for name, value in reply.headers.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(payload)

        def _stream(self, reply: Reply, model: str, body: dict[str, Any]) -> None:
            self.send_response(200)
            self.send_header("content-type", "text/event-stream")
            self.send_header("cache-control", "no-cache")
            self.send_header("connection", "close")
            self.end_headers()
            self.close_connection = True
            text = reply.content or ""
            pieces = [text[i : i + CHUNK_CHARS] for i in range(0, len(text), CHUNK_CHARS)]
            self._event({"role": "assistant", "content": None}, model)
            for number, piece in enumerate(pieces):
                if reply.stall_after is not None and number == reply.stall_after:
                    fake.wait(reply.stall)
                    return
                if reply.chunk_delay:
                    fake.wait(reply.chunk_delay)
                self._event({"content": piece}, model)
            self._event({}, model, finish_reason=reply.finish_reason)
            if (body.get("stream_options") or {}).get("include_usage"):
                prompt_tokens, completion_tokens = reply.usage
                usage = {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens}
                self._data({"object": "chat.completion.chunk", "model": model, "choices": [], "usage": usage})
            self.wfile.write(b"data: [DONE]\n\n")
            self.wfile.flush()

        def _event(self, delta: dict[str, Any], model: str, finish_reason: str | None = None) -> None:
            choice = {"index": 0, "delta": delta, "finish_reason": finish_reason}
            self._data({"object": "chat.completion.chunk", "model": model, "choices": [choice]})

        def _data(self, chunk: dict[str, Any]) -> None:
            self.wfile.write(b"data: " + json.dumps(chunk).encode() + b"\n\n")
            self.wfile.flush()

        def _embeddings(self, model: str, body: dict[str, Any]) -> None:
            texts = body.get("input") or []
            texts = [texts] if isinstance(texts, str) else [str(t) for t in texts]
            with fake._lock:
                fake.embedded.append(texts)
                queue = fake._scripts.get(model)
                scripted = queue.popleft() if queue else None
            if scripted is not None:
                self._send(scripted, model)
                return
            data = [{"object": "embedding", "index": i, "embedding": embedding_of(t)} for i, t in enumerate(texts)]
            usage = {"prompt_tokens": sum(len(t.split()) for t in texts), "total_tokens": 0}
            self._reply(200, json.dumps({"object": "list", "model": model, "data": data, "usage": usage}).encode())

        def _reply(self, status: int, payload: bytes) -> None:
            self.send_response(status)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return Handler
