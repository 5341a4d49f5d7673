"""The router flow: one free-text request, several agents run as concurrent sub-flows, one manifest.

    request ──► decide the route ──► agent sub-flows (concurrently) ──► manifest ──► saved + table artifact

Deciding the route, in order: explicit content types (the caller names the
agents); else the agents' YAML routing hints (`agentflows.routing`, free and
deterministic); else, when those find nothing or are ambiguous and a real model
is configured, the model classifier (`agentflows.classifier`), which returns the
content types and the inputs it reads from the request. Every agent's inputs are
validated against its declared inputs before any branch starts.

A failing branch (`agentflows.branches`) does not stop the others: the manifest
lists it with its error, and the run ends `Completed` named "Partly failed" (or
`Failed` when every branch failed).
"""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal

from prefect import Flow, flow, task
from prefect.artifacts import acreate_table_artifact
from prefect.context import FlowRunContext, SyncClientContext
from prefect.states import Completed, Failed, State
from pydantic import Field

from agentflows.api import run_blocking
from agentflows.branches import run_branch, run_status, unique_names
from agentflows.catalog import AgentCatalog, load_agents
from agentflows.classifier import classify
from agentflows.compiler import compiled
from agentflows.definition import ROUTER_NAME
from agentflows.errors import InputError, RoutingError
from agentflows.inputs import validate_inputs
from agentflows.loader import SHARED_PARAMETERS
from agentflows.progress import ProgressEvent, emit
from agentflows.routing import ambiguous_terms, match_rules, request_inputs
from agentflows.tasks.errors import AgentflowsError
from agentflows.tasks.manifest import Manifest, manifest_content, table_row
from agentflows.tasks.previews import viewer_link
from agentflows.tasks.runtime import current_runtime
from agentflows.tasks.steps import save_content
from agentflows.tasks.storage import RunInfo


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


# -- saving the manifest ----------------------------------------------------------------------


@task(name="save-manifest", persist_result=True, result_serializer="json")
async def save_manifest(manifest: Manifest) -> Manifest:
    """Store the manifest as content and show its components as a table on the run page."""
    built = manifest_content(manifest)
    run = RunInfo(flow_run_id=manifest.router_run_id, inputs={"request": manifest.request}, lineage=[])
    saved = await asyncio.to_thread(save_content, built, run)
    await acreate_table_artifact(
        table=[table_row(c, viewer_link(c.content_id, c.location)) for c in manifest.components],
        key=f"router-{saved.content_id}",
        description=f"{len(manifest.components)} components for: {manifest.request[:200]}",
    )
    return manifest.model_copy(update={"content_id": saved.content_id, "location": saved.location})


# -- the flow ---------------------------------------------------------------------------------

ROUTER_DOC = """Turn one free-text request into several kinds of content, made concurrently by their agents.

Args:
    request: What to make, in words, e.g. "a lesson on photosynthesis for 8th grade, with a quiz".
    content_types: Agents to run, overriding what the request's words select.
    audience: Who the content is for, passed to every agent that takes an audience.
    language: Language to write in, passed to every agent that takes a language.
    level: Level of the audience (e.g. "8th grade"), passed to the agents that take one.
    refresh: Ignore cached step results and call the model again.
    review: Agents whose plan an editor reviews before their drafts are written; each such branch pauses on its \
own while the others go on.
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
        reviewed = _reviewed(route, parameters.get("review"))
        with SyncClientContext.get_or_create():  # the branches share one sync Prefect client
            components = await asyncio.gather(
                *(
                    run_branch(
                        agent_flows[a],
                        a,
                        catalog[a].definition.content_type,
                        {**route.parameters[a], **reviewed.get(a, {})},
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
            status=run_status(named),
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


def _reviewed(route: Route, review: list[str] | None) -> dict[str, dict[str, bool]]:
    """The `review` parameter of each branch the caller asked to review (the others keep their agent's default)."""
    stray = [name for name in review or [] if name not in route.agents]
    if stray:
        raise RoutingError(f"--review {stray[0]!r} names no branch of this route; it runs: {', '.join(route.agents)}")
    return {name: {"review": True} for name in review or []}


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
            inspect.Parameter("review", kind, default=None, annotation=list[names] | None),
        ]
    )


def _router_run_name() -> str:
    from prefect.runtime import flow_run

    request = " ".join(str(flow_run.parameters.get("request", "")).split())
    return f"route: {request[:70]}" if request else ROUTER_NAME


# -- Python interface -----------------------------------------------------------------------


def compiled_router(catalog: AgentCatalog) -> Flow[..., Any]:
    """The router over `catalog`, compiled once per set of agent versions, classifier prompt and result storage."""
    runtime = current_runtime()
    version = (
        tuple(f"{agent.file}@{agent.flow_version}" for agent in catalog.values()),
        tuple(sorted((catalog.classifier_templates or {}).items())),
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
    review: list[str] | None = None,
    refresh: bool = False,
    definitions: Path | str | None = None,
) -> Manifest:
    """Route `request` and return the manifest (also when some branches failed); `review` names the branches
    that pause for an editor's review of their plan."""
    router = compiled_router(load_agents(definitions))
    with SyncClientContext.get_or_create():  # one sync Prefect client for the run, not one per use
        state: State[Any] = await router(  # type: ignore[misc]
            request=request,
            content_types=content_types,
            audience=audience,
            language=language,
            level=level,
            review=review,
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
    return run_blocking(lambda: route_async(request, **options), "route")
