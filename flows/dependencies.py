"""The dependency graph of one routed request: which chosen agent waits for which.

    declared `uses` (YAML) ─┐
                            ├─► DependencyGraph(agents, edges) ──► order, upstreams, cycles
    `--after quiz=lesson`  ─┘

An edge runs from an upstream agent to a dependent one. It exists when both are
chosen for the request and the dependent's definition `uses` the upstream, or
when the caller sets it by hand (`after`). Pure: no I/O, no Prefect.

Contracts:
- `order()` lists every agent once, each after all its upstreams, otherwise in route order;
- a graph is only made without cycles (`route_graph` raises `RoutingError` naming one);
- an `after` edge names two agents the request runs.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from agentflows.errors import RoutingError
from agentflows.tasks.manifest import Edge


@dataclass(frozen=True)
class DependencyGraph:
    """The agents of one request and the edges between them."""

    agents: tuple[str, ...]
    edges: tuple[Edge, ...] = ()

    def upstreams(self, agent: str) -> tuple[str, ...]:
        """The agents `agent` waits for, in route order."""
        found = {e.upstream for e in self.edges if e.dependent == agent}
        return tuple(a for a in self.agents if a in found)

    def dependents(self, agent: str) -> tuple[str, ...]:
        """The agents that wait for `agent`, in route order."""
        found = {e.dependent for e in self.edges if e.upstream == agent}
        return tuple(a for a in self.agents if a in found)

    def order(self) -> tuple[str, ...]:
        """Every agent after its upstreams; ties keep route order (a stable topological sort)."""
        placed: list[str] = []
        pending = list(self.agents)
        while pending:
            ready = next(a for a in pending if all(u in placed for u in self.upstreams(a)))
            placed.append(ready)
            pending.remove(ready)
        return tuple(placed)

    def describe(self) -> str:
        """`quiz after lesson_plan; ebook after lesson_plan`, or empty when no agent waits."""
        return "; ".join(f"{a} after {', '.join(self.upstreams(a))}" for a in self.agents if self.upstreams(a))


def parse_after(values: Iterable[str]) -> list[tuple[str, str]]:
    """`["quiz=lesson_plan", "ebook=lesson_plan,quiz"]` → (dependent, upstream) pairs."""
    pairs = []
    for value in values:
        dependent, sep, upstreams = (part.strip() for part in value.partition("="))
        names = [u.strip() for u in upstreams.split(",") if u.strip()]
        if not sep or not dependent or not names:
            raise RoutingError(f"after {value!r} needs the form AGENT=UPSTREAM, e.g. 'quiz=lesson_plan'")
        pairs += [(dependent, upstream) for upstream in names]
    return pairs


def route_graph(
    agents: Sequence[str], declared: Mapping[str, Iterable[str]], after: Iterable[str] = ()
) -> DependencyGraph:
    """The graph of `agents`: the `declared` uses between them, plus the `after` edges set by hand."""
    chosen = tuple(agents)
    edges = {
        (u, d): Edge(upstream=u, dependent=d, source="uses")
        for d in chosen
        for u in declared.get(d, ())
        if u in chosen and u != d
    }
    for dependent, upstream in parse_after(after):
        for name in (dependent, upstream):
            if name not in chosen:
                raise RoutingError(
                    f"after {dependent}={upstream}: {name!r} is not one of the agents this request runs "
                    f"({', '.join(chosen)}); add it with --type or name it in the request"
                )
        if dependent == upstream:
            raise RoutingError(f"after {dependent}={upstream}: an agent cannot run after itself")
        edges.setdefault((upstream, dependent), Edge(upstream=upstream, dependent=dependent, source="after"))
    graph = DependencyGraph(chosen, tuple(edges.values()))
    cycle = find_cycle({a: graph.upstreams(a) for a in chosen})
    if cycle:
        raise RoutingError(
            f"the agents would wait for each other ({' → '.join(cycle)}, each after the next); drop one --after"
        )
    return graph


def find_cycle(waits_for: Mapping[str, Iterable[str]]) -> list[str] | None:
    """A chain `a, b, …, a` in which each waits for the next, or None; searched from the keys in order."""
    for cycle in find_cycles(waits_for):
        return cycle
    return None


def find_cycles(waits_for: Mapping[str, Iterable[str]]) -> list[list[str]]:
    """Every distinct cycle a depth-first walk from the keys (in order) finds, each from its first-found agent."""
    found: list[list[str]] = []
    seen: set[frozenset[str]] = set()
    done: set[str] = set()

    def visit(node: str, path: list[str]) -> None:
        if node in path:
            cycle = [*path[path.index(node) :], node]
            if frozenset(cycle) not in seen:
                seen.add(frozenset(cycle))
                found.append(cycle)
            return
        if node in done:
            return
        for target in waits_for.get(node, ()):
            visit(target, [*path, node])
        done.add(node)

    for start in waits_for:
        visit(start, [])
    return found
