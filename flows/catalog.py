"""Find and load every agent definition in a definitions folder.

The folder is `AGENTFLOWS_DEFINITIONS` when set, otherwise the
`agent_definitions/` folder shipped with the package, found with
`importlib.resources` (the same from a wheel, an editable install or a worker's
clone), never from the working directory (Prefect workers start flows in a
temporary directory). Every `*.yaml` file directly inside it is one agent; templates live
anywhere below it. No file is read from outside the folder: a definition or a template
that is a link to a file elsewhere is refused. The router classifier's prompt, `prompts/router/classify.md`, is
optional; when the folder has it, it is loaded and checked with the agents, against the
variables the classifier renders it with, and so is the system prompt it uses.
What one file cannot tell is checked across the folder: the agents each one `uses`
exist and form no cycle, and templates read only what those agents provide
(`agentflows.uses_checks`).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from agentflows.errors import AgentNotFound, DefinitionError, Problem
from agentflows.evals.cases import suite_problems
from agentflows.loader import LoadedAgent, load_definition, outside_link
from agentflows.tasks.runtime import current_runtime
from agentflows.templates import AGENT_ATTRIBUTES, CONTEXT_ATTRIBUTES, Namespace, TemplateChecker
from agentflows.uses_checks import uses_problems
from agentflows.yaml_source import load_yaml

PACKAGED_DEFINITIONS = Path(str(resources.files("agentflows.agent_definitions")))
CLASSIFIER_PROMPT = "prompts/router/classify.md"
"""The router classifier's prompt, relative to the definitions folder."""
CLASSIFIER_VARIABLES: Namespace = {
    "agent": AGENT_ATTRIBUTES,
    "inputs": frozenset({"request"}),
    "context": CONTEXT_ATTRIBUTES,
    "agents": None,
}
"""What `agentflows.classifier.classify` renders the classifier's prompt and system prompt with."""


def definitions_root() -> Path:
    """The folder agents are loaded from: `AGENTFLOWS_DEFINITIONS`, else the shipped one."""
    return current_runtime().settings.definitions or PACKAGED_DEFINITIONS


@dataclass(frozen=True)
class AgentCatalog(Mapping[str, LoadedAgent]):
    """The loaded agents of one definitions folder, by name."""

    root: Path
    agents: Mapping[str, LoadedAgent]
    classifier_templates: Mapping[str, str] | None = None
    """Source of the classifier's prompt, its system prompt and all they include, by name;
    None when the folder has no classifier prompt."""

    def __getitem__(self, name: str) -> LoadedAgent:
        try:
            return self.agents[name]
        except KeyError:
            raise AgentNotFound(name, self.agents) from None

    def __contains__(self, name: object) -> bool:
        return name in self.agents

    def __iter__(self) -> Iterator[str]:
        return iter(self.agents)

    def __len__(self) -> int:
        return len(self.agents)


def definition_files(root: Path) -> list[Path]:
    """The definition files of `root`, sorted by name (links too: `_load` refuses those that lead out of it)."""
    return sorted(p for p in root.glob("*.yaml") if p.is_file())


def load_agents(root: Path | str | None = None) -> AgentCatalog:
    """Load every definition under `root`; raise one `DefinitionError` listing all problems.

    A folder whose files have not changed since it was last loaded (same names, sizes
    and modification times) is not read and validated again.
    """
    folder = (Path(root).expanduser() if root is not None else definitions_root()).resolve()
    if not folder.is_dir():
        raise DefinitionError([Problem(folder, None, "", "the definitions folder does not exist")])
    return current_runtime().remembered(("catalog", folder), _fingerprint(folder), lambda: _load(folder))


def _fingerprint(folder: Path) -> tuple[tuple[str, int, int], ...]:
    """Name, size and modification time of every file under `folder`."""
    found = []
    for path in folder.rglob("*"):
        if path.is_file():
            stat = path.stat()
            found.append((str(path), stat.st_size, stat.st_mtime_ns))
    return tuple(sorted(found))


def _load(folder: Path) -> AgentCatalog:
    agents: dict[str, LoadedAgent] = {}
    problems: list[Problem] = []
    for file in definition_files(folder):
        if problem := outside_link(file, folder):
            problems.append(problem)
            continue
        try:
            agent = load_definition(file, folder)
        except DefinitionError as exc:
            problems += exc.problems
            continue
        if agent.name in agents:
            other = agents[agent.name].file.name
            problems.append(
                Problem(
                    file,
                    load_yaml(agent.yaml_text)[1].line_of(("name",)),
                    "name",
                    f"agent name {agent.name!r} is already used by {other}; names must be unique",
                )
            )
            continue
        agents[agent.name] = agent
    templates, found = classifier_templates(folder, agents)
    problems += [p for p in found if not p.repeats(problems)]  # the agents' checks may have found it already
    problems += [p for p in uses_problems(agents, folder) if not p.repeats(problems)]
    if problems:
        raise DefinitionError(problems)
    return AgentCatalog(folder, agents, templates)


def classifier_templates(
    folder: Path, agents: Mapping[str, LoadedAgent]
) -> tuple[dict[str, str] | None, list[Problem]]:
    """The classifier's templates, checked against `CLASSIFIER_VARIABLES`, and their problems.

    Its system prompt is the first agent's base prompt (which that agent's own
    checks found); without a classifier prompt there is nothing to load.
    """
    prompt = folder / CLASSIFIER_PROMPT
    if not prompt.is_file():
        return None, []
    problems: list[Problem] = []
    checker = TemplateChecker(folder, problems, lambda _, message: problems.append(Problem(prompt, None, "", message)))
    system = [next(iter(agents.values())).definition.prompts.base] if agents else []
    for name in (*system, CLASSIFIER_PROMPT):
        checker.closure((), name, CLASSIFIER_VARIABLES)
    return (None if problems else checker.sources), problems


def check_paths(paths: list[Path]) -> list[Problem]:
    """Every problem in the given files and folders (what `agentflows validate` prints).

    A folder's eval files (`evals/<agent>.yaml`) are checked once its definitions are valid.
    """
    problems: list[Problem] = []
    for path in paths:
        try:
            if path.is_dir():
                catalog = load_agents(path)
                problems += suite_problems(catalog.root, catalog)
            else:
                problems += _file_uses_problems(load_definition(path.resolve(), path.resolve().parent))
        except DefinitionError as exc:
            problems += exc.problems
    return problems


def _file_uses_problems(agent: LoadedAgent) -> list[Problem]:
    """The problems with one file's `uses`, checked against the valid definitions beside it."""
    if not agent.definition.uses:
        return []
    siblings: dict[str, LoadedAgent] = {}
    for file in definition_files(agent.root):
        if file != agent.file:
            try:
                sibling = load_definition(file, agent.root)
            except DefinitionError:
                continue
            siblings.setdefault(sibling.name, sibling)
    return uses_problems({**siblings, agent.name: agent}, agent.root, only=agent.name)
