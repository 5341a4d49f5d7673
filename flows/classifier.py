"""The router's model classifier: for a request the rules cannot settle, a model reads what it asks for.

`classify` sends the request with a card of every agent (name, content type,
description, inputs, example requests) and asks for an answer that fits
`classifier_schema`: the content types, and for each chosen agent the inputs
the request states. With only the offline provider configured, which cannot
read a request, it is not asked. Its prompt is the one the catalog loaded and
checked (`AgentCatalog.classifier_templates`), never read from disk at run time.
"""

from __future__ import annotations

from typing import Any

from agentflows.catalog import CLASSIFIER_PROMPT, AgentCatalog
from agentflows.definition import ROUTER_NAME
from agentflows.errors import RoutingError
from agentflows.tasks.llm.settings import ModelSettings
from agentflows.tasks.modelcall import ask_model
from agentflows.tasks.prompts import as_user_text
from agentflows.tasks.runtime import current_runtime
from agentflows.tasks.specs import ModelStepSpec

CLASSIFIER_SETTINGS = ModelSettings(provider="default", temperature=0.0, max_tokens=1200)


async def classify(request: str, catalog: AgentCatalog) -> tuple[tuple[str, ...], dict[str, dict[str, Any]]] | None:
    """Content types and inputs a model reads from `request`; None when only the offline provider is configured."""
    if current_runtime().provider_name(CLASSIFIER_SETTINGS.provider) == "offline":
        return None  # the offline provider cannot read a request; the rules decide alone
    spec = _classifier_spec(catalog)
    answer = await ask_model(
        spec,
        label="router/classify",
        variables={
            "agent": spec.agent,
            "inputs": as_user_text({"request": request}),
            "context": {"request": ""},
            "agents": [_agent_card(a.definition) for a in catalog.values()],
        },
        context={"request": request},
        schema=classifier_schema(catalog),
    )
    agents = tuple(dict.fromkeys(answer.payload.get("content_types", [])))
    return agents, dict(answer.payload.get("parameters", {}))


def _classifier_spec(catalog: AgentCatalog) -> ModelStepSpec:
    if catalog.classifier_templates is None:
        raise RoutingError(f"the classifier needs the template {CLASSIFIER_PROMPT!r} in {catalog.root}")
    base = next(iter(catalog.values())).definition.prompts.base
    about = {
        "name": ROUTER_NAME,
        "version": "1",
        "description": "decide which content agents a request asks for",
        "content_type": "mixed",
    }
    return ModelStepSpec(
        agent=about,
        step="decide",
        templates=dict(catalog.classifier_templates),
        system=(base,),
        prompt=CLASSIFIER_PROMPT,
        model=CLASSIFIER_SETTINGS,
    )


def _agent_card(definition: Any) -> dict[str, Any]:
    inputs = [
        (name, {"type": s.type, "required": s.is_required, "enum": s.enum or [], "description": s.description})
        for name, s in definition.inputs.items()
    ]
    return {
        "name": definition.name,
        "content_type": definition.content_type.value,
        "description": definition.description,
        "inputs": inputs,
        "examples": definition.routing.examples,
    }


def classifier_schema(catalog: AgentCatalog) -> dict[str, Any]:
    """JSON Schema of the classifier's answer: content types, and the inputs per chosen agent."""
    json_types = {"string": "string", "integer": "integer", "number": "number", "boolean": "boolean", "list": "array"}
    per_agent = {}
    for name, agent in catalog.items():
        properties = {}
        for input_name, spec in agent.definition.inputs.items():
            prop: dict[str, Any] = {"type": json_types[spec.type], "description": spec.description}
            if spec.type == "list":
                prop["items"] = {"type": "string", **({"enum": spec.enum} if spec.enum else {})}
            elif spec.enum:
                prop["enum"] = spec.enum
            properties[input_name] = prop
        per_agent[name] = {"type": "object", "properties": properties, "additionalProperties": False}
    return {
        "type": "object",
        "properties": {
            "content_types": {"type": "array", "items": {"enum": list(catalog)}, "uniqueItems": True},
            "parameters": {"type": "object", "properties": per_agent, "additionalProperties": False},
        },
        "required": ["content_types"],
        "additionalProperties": False,
    }
