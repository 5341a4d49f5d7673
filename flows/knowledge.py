"""A definition's knowledge, checked and compiled: what `validate` says about it, what a run gets from it.

`knowledge_problems` is the loader's check of the `knowledge:` key: every source
exists inside the definitions folder and holds readable Markdown or text
(`agentflows.tasks.knowledge.sources.source_problem`), the knowledge input is a
string or list input, and each query template parses and uses only its step's
variables. `knowledge_setup` is the compiler's part: the `KnowledgeSetup` a run
retrieves with, its default queries written out. `places_knowledge` tells whether a
step's templates print `knowledge` themselves; when they do not, the passages are
appended to the step's user message, so adding `knowledge:` to a definition is enough.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path

from jinja2 import TemplateSyntaxError, meta

from agentflows.definition import AgentDefinition
from agentflows.tasks.knowledge.setup import KnowledgeSetup
from agentflows.tasks.knowledge.sources import source_problem
from agentflows.tasks.prompts import environment
from agentflows.templates import Namespace, variable_problems
from agentflows.yaml_source import YamlPath

KNOWLEDGE_VARIABLE = "knowledge"
RETRIEVING_STEPS = ("decide", "generate")
Report = Callable[[YamlPath, str], None]


def knowledge_problems(agent: AgentDefinition, root: Path, report: Report) -> None:
    """Report what is wrong with `agent.knowledge`: its sources in the definitions folder `root`, its input."""
    spec = agent.knowledge
    if spec is None:
        return
    for index, source in enumerate(spec.sources):
        if problem := source_problem(root, source):
            report(("knowledge", "sources", index), problem)
    if spec.input is not None:
        input_spec = agent.inputs.get(spec.input)
        names = ", ".join(agent.inputs) or "none"
        if input_spec is None:
            report(("knowledge", "input"), f"{spec.input!r} is not an input; inputs: {names}")
        elif input_spec.type not in ("string", "list"):
            report(
                ("knowledge", "input"),
                f"input {spec.input!r} is {input_spec.type}; a knowledge input holds folders or s3:// prefixes, "
                "so it must be a string or list input",
            )


def query_problems(agent: AgentDefinition, namespace: Callable[[str], Namespace], report: Report) -> None:
    """Report query templates that do not parse or use variables their step does not provide."""
    if agent.knowledge is None:
        return
    for step in RETRIEVING_STEPS:
        template = getattr(agent.knowledge.query, step)
        if not template:
            continue
        path: YamlPath = ("knowledge", "query", step)
        try:
            ast = environment({}).parse(template)
        except TemplateSyntaxError as exc:
            report(path, f"query {template!r} is not a valid template: {exc.message}")
            continue
        allowed = {k: v for k, v in namespace(step).items() if k != KNOWLEDGE_VARIABLE}
        for message, _ in variable_problems(ast, allowed):
            report(path, f"query {template!r} {message}")


def knowledge_setup(d: AgentDefinition, root: Path) -> KnowledgeSetup | None:
    """What a run of the agent `d`, loaded from the definitions folder `root`, retrieves with; None without
    knowledge."""
    spec = d.knowledge
    if spec is None:
        return None
    queries = {"decide": spec.query.decide, "generate": spec.query.generate}
    defaults = default_queries(d)
    return KnowledgeSetup(
        agent=d.name,
        root=root,
        sources=tuple(spec.sources),
        top_k=spec.top_k,
        max_chars=spec.passage_chars,
        queries={step: defaults[step] if query is None else query for step, query in queries.items()},
        input=spec.input,
    )


def default_queries(d: AgentDefinition) -> dict[str, str]:
    """The queries a step searches with unless `knowledge.query` says otherwise.

    decide: the first required text input (else every text input) and the request;
    generate: the item's title and its other text fields.
    """
    subject = d.first_text_input
    texts = [subject] if subject else [n for n, s in d.inputs.items() if s.type == "string"]
    decide = " ".join([*(f"{{{{ inputs.{n} or '' }}}}" for n in texts), "{{ context.request }}"])
    fields = [n for n, f in d.steps.decide.returns.items.fields.items() if f.type == "string" and n != "title"]
    generate = " ".join(["{{ item.title }}", *(f"{{{{ item.{n} or '' }}}}" for n in fields)])
    return {"decide": decide, "generate": generate}


def places_knowledge(templates: Mapping[str, str]) -> bool:
    """Whether any of `templates` uses the `knowledge` variable (then the passages are not appended)."""
    env = environment({})
    return any(KNOWLEDGE_VARIABLE in meta.find_undeclared_variables(env.parse(source)) for source in templates.values())


def appends_knowledge(d: AgentDefinition, templates: Mapping[str, str]) -> bool:
    """Whether the passages a step retrieves are appended to its user message: the agent has knowledge and
    none of the step's `templates` places it."""
    return d.knowledge is not None and not places_knowledge(templates)
