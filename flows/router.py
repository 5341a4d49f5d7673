"""The router flow: one free-text request, several agents run as concurrent sub-flows, one manifest.

    request ──► decide the route ──► dependency graph ──► agent sub-flows ──► manifest ──► saved + table artifact
                                     (uses, --after)      (each as soon as its
                                                           upstreams finish)

Deciding the route, in order: explicit content types (the caller names the
agents); else the agents' YAML routing hints (`agentflows.routing`, free and
deterministic); else, when those find nothing or are ambiguous and a real model
is configured, the model classifier (`agentflows.classifier`), which returns the
content types and the inputs it reads from the request. Every agent's inputs are
validated against its declared inputs before any branch starts.

Chosen agents that build on each other (`uses` in their YAML, or `after` given by
the caller) form a graph (`agentflows.dependencies`): every ready branch starts at
once and each dependent as soon as its own upstreams finish, with their results
(`agentflows.dag`). A failing branch (`agentflows.branches`) does not stop the
independent ones: the manifest lists it with its error and its dependents as
`skipped`, and the run ends `Completed` named "Partly failed" (or `Failed` when no
branch completed, or when the consistency check after the merge finds a problem).
"""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Awaitable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from prefect import Flow, flow, task
from prefect.artifacts import acreate_table_artifact
from prefect.context import FlowRunContext, SyncClientContext
from prefect.states import Completed, Failed, State
from pydantic import ConfigDict, ValidationError, create_model

from agentflows.api import run_blocking
from agentflows.branches import BranchRun, run_branch, run_status, skipped_branch, unique_names
from agentflows.catalog import AgentCatalog, load_agents
from agentflows.classifier import classify
from agentflows.compiler import compiled
from agentflows.dag import consistency_problems, run_graph
from agentflows.definition import ROUTER_NAME
from agentflows.dependencies import DependencyGraph, route_graph
from agentflows.errors import InputError, RoutingError
from agentflows.inputs import text_annotation, validate_inputs, value_problem
from agentflows.loader import SHARED_PARAMETERS
from agentflows.progress import ProgressEvent, emit
from agentflows.routing import REQUEST_LENGTH, ambiguous_terms, check_request, match_rules, request_inputs
from agentflows.tasks.errors import AgentflowsError
from agentflows.tasks.manifest import Component, Manifest, manifest_content, table_row
from agentflows.tasks.names import shortened
from agentflows.tasks.prefect_api import prefect_clients, riding_out_outages
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
    check_request(request, explicit, catalog)
    if explicit:
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
    after: Extra dependencies, each AGENT=UPSTREAM (e.g. "quiz=lesson_plan"): AGENT runs after UPSTREAM.
    refresh: Ignore cached step results and call the model again.
    review: Agents whose plan an editor reviews before their drafts are written; each such branch pauses on its \
own while the others go on.
"""


def compile_router(catalog: AgentCatalog) -> Flow[..., Any]:
    """The router flow over the agents of `catalog`."""
    agent_flows = {name: compiled(agent) for name, agent in catalog.items()}

    signature = router_signature(list(catalog))

    async def router(**parameters: Any) -> Any:
        # A worker runs this flow outside `route`: its state changes ride out a short outage here too.
        with riding_out_outages():
            return await _route_and_merge(catalog, agent_flows, router_parameters(signature, parameters, catalog))

    router.__signature__ = signature  # type: ignore[attr-defined]
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
        validate_parameters=False,  # the body checks them (router_parameters): one line, not a ParameterTypeError
    )(router)


def router_parameters(
    signature: inspect.Signature, parameters: Mapping[str, Any], catalog: AgentCatalog
) -> dict[str, Any]:
    """The router's parameters checked against its signature (and `check_request`); one `InputError` line if not."""
    fields: Any = {
        p.name: (p.annotation, ... if p.default is inspect.Parameter.empty else p.default)
        for p in signature.parameters.values()
    }
    model = create_model("router_parameters", __config__=ConfigDict(extra="forbid"), **fields)
    if isinstance(parameters.get("request"), str):  # a request it would refuse: say what to write, first
        check_request(parameters["request"], None, catalog)
    try:
        values = model.model_validate(dict(parameters)).model_dump()
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'parameters'}: {e['msg']}" for e in exc.errors())
        raise InputError(f"router: {problems}") from None
    check_request(values["request"], values["content_types"], catalog)
    return values


async def _route_and_merge(
    catalog: AgentCatalog, agent_flows: Mapping[str, Flow[..., Any]], parameters: dict[str, Any]
) -> State[Manifest]:
    """The router flow's body: decide the route, run its graph (each branch as soon as its upstreams
    finish), save the manifest."""
    started = time.monotonic()
    await asyncio.to_thread(current_runtime().store_settings)  # a bad storage URL fails before any model call
    request = str(parameters["request"])
    shared = {name: parameters.get(name) for name in SHARED_PARAMETERS}
    route = await decide_route(request, catalog, parameters.get("content_types"), shared)
    uses = {a: tuple(catalog[a].definition.uses) for a in route.agents}
    graph = route_graph(route.agents, uses, parameters.get("after") or ())
    order = f" ({graph.describe()})" if graph.edges else ""
    emit(ProgressEvent(ROUTER_NAME, "route", "done", f"{route.method}: {', '.join(graph.order())}{order}"))
    refresh = bool(parameters.get("refresh"))
    reviewed = _reviewed(route, parameters.get("review"))
    with SyncClientContext.get_or_create():  # the branches share one sync Prefect client
        components = await _run_branches(catalog, agent_flows, route, graph, request, refresh, reviewed)
    named = unique_names(components)
    context = FlowRunContext.get()
    manifest = Manifest(
        request=request,
        route=route.method,
        evidence=route.evidence,
        parameters=route.parameters,
        components=tuple(named),
        edges=graph.edges,
        problems=tuple(consistency_problems(named, graph.edges)),
        status=run_status(named),
        router_run_id=str(context.flow_run.id) if context and context.flow_run else None,
        seconds=time.monotonic() - started,
    )
    manifest = await save_manifest(manifest)
    return _final_state(manifest)


async def _run_branches(
    catalog: AgentCatalog,
    agent_flows: Mapping[str, Flow[..., Any]],
    route: Route,
    graph: DependencyGraph,
    request: str,
    refresh: bool,
    reviewed: Mapping[str, dict[str, bool]],
) -> list[Component]:
    """Every branch of `graph`, each as soon as its upstreams finish; the components in dependency order."""

    def start(agent: str, upstream: Mapping[str, BranchRun]) -> Awaitable[BranchRun]:
        d = catalog[agent].definition
        inputs = {**route.parameters[agent], **reviewed.get(agent, {})}
        return run_branch(agent_flows[agent], agent, d.content_type, inputs, request, refresh, upstream, d.uses)

    def skip(agent: str, upstream: Mapping[str, BranchRun]) -> BranchRun:
        return skipped_branch(agent, catalog[agent].definition.content_type, upstream)

    return [run.component for run in await run_graph(graph, start, skip)]


def _reviewed(route: Route, review: list[str] | None) -> dict[str, dict[str, bool]]:
    """The `review` parameter of each branch the caller asked to review (the others keep their agent's default)."""
    stray = [name for name in review or [] if name not in route.agents]
    if stray:
        raise RoutingError(f"--review {stray[0]!r} names no branch of this route; it runs: {', '.join(route.agents)}")
    return {name: {"review": True} for name in review or []}


def _final_state(manifest: Manifest) -> State[Manifest]:
    if manifest.problems:
        return Failed(name="Inconsistent", message="; ".join(manifest.problems), data=manifest)
    broken = manifest.failed() + manifest.skipped()
    if not broken:
        return Completed(message=f"{len(manifest.components)} components", data=manifest)
    summary = "; ".join(f"{c.agent}: {c.error}" for c in broken)
    if manifest.status == "failed":
        return Failed(message=f"no branch completed: {summary}", data=manifest)
    counts = f"{len(manifest.failed())} of {len(manifest.components)} failed" + (
        f", {len(manifest.skipped())} skipped" if manifest.skipped() else ""
    )
    return Completed(name="Partly failed", message=f"{counts}: {summary}", data=manifest)


REQUEST_TEXT: Any = text_annotation(*REQUEST_LENGTH)
SHARED_TEXT: Any = text_annotation() | None
_TEXT_FIELDS: dict[str, Any] = {"request": (REQUEST_TEXT, ...), **dict.fromkeys(SHARED_PARAMETERS, (SHARED_TEXT, None))}
_ROUTER_TEXT = create_model("router_inputs", **_TEXT_FIELDS)


def checked_text(request: str, shared: Mapping[str, Any]) -> dict[str, Any]:
    """The router's request and shared parameters, cleaned and checked; `InputError` names a bad one."""
    given = {"request": request, **shared}
    try:
        return _ROUTER_TEXT.model_validate(given).model_dump()
    except ValidationError as exc:
        problems = [value_problem(str(e["loc"][0]), e, given.get(str(e["loc"][0]))) for e in exc.errors()]
        raise InputError(f"router: {'; '.join(problems)}") from None


def router_signature(agent_names: list[str]) -> inspect.Signature:
    """The router's parameters: the request, a multi-select of content types, shared parameters, refresh."""
    kind = inspect.Parameter.KEYWORD_ONLY
    names: Any = Literal[tuple(agent_names)]
    return inspect.Signature(
        [
            inspect.Parameter("request", kind, annotation=REQUEST_TEXT),
            inspect.Parameter("content_types", kind, default=None, annotation=list[names] | None),
            *(inspect.Parameter(name, kind, default=None, annotation=SHARED_TEXT) for name in SHARED_PARAMETERS),
            inspect.Parameter("after", kind, default=None, annotation=list[str] | None),
            inspect.Parameter("refresh", kind, default=False, annotation=bool),
            inspect.Parameter("review", kind, default=None, annotation=list[names] | None),
        ]
    )


def _router_run_name() -> str:
    from prefect.runtime import flow_run

    request = str(flow_run.parameters.get("request", ""))
    return shortened(f"route: {request}", 80) if request.strip() else ROUTER_NAME


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
    after: list[str] | None = None,
    review: list[str] | None = None,
    refresh: bool = False,
    definitions: Path | str | None = None,
) -> Manifest:
    """Route `request` and return the manifest (also when some branches failed or were skipped).

    `after` adds dependencies by hand, each `"AGENT=UPSTREAM"`, to those the agents' `uses` declare;
    `review` names the branches that pause for an editor's review of their plan.
    A request the router would refuse (empty, too long, or naming an unknown content type)
    raises `RoutingError` or `InputError` before any flow run starts.
    """
    catalog = load_agents(definitions)
    check_request(request, content_types, catalog)
    text = checked_text(request, {"audience": audience, "language": language, "level": level})
    router = compiled_router(catalog)
    # One sync and one async Prefect client for the run, not one per use; state changes ride out a short outage.
    with riding_out_outages():
        async with prefect_clients():
            state: State[Any] = await router(  # type: ignore[misc]
                **text, content_types=content_types, after=after, review=review, refresh=refresh, return_state=True
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
