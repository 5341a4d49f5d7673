"""The router's rules: which agents a free-text request asks for, and their inputs.

Everything here is pure and reads only the agents' YAML `routing` hints:

- `match_rules` finds agents whose keywords (whole words or phrases) or patterns
  occur in the request, with the evidence;
- `ambiguous_terms` names terms that select more than one agent;
- `request_inputs` reads an agent's inputs from the request: the subject (what
  the request is about) into the agent's subject input, a size word before one
  of its keywords ("a *short* e-book") into the inputs its `sizes` declare, each
  `extract` pattern into its input, and the shared values (level and language,
  read from the request, or given as the router's audience, language and level
  parameters) into every input that takes them.
- `check_request` refuses, before anything runs, a request the router cannot take
  (empty, too short or too long) and content types no agent has.

Later sources win: size < extract < shared values read from the request (only
where nothing else set the input) < shared parameters given by the caller.

The model classifier, for requests these rules cannot settle, lives in
`agentflows.classifier`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from agentflows.definition import AgentDefinition, SizeWord
from agentflows.errors import RoutingError
from agentflows.fields import InputSpec
from agentflows.inputs import REQUEST_MAX_CHARACTERS

_STOP = r"(?=\s+(?:for|with|and|in|to|that|which|using|including)(?=\s)|[,.;:!?]|$)"
SUBJECT_PATTERNS = (
    r"\b(?:on|about|covering|explaining|introducing)\s+(?P<value>.+?)" + _STOP,
    r"\b(?:of|for)\s+(?P<value>.+?)" + _STOP.replace("for|", ""),
)
"""Where a request usually says what it is about: "a quiz on <subject>", "an API for <subject>"."""
REQUEST_LENGTH = (3, REQUEST_MAX_CHARACTERS)
"""Shortest and longest request, in characters (the router flow's parameter bounds)."""
EXAMPLE_REQUEST = "a lesson on tides for 8th grade, with a quiz"
_ORDINAL = r"(?:\d+(?:st|nd|rd|th)|first|second|third|fourth|fifth|sixth|seventh|eighth|ninth|tenth|eleventh|twelfth)"
SHARED_PATTERNS = {
    "level": r"\b(?P<value>" + _ORDINAL + r"[- ]grade(?:rs)?|grade \d+|year \d+|kindergarten"
    r"|(?:elementary|primary|middle|high|secondary) school(?: students)?"
    r"|(?:first|second|third|fourth|final)-year (?:university|college)(?: students)?|undergraduates?)\b",
    "language": r"\bin (?P<value>English|Portuguese|Spanish|French|German|Italian|Dutch|Polish|Swedish|Greek|Turkish"
    r"|Russian|Arabic|Hindi|Chinese|Japanese|Korean)(?=\s*(?:[,.;:!?]|$|\s(?:and|with|for|please)\b))",
}
"""How a request says the shared values (who it is for, the language) the router passes to every agent."""
SIZE_WORDS: dict[str, SizeWord] = {
    "short": "short",
    "brief": "short",
    "quick": "short",
    "mini": "short",
    "medium": "medium",
    "medium-length": "medium",
    "long": "long",
    "full": "long",
    "full-length": "long",
    "in-depth": "long",
    "detailed": "long",
    "extended": "long",
    "comprehensive": "long",
}
"""Size words a request may put before a kind of content, and the declared size (`routing.sizes`) each means."""


@dataclass(frozen=True)
class RuleMatch:
    """An agent the rules selected, and the keywords or patterns that selected it."""

    agent: str
    evidence: tuple[str, ...]


def check_request(request: str, content_types: list[str] | None, agents: Mapping[str, object]) -> None:
    """Raise `RoutingError` for a request the router would refuse, naming what would be valid."""
    shortest, longest = REQUEST_LENGTH
    text = request.strip()
    if len(text) < shortest:
        what = "empty" if not text else f"{text!r}, too short"
        raise RoutingError(f"the request is {what}; say what to make, e.g. {EXAMPLE_REQUEST!r}")
    if len(request) > longest:
        raise RoutingError(f"the request has {len(request)} characters; at most {longest} are taken")
    unknown = [name for name in content_types or () if name not in agents]
    if unknown:
        raise RoutingError(f"unknown content type {unknown[0]!r}; the agents are: {', '.join(agents)}")


def match_rules(request: str, agents: Mapping[str, AgentDefinition]) -> list[RuleMatch]:
    """Agents whose routing keywords or patterns occur in `request`, in catalog order."""
    text = request.casefold()
    matches = []
    for name, definition in agents.items():
        hints = definition.routing
        evidence = [k for k in hints.keywords if _has_phrase(text, k.casefold())]
        evidence += [p for p in hints.patterns if re.search(p, request, re.IGNORECASE)]
        if evidence:
            matches.append(RuleMatch(name, tuple(evidence)))
    return matches


def ambiguous_terms(matches: list[RuleMatch]) -> dict[str, list[str]]:
    """Terms that are the only evidence for an agent and also select another agent."""
    owners: dict[str, list[str]] = {}
    for match in matches:
        for term in match.evidence:
            owners.setdefault(term.casefold(), []).append(match.agent)
    shared = {term: agents for term, agents in owners.items() if len(agents) > 1}
    return {
        term: agents
        for term, agents in shared.items()
        if any(all(e.casefold() in shared for e in m.evidence) for m in matches if m.agent in agents)
    }


def request_subject(request: str) -> str | None:
    """What `request` is about, by the usual phrasings, or None."""
    for pattern in SUBJECT_PATTERNS:
        match = re.search(pattern, request, re.IGNORECASE)
        if match:
            subject = _strip_article(match.group("value").strip(" \"'“”«»"))
            if subject:
                return subject
    return None


def request_inputs(request: str, definition: AgentDefinition, shared: Mapping[str, Any]) -> dict[str, Any]:
    """The inputs of `definition` that the request and the shared parameters give."""
    values: dict[str, Any] = {}
    subject_input = definition.routing.subject_input or definition.first_text_input
    subject = request_subject(request)
    if subject_input is not None and subject:
        values[subject_input] = subject
    size = request_size(request, definition)
    if size is not None:
        values.update(definition.routing.sizes[size])
    for name, pattern in definition.routing.extract.items():
        match = re.search(pattern, request, re.IGNORECASE)
        if match:
            raw = match.groupdict().get("value") or match.group(1)
            values[name] = _as_declared(raw.strip(), definition.inputs[name])
    for parameter, value in request_shared(request).items():
        target = _shared_target(definition, parameter)
        if target is not None and target not in values:
            values[target] = _as_declared(value, definition.inputs[target])
    # A parameter named like the input it fills (audience → audience) wins over one mapped onto it (level).
    for parameter, value in sorted(shared.items(), key=lambda kv: _shared_target(definition, kv[0]) == kv[0]):
        target = _shared_target(definition, parameter)
        if value not in (None, "") and target is not None:
            values[target] = _as_declared(str(value), definition.inputs[target])
    return values


def request_shared(request: str) -> dict[str, str]:
    """The shared values the request states: `{"level": "6th grade", "language": "Portuguese"}`."""
    found = {}
    for parameter, pattern in SHARED_PATTERNS.items():
        match = re.search(pattern, request, re.IGNORECASE)
        if match:
            found[parameter] = match.group("value")
    return found


def request_size(request: str, definition: AgentDefinition) -> SizeWord | None:
    """The declared size a size word right before one of the agent's keywords asks for ("a short e-book")."""
    hints = definition.routing
    if not hints.sizes or not hints.keywords:
        return None
    words = "|".join(re.escape(w) for w in sorted(SIZE_WORDS, key=len, reverse=True))
    keywords = "|".join(re.escape(k) for k in sorted(hints.keywords, key=len, reverse=True))
    between = r"(?:(?!(?:and|or|with|plus|then)\b)[\w-]+\s+){0,2}?"
    for match in re.finditer(rf"(?<![\w-])({words})\s+{between}(?:{keywords})(?![\w-])", request, re.IGNORECASE):
        size = SIZE_WORDS[match.group(1).casefold()]
        if size in hints.sizes:
            return size
    return None


def _shared_target(definition: AgentDefinition, parameter: str) -> str | None:
    """The input a shared parameter fills in `definition`, if it has one."""
    target = definition.routing.shared.get(parameter, parameter)
    return target if target in definition.inputs else None


def _has_phrase(text: str, phrase: str) -> bool:
    return re.search(rf"(?<!\w){re.escape(phrase)}(?!\w)", text) is not None


def _strip_article(text: str) -> str:
    return re.sub(r"^(?:the|a|an)\s+(?=\S)", "", text, flags=re.IGNORECASE) if len(text.split()) >= 2 else text


def _as_declared(value: str, spec: InputSpec) -> Any:
    """An extracted string as the input's enum value (matched without case), else as given."""
    if spec.enum:
        for option in spec.enum:
            if str(option).casefold() == value.casefold():
                return option
    return value
