"""The router flow: one free-text request, several agents run as concurrent sub-flows, one manifest.

    request ──► decide the route ──► agent sub-flows (concurrently) ──► manifest ──► saved + table artifact

Deciding the route, in order: explicit content types (the caller names the
agents); else the agents' YAML routing hints (`flows.routing`, free and
deterministic); else, when those find nothing or are ambiguous and a real model
is configured, a model classifier that returns the content types and the inputs
it reads from the request. Every agent's inputs are validated against its
declared inputs before any branch starts.

A failing branch does not stop the others: the manifest lists it with its
error, and the run ends `Completed` named "Partly failed" (or `Failed` when
every branch failed).
"""

from __future__ import annotations

import asyncio
import hashlib
import inspect
import json
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any, Literal

from prefect import Flow, flow, task
from prefect.artifacts import acreate_table_artifact
from prefect.context import FlowRunContext, SyncClientContext
from prefect.states import Completed, Failed, State
from pydantic import Field, JsonValue

from agentflows.catalog import AgentCatalog, load_agents
from agentflows.compiler import compiled
from agentflows.definition import ROUTER_NAME
from agentflows.errors import InputError, RoutingError
from agentflows.inputs import validate_inputs
from agentflows.loader import SHARED_PARAMETERS
from agentflows.progress import ProgressEvent, emit
from agentflows.routing import ambiguous_terms, match_rules, request_inputs
from agentflows.tasks.artifacts import AgentResult, BuiltContent, BuiltFile, ContentType, Provenance
from agentflows.tasks.errors import AgentflowsError
from agentflows.tasks.ledger import run_ledger
from agentflows.tasks.llm.settings import ModelSettings
from agentflows.tasks.manifest import Component, Manifest, RunStatus
from agentflows.tasks.modelcall import ask_model
from agentflows.tasks.prompts import as_user_text
from agentflows.tasks.runtime import current_runtime
from agentflows.tasks.specs import ModelStepSpec
from agentflows.tasks.steps import save_content
from agentflows.tasks.storage import RunInfo

CLASSIFIER_PROMPT = "prompts/router/classify.md"
CLASSIFIER_SETTINGS = ModelSettings(provider="default", temperature=0.0, max_tokens=1200)


@dataclass(frozen=True)
class Route:
    """Which agents run, how they were chosen, and the validated inputs of each."""

    agents: tuple[str, ...]
    method: Literal["explicit", "rules", "classifier"]
    evidence: dict[str, list[str]] = field(default_factory=dict)
    parameters: dict[str, dict[str, Any]] = field(default_factory=dict)


async def decide_route(
    request: str, catalog: AgentCatalog, explicit: list[str] | None, shared: Mapping[str, Any]
) -> Route:
    """The route of `request`; raises `RoutingError` or `InputError` before any branch runs."""
    if explicit:
        unknown = [name for name in explicit if name not in catalog]
        if unknown:
            raise RoutingError(f"unknown content type {unknown[0]!r}; the agents are: {', '.join(catalog)}")
        agents = tuple(dict.fromkeys(explicit))
        return _validated(request, catalog, agents, "explicit", {a: ["explicit"] for a in agents}, shared, {})
    definitions = {name: agent.definition for name, agent in catalog.items()}
    matches = match_rules(request, definitions)
    unclear = ambiguous_terms(matches)
    if matches and not unclear:
        evidence = {m.agent: list(m.evidence) for m in matches}
        agents = tuple(m.agent for m in matches)
        found = {a: request_inputs(request, definitions[a], shared) for a in agents}
        if not _missing_inputs(catalog, found):
            return _validated(request, catalog, agents, "rules", evidence, shared, {})
    classified = await classify(request, catalog)
    if classified is not None:
        agents, extracted = classified
        if not agents:
            raise RoutingError(f"the request asks for none of the agents; the agents are: {', '.join(catalog)}")
        return _validated(
            request, catalog, agents, "classifier", {a: ["classifier"] for a in agents}, shared, extracted
        )
    if unclear:
        term, owners = next(iter(unclear.items()))
        raise RoutingError(
            f"{term!r} in the request fits {' and '.join(repr(o) for o in owners)}; "
            "name the content types explicitly (--type) or configure a model for the classifier"
        )
    if matches:
        agents = tuple(m.agent for m in matches)
        return _validated(request, catalog, agents, "rules", {m.agent: list(m.evidence) for m in matches}, shared, {})
    raise RoutingError(f"the request matches no agent; the agents are: {', '.join(catalog)}")


def _validated(
    request: str,
    catalog: AgentCatalog,
    agents: tuple[str, ...],
    method: Literal["explicit", "rules", "classifier"],
    evidence: dict[str, list[str]],
    shared: Mapping[str, Any],
    extracted: Mapping[str, Mapping[str, Any]],
) -> Route:
    """The route with every agent's inputs read from the request and validated."""
    parameters = {}
    for agent in agents:
        definition = catalog[agent].definition
        values = {**extracted.get(agent, {}), **request_inputs(request, definition, shared)}
        try:
            parameters[agent] = validate_inputs(definition, values)
        except InputError as exc:
            raise InputError(f"{exc}; say it in the request or run the agent directly") from None
    return Route(agents, method, evidence, parameters)


def _missing_inputs(catalog: AgentCatalog, found: Mapping[str, Mapping[str, Any]]) -> bool:
    return any(
        name not in found[agent]
        for agent in found
        for name, spec in catalog[agent].definition.inputs.items()
        if spec.is_required
    )


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
    base = next(iter(catalog.values())).definition.prompts.base
    templates = {}
    for name in (base, CLASSIFIER_PROMPT):
        path = catalog.root / name
        if not path.is_file():
            raise RoutingError(f"the classifier needs the template {name!r} in {catalog.root}")
        templates[name] = path.read_text(encoding="utf-8")
    about = {
        "name": ROUTER_NAME,
        "version": "1",
        "description": "decide which content agents a request asks for",
        "content_type": "mixed",
    }
    return ModelStepSpec(
        agent=about,
        step="decide",
        templates=templates,
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


# -- running the branches --------------------------------------------------------------------


async def run_branch(
    agent_flow: Flow[..., Any],
    agent: str,
    content_type: ContentType,
    inputs: dict[str, Any],
    request: str,
    refresh: bool,
) -> Component:
    """One agent as a sub-flow; its failure becomes a failed component, never the router's."""
    started_at = datetime.now(UTC)
    started = time.monotonic()
    emit(ProgressEvent(ROUTER_NAME, agent, "started"))
    with run_ledger(fresh=True) as ledger:  # the branch's calls, also when it fails
        try:
            result = await agent_flow(**inputs, refresh=refresh, context=request)
        except Exception as exc:  # a branch may fail for any reason; the others must still finish
            emit(ProgressEvent(ROUTER_NAME, agent, "failed", _one_line(exc)))
            spent = ledger.usage
            return Component(
                agent=agent,
                content_type=content_type,
                status="failed",
                name=agent,
                flow_run_id=ledger.flow_run_id,
                started_at=started_at,
                seconds=time.monotonic() - started,
                model_calls=spent.calls,
                model_seconds=spent.latency_seconds,
                tokens=spent.total_tokens,
                cost=spent.cost,
                error=_one_line(exc),
                failed_step=next((a.label for a in ledger.failures()), None),
            )
    assert isinstance(result, AgentResult)
    emit(ProgressEvent(ROUTER_NAME, agent, "done", result.location))
    usage = [s.usage for s in result.steps if not s.cached]
    return Component(
        agent=agent,
        content_type=result.content_type,
        status="completed",
        name=result.title,
        flow_run_id=result.flow_run_id,
        content_id=result.content_id,
        title=result.title,
        location=result.location,
        files=result.files,
        started_at=started_at,
        seconds=time.monotonic() - started,
        model_calls=result.model_calls,
        model_seconds=sum(u.latency_seconds for u in usage),
        tokens=sum(u.total_tokens for u in usage),
        cost=sum(u.cost for u in usage),
        warnings=tuple(result.warnings),
    )


def unique_names(components: list[Component]) -> list[Component]:
    """Components whose display names clash get a deterministic content-hash suffix."""
    counts: dict[str, int] = {}
    for c in components:
        counts[c.name] = counts.get(c.name, 0) + 1
    return [
        c.model_copy(update={"name": f"{c.name} ({_short_hash(c)})"}) if counts[c.name] > 1 else c for c in components
    ]


def _short_hash(component: Component) -> str:
    return (component.content_id or hashlib.sha256(component.agent.encode()).hexdigest())[:6]


def _status(components: list[Component]) -> RunStatus:
    failed = sum(1 for c in components if c.status == "failed")
    return "completed" if not failed else "failed" if failed == len(components) else "partly failed"


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}"[:500]


# -- the manifest ---------------------------------------------------------------------------


@task(name="save-manifest", persist_result=True, result_serializer="json")
async def save_manifest(manifest: Manifest) -> Manifest:
    """Store the manifest as content and show its components as a table on the run page."""
    built = manifest_content(manifest)
    run = RunInfo(flow_run_id=manifest.router_run_id, inputs={"request": manifest.request}, lineage=[])
    saved = await asyncio.to_thread(save_content, built, run)
    await acreate_table_artifact(
        table=[_table_row(c) for c in manifest.components],
        key=f"router-{saved.content_id}",
        description=f"{len(manifest.components)} components for: {manifest.request[:200]}",
    )
    return manifest.model_copy(update={"content_id": saved.content_id, "location": saved.location})


def manifest_content(manifest: Manifest) -> BuiltContent:
    """The manifest as storable content: `manifest.json` and a Markdown summary."""
    data = manifest.model_dump(mode="json", exclude={"content_id", "location"})
    rows = "\n".join(
        f"| {c.name.replace('|', '/')} | {c.agent} | {c.status} | {c.seconds:.1f} s | "
        f"{c.model_calls} | {f'[open]({c.location})' if c.location else (c.error or '').replace('|', '/')} |"
        for c in manifest.components
    )
    summary = (
        f"# {manifest.request}\n\nRouted by {manifest.route}; {manifest.status}.\n\n"
        "| component | agent | status | time | model calls | output |\n|---|---|---|---|---|---|\n"
        f"{rows}\n"
    )
    return BuiltContent(
        content_type=ContentType.mixed,
        title=f"Manifest: {manifest.request[:120]}",
        primary="index.md",
        files=(
            BuiltFile(path="index.md", media_type="text/markdown", text=summary),
            BuiltFile(path="manifest.json", media_type="application/json", text=json.dumps(data, indent=2)),
        ),
        metadata={
            "manifest_version": manifest.version,
            "components": len(manifest.components),
            "status": manifest.status,
        },
        provenance=Provenance(agent=ROUTER_NAME, agent_version=str(manifest.version), step="build"),
    ).sealed()


def _table_row(c: Component) -> dict[str, JsonValue]:
    return {
        "component": c.name,
        "agent": c.agent,
        "type": c.content_type.value,
        "status": c.status,
        "id": c.content_id,
        "uri": c.location,
        "seconds": round(c.seconds, 2),
        "model calls": c.model_calls,
        "tokens": c.tokens,
        "cost": round(c.cost, 6),
        "error": c.error,
        "warnings": "; ".join(c.warnings) or None,
    }


# -- the flow ---------------------------------------------------------------------------------

ROUTER_DOC = """Turn one free-text request into several kinds of content, made concurrently by their agents.

Args:
    request: What to make, in words, e.g. "a lesson on photosynthesis for 8th grade, with a quiz".
    content_types: Agents to run, overriding what the request's words select.
    audience: Who the content is for, passed to every agent that takes an audience.
    language: Language to write in, passed to every agent that takes a language.
    level: Level of the audience (e.g. "8th grade"), passed to the agents that take one.
    refresh: Ignore cached step results and call the model again.
"""


def compile_router(catalog: AgentCatalog) -> Flow[..., Any]:
    """The router flow over the agents of `catalog`."""
    agent_flows = {name: compiled(agent) for name, agent in catalog.items()}

    async def router(**parameters: Any) -> Any:
        started = time.monotonic()
        request = str(parameters["request"])
        shared = {name: parameters.get(name) for name in SHARED_PARAMETERS}
        route = await decide_route(request, catalog, parameters.get("content_types"), shared)
        emit(ProgressEvent(ROUTER_NAME, "route", "done", f"{route.method}: {', '.join(route.agents)}"))
        with SyncClientContext.get_or_create():  # the branches share one sync Prefect client
            components = await asyncio.gather(
                *(
                    run_branch(
                        agent_flows[a],
                        a,
                        catalog[a].definition.content_type,
                        route.parameters[a],
                        request,
                        bool(parameters.get("refresh")),
                    )
                    for a in route.agents
                )
            )
        named = unique_names(list(components))
        context = FlowRunContext.get()
        manifest = Manifest(
            request=request,
            route=route.method,
            evidence=route.evidence,
            parameters=route.parameters,
            components=tuple(named),
            status=_status(named),
            router_run_id=str(context.flow_run.id) if context and context.flow_run else None,
            seconds=time.monotonic() - started,
        )
        manifest = await save_manifest(manifest)
        return _final_state(manifest)

    router.__signature__ = router_signature(list(catalog))  # type: ignore[attr-defined]
    router.__doc__ = ROUTER_DOC
    router.__name__ = router.__qualname__ = ROUTER_NAME
    router.__module__ = "agentflows.agents"
    return flow(
        name=ROUTER_NAME,
        description="Turn one free-text request into several kinds of content, made concurrently by their agents.",
        flow_run_name=_router_run_name,
        persist_result=True,
        # Flow results are pickled: Prefect 3.8 reads a JSON-serialized flow result back as a
        # plain dict (task results, stored as full records, keep their classes with JSON).
        result_storage=current_runtime().settings.result_storage,
        validate_parameters=True,
    )(router)


def _final_state(manifest: Manifest) -> State[Manifest]:
    failed = manifest.failed()
    if not failed:
        return Completed(message=f"{len(manifest.components)} components", data=manifest)
    summary = "; ".join(f"{c.agent}: {c.error}" for c in failed)
    if manifest.status == "failed":
        return Failed(message=f"every branch failed: {summary}", data=manifest)
    return Completed(
        name="Partly failed", message=f"{len(failed)} of {len(manifest.components)} failed: {summary}", data=manifest
    )


def router_signature(agent_names: list[str]) -> inspect.Signature:
    """The router's parameters: the request, a multi-select of content types, shared parameters, refresh."""
    kind = inspect.Parameter.KEYWORD_ONLY
    names: Any = Literal[tuple(agent_names)]
    text = Annotated[str, Field(min_length=3, max_length=4000)]
    return inspect.Signature(
        [
            inspect.Parameter("request", kind, annotation=text),
            inspect.Parameter("content_types", kind, default=None, annotation=list[names] | None),
            *(inspect.Parameter(name, kind, default=None, annotation=str | None) for name in SHARED_PARAMETERS),
            inspect.Parameter("refresh", kind, default=False, annotation=bool),
        ]
    )


def _router_run_name() -> str:
    from prefect.runtime import flow_run

    request = " ".join(str(flow_run.parameters.get("request", "")).split())
    return f"route: {request[:70]}" if request else ROUTER_NAME


# -- Python interface -----------------------------------------------------------------------


def compiled_router(catalog: AgentCatalog) -> Flow[..., Any]:
    """The router over `catalog`, compiled once per set of agent versions and result storage."""
    runtime = current_runtime()
    version = (
        tuple(f"{agent.file}@{agent.flow_version}" for agent in catalog.values()),
        str(runtime.settings.result_storage),
    )
    return runtime.remembered(("router", str(catalog.root)), version, lambda: compile_router(catalog))


async def route_async(
    request: str,
    *,
    content_types: list[str] | None = None,
    audience: str | None = None,
    language: str | None = None,
    level: str | None = None,
    refresh: bool = False,
    definitions: Path | str | None = None,
) -> Manifest:
    """Route `request` and return the manifest (also when some branches failed)."""
    router = compiled_router(load_agents(definitions))
    with SyncClientContext.get_or_create():  # one sync Prefect client for the run, not one per use
        state: State[Any] = await router(  # type: ignore[misc]
            request=request,
            content_types=content_types,
            audience=audience,
            language=language,
            level=level,
            refresh=refresh,
            return_state=True,
        )
    result = await state.aresult(raise_on_failure=False)
    if isinstance(result, BaseException):
        raise result
    if not isinstance(result, Manifest):
        raise AgentflowsError(f"the router ended in state {state.name!r} without a manifest: {state.message}")
    return result


def route(request: str, **options: Any) -> Manifest:
    """Route `request` and return the manifest (blocking); see `route_async` for the options."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(route_async(request, **options))
    raise RuntimeError("route was called inside a running event loop; await route_async(...) instead")
