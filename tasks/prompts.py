"""Sandboxed rendering of prompt and layout templates.

Templates are Jinja2 rendered in a `SandboxedEnvironment` with strict undefined
variables, from a fixed set of sources loaded from the definitions folder (so a
template can include only what the loader read from that folder), with a cap on
the size of what a render may produce (checked as output streams out, and before
a `*` or `**` could build one huge value at once). Values given to a template are
data: an input holding `{{ ''.__class__ }}` is printed as those characters, never run.
"""

from __future__ import annotations

import hashlib
import threading
import unicodedata
from collections import OrderedDict
from collections.abc import Iterator, Mapping, Sized
from types import TracebackType
from typing import Any

from jinja2 import (
    BaseLoader,
    Environment,
    StrictUndefined,
    TemplateError,
    TemplateNotFound,
    TemplateSyntaxError,
    meta,
)
from jinja2.exceptions import SecurityError
from jinja2.runtime import Context
from jinja2.sandbox import SandboxedEnvironment

from agentflows.tasks.errors import TemplateRenderError

MAX_RENDER_CHARS = 400_000
"""Largest text one render may produce; a template that writes more is stopped."""
MAX_POWER_BITS = 100_000
"""Largest integer, in bits, that `**` may compute in a template."""


def template_hash(source: str) -> str:
    """sha256 of a template's source."""
    return hashlib.sha256(source.encode()).hexdigest()


def template_hashes(templates: Mapping[str, str]) -> dict[str, str]:
    """sha256 of each template, by name."""
    return {name: template_hash(source) for name, source in templates.items()}


class SourceLoader(BaseLoader):
    """Loads templates from a mapping of name to source; names double as file names
    in tracebacks, so errors can say which template and line failed."""

    def __init__(self, sources: Mapping[str, str]) -> None:
        self.sources = dict(sources)

    def get_source(self, environment: Environment, template: str) -> tuple[str, str, Any]:
        if template not in self.sources:
            raise TemplateNotFound(template)
        return self.sources[template], template, lambda: True


class ContentSandbox(SandboxedEnvironment):
    """The sandbox, with one convenience: on a mapping, `x.key` reads the key first.

    Plain Jinja tries attributes first, so `plan.items` would be the dict method
    rather than the plan's items; authors should not have to know that.
    `*` and `**` are checked before they run, so `{{ '-' * n }}` cannot build a
    value far larger than a whole render may be.
    """

    intercepted_binops = frozenset({"*", "**"})

    def getattr(self, obj: Any, attribute: str) -> Any:
        if isinstance(obj, Mapping) and attribute in obj:
            return obj[attribute]
        return super().getattr(obj, attribute)

    def call_binop(self, context: Context, operator: str, left: Any, right: Any) -> Any:
        if operator == "*" and (size := _repeated_size(left, right)) > MAX_RENDER_CHARS:
            raise SecurityError(
                f"'*' would make a value of {size:,} items, more than the {MAX_RENDER_CHARS:,} characters "
                "a render may produce"
            )
        if operator == "**" and _power_bits(left, right) > MAX_POWER_BITS:
            raise SecurityError(f"{left!r} ** {right!r} is too large to compute; keep numbers in templates small")
        return super().call_binop(context, operator, left, right)


class UserText(str):
    """Text that came from a user (an input, the request). Prompts print it between « and »,
    so the model reads it as data to work with, not as instructions."""

    __slots__ = ()


def delimited(text: str) -> str:
    """`text` between « and », with any « or » inside it removed: printed as data, as `UserText` is."""
    return "«" + text.replace("«", "").replace("»", "") + "»"


def _delimit(value: Any) -> Any:
    return delimited(value) if isinstance(value, UserText) else value


_INVISIBLE = frozenset({"Cc", "Cf", "Co", "Cs"})


def clean_user_text(text: str) -> str:
    """`text` without control, format (zero-width, bidi override) and private-use characters.

    Newlines and tabs stay; surrounding whitespace goes."""
    cleaned = "".join(
        c for c in unicodedata.normalize("NFC", text) if c in "\n\t" or unicodedata.category(c) not in _INVISIBLE
    )
    return cleaned.strip()


def clean_user_values(values: Mapping[str, Any]) -> dict[str, Any]:
    """`values` with every string (and every string in a list) cleaned by `clean_user_text`."""
    return {key: _clean_value(value) for key, value in values.items()}


def _clean_value(value: Any) -> Any:
    if isinstance(value, str):
        return clean_user_text(value)
    if isinstance(value, list):
        return [_clean_value(v) for v in value]
    return value


def as_user_text(value: Any) -> Any:
    """Mark strings (also inside lists and mappings) as `UserText`."""
    if isinstance(value, str):
        return UserText(value)
    if isinstance(value, list):
        return [as_user_text(v) for v in value]
    if isinstance(value, Mapping):
        return {k: as_user_text(v) for k, v in value.items()}
    return value


def environment(sources: Mapping[str, str], *, html: bool = False) -> SandboxedEnvironment:
    """A sandbox that can load only `sources`; `html` turns on autoescaping, otherwise
    (a prompt) user text is printed between « and »."""
    return ContentSandbox(
        finalize=None if html else _delimit,
        loader=SourceLoader(sources),
        undefined=StrictUndefined,
        autoescape=html,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
    )


_shared: OrderedDict[tuple[bool, frozenset[tuple[str, str]]], SandboxedEnvironment] = OrderedDict()
_shared_lock = threading.Lock()
SHARED_ENVIRONMENTS = 64


def shared_environment(sources: Mapping[str, str], *, html: bool = False) -> SandboxedEnvironment:
    """An `environment` for `sources`, reused by every render of the same templates.

    Jinja compiles a template once per environment; reusing the environment saves
    compiling each prompt again for every plan item (the sources are the key, so an
    edited template gets a fresh environment).
    """
    key = (html, frozenset(sources.items()))
    with _shared_lock:
        env = _shared.get(key)
        if env is None:
            env = _shared[key] = environment(sources, html=html)
            if len(_shared) > SHARED_ENVIRONMENTS:
                _shared.popitem(last=False)
        else:
            _shared.move_to_end(key)
        return env


def render(
    sources: Mapping[str, str],
    name: str,
    variables: Mapping[str, Any],
    *,
    html: bool = False,
    limit: int = MAX_RENDER_CHARS,
) -> str:
    """Render template `name` with `variables`; raise `TemplateRenderError` on any failure."""
    env = shared_environment(sources, html=html)
    try:
        chunks = env.get_template(name).generate(**variables)
        return _joined_within(chunks, name, limit)
    except TemplateRenderError:
        raise
    except TemplateError as exc:
        raise TemplateRenderError(_describe(exc, name, sources)) from None
    except (ArithmeticError, LookupError, TypeError, ValueError) as exc:
        raise TemplateRenderError(_describe(exc, name, sources)) from None
    except RecursionError:
        raise TemplateRenderError(_describe_recursion(name, sources)) from None


def evaluate(expression: str, variables: Mapping[str, Any]) -> Any:
    """Evaluate one sandboxed expression, written with or without `{{ }}`."""
    text = expression.strip()
    if text.startswith("{{") and text.endswith("}}"):
        text = text[2:-2]
    env = environment({})
    try:
        return env.compile_expression(text, undefined_to_none=False)(**variables)
    except (TemplateError, ArithmeticError, LookupError, TypeError, ValueError) as exc:
        raise TemplateRenderError(f"expression {expression!r} failed: {exc}") from None


def referenced_templates(sources: Mapping[str, str], name: str) -> list[str | None]:
    """Names that template `name` includes, imports or extends (None when not a literal)."""
    env = environment(sources)
    return list(meta.find_referenced_templates(env.parse(sources[name], name=name)))


def _joined_within(chunks: Iterator[str], name: str, limit: int) -> str:
    parts: list[str] = []
    size = 0
    for chunk in chunks:
        size += len(chunk)
        if size > limit:
            raise TemplateRenderError(
                f"template {name!r} rendered more than {limit:,} characters; make it shorter or check its loops"
            )
        parts.append(chunk)
    return "".join(parts)


def _describe(exc: BaseException, name: str, sources: Mapping[str, str]) -> str:
    where, line = name, None
    if isinstance(exc, TemplateSyntaxError):
        where, line = exc.name or name, exc.lineno
    else:
        where, line = _template_frame(exc.__traceback__, sources) or (name, None)
    at = f"{where!r} line {line}" if line else repr(where)
    message = str(exc).rstrip(".") or type(exc).__name__
    if isinstance(exc, TemplateNotFound):
        message = f"it includes {exc.name!r}, which is not one of the templates loaded from the definitions folder"
    return f"template {at} failed to render: {message}"


def _describe_recursion(name: str, sources: Mapping[str, str]) -> str:
    cycle = _include_cycle(sources, name, ())
    if cycle:
        chain = " → ".join(repr(n) for n in cycle)
        return f"template {name!r} includes itself ({chain}); remove one of these includes"
    return f"template {name!r} recursed without end (a macro or include that calls itself); make the recursion stop"


def _include_cycle(sources: Mapping[str, str], name: str, path: tuple[str, ...]) -> tuple[str, ...] | None:
    """The first chain of literal includes from `name` that comes back to a template on `path`."""
    if name in path:
        return (*path[path.index(name) :], name)
    if name not in sources:
        return None
    try:
        targets = referenced_templates(sources, name)
    except TemplateSyntaxError:
        return None
    for target in targets:
        if target is not None and (cycle := _include_cycle(sources, target, (*path, name))):
            return cycle
    return None


def _repeated_size(left: Any, right: Any) -> int:
    """Length of `left * right` when it repeats a string or sequence, else 0."""
    for seq, times in ((left, right), (right, left)):
        if isinstance(seq, Sized) and not isinstance(seq, Mapping) and isinstance(times, int):
            return len(seq) * max(times, 0)
    return 0


def _power_bits(base: Any, exponent: Any) -> int:
    """Rough size in bits of the integer `base ** exponent` (0 for anything else)."""
    if isinstance(base, int) and isinstance(exponent, int) and exponent > 0 and abs(base) > 1:
        return abs(base).bit_length() * exponent
    return 0


def _template_frame(tb: TracebackType | None, sources: Mapping[str, str]) -> tuple[str, int] | None:
    """Innermost traceback frame that belongs to one of the templates."""
    found = None
    while tb is not None:
        filename = tb.tb_frame.f_code.co_filename
        if filename in sources:
            found = (filename, tb.tb_lineno)
        tb = tb.tb_next
    return found
