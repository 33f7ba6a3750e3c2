"""The results as text (markdown tables and notes) and as a PNG bar chart.

Each cell shows the median of its rounds. The first table gives requests/s
and, in parentheses, the ratio to the baseline server's median in the same
cell of the same run - except where ``verdict.client_limit`` says the client
was the limit (in that cell, or in the baseline's), which the cell says
instead. The second gives p50 / p99 latency and the CPU of the client and of
the server. Notes under the tables list errors, client-bound cells,
connections a server never accepted, failures and servers that are not
installed.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from pathlib import Path

from .drivers import Measurement
from .runner import Results
from .scenarios import Scenario
from .verdict import client_limit

__all__ = ["chart", "median", "render"]


def median(ms: Sequence[Measurement]) -> Measurement:
    """The median of each figure over the rounds; requests and errors are summed."""
    kinds: dict[str, int] = {}
    for m in ms:
        for kind, n in m.error_kinds.items():
            kinds[kind] = kinds.get(kind, 0) + n
    server = [m.server_cpu for m in ms]
    queued = [m.unaccepted for m in ms]
    return Measurement(
        statistics.median(m.rps for m in ms),
        statistics.median(m.p50_ms for m in ms),
        statistics.median(m.p99_ms for m in ms),
        sum(m.requests for m in ms),
        sum(m.errors for m in ms),
        statistics.median(m.client_cpu for m in ms),
        max(m.client_threads for m in ms),
        None if None in server else statistics.median(c for c in server if c is not None),
        kinds,
        None if None in queued else int(statistics.median(q for q in queued if q is not None)),
    )


def _medians(results: Results) -> dict[str, dict[str, Measurement]]:
    return {
        name: {key: median(ms) for key, ms in cells.items() if ms}
        for name, cells in results.cells.items()
    }


def _limits(medians: dict[str, dict[str, Measurement]], cpus: int) -> dict[tuple[str, str], str]:
    limits = {}
    for name, cells in medians.items():
        for key, m in cells.items():
            why = client_limit(m.client_cpu, m.client_threads, m.server_cpu, cpus)
            if why:
                limits[(name, key)] = why
    return limits


def _table(title: str, scenarios: Sequence[Scenario], rows: list[list[str]]) -> list[str]:
    lines = [title, "", "| server | " + " | ".join(s.title for s in scenarios) + " |"]
    lines.append("|---|" + "---:|" * len(scenarios))
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return lines


def _ms(value: float) -> str:
    return "-" if math.isnan(value) else f"{value:.2f}"


def render(
    results: Results, baseline: str, cpus: int, header: Sequence[str] = (),
    missing: Sequence[tuple[str, str]] = (),
) -> str:  # fmt: skip
    """The tables and notes.

    :param baseline: the server the ratios are taken to.
    :param cpus: the machine's CPU count (for the client-limit rule).
    :param header: lines to print first (what ran, the driver, the machine).
    :param missing: ``(server, install hint)`` of servers that are not installed.
    """
    medians = _medians(results)
    limits = _limits(medians, cpus)
    scenarios = results.scenarios
    rounds = max((len(ms) for cells in results.cells.values() for ms in cells.values()), default=0)
    rate_rows, latency_rows = [], []
    for name in results.servers:
        cells = medians.get(name, {})
        rates, latencies = [name], [name]
        for s in scenarios:
            m = cells.get(s.key)
            if m is None:
                rates.append("failed" if (name, s.key) in results.failures else "-")
                latencies.append("-")
                continue
            text = f"{m.rps:,.0f}"
            base = medians.get(baseline, {}).get(s.key)
            if (name, s.key) in limits:
                text += " (client-bound)"
            elif name != baseline and base is not None and base.rps > 0:
                if (baseline, s.key) in limits:
                    text += " (baseline client-bound)"
                else:
                    text += f" ({m.rps / base.rps:.2f}x)"
            if m.errors:
                text += f" [{m.errors:,} err]"
            if m.unaccepted:
                text += f" [{m.unaccepted:,} unserved]"
            rates.append(text)
            server_cpu = "?" if m.server_cpu is None else f"{m.server_cpu:.0%}"
            latencies.append(
                f"{_ms(m.p50_ms)} / {_ms(m.p99_ms)} ms, {m.client_cpu:.0%} / {server_cpu}"
            )
        rate_rows.append(rates)
        latency_rows.append(latencies)
    lines = [*header, ""] if header else []
    lines += _table(
        f"Requests/s, median of {rounds} round{'s' * (rounds != 1)}"
        f" (ratio to {baseline} in the same run):",
        scenarios,
        rate_rows,
    )
    lines += [""]
    lines += _table(
        "Latency p50 / p99, and CPU of the client / the server (100% = one core):",
        scenarios,
        latency_rows,
    )
    notes = _notes(results, medians, limits, missing)
    if notes:
        lines += ["", *notes]
    return "\n".join(lines)


def _notes(
    results: Results, medians: dict[str, dict[str, Measurement]],
    limits: dict[tuple[str, str], str], missing: Sequence[tuple[str, str]],
) -> list[str]:  # fmt: skip
    titles = {s.key: s.title for s in results.scenarios}
    notes = [
        f"- {name}, {titles[key]}: client-bound - {why}; the server may be faster than this"
        " (no ratio)"
        for (name, key), why in limits.items()
    ]
    for name, cells in medians.items():
        for key, m in cells.items():
            if m.errors:
                kinds = ", ".join(f"{n:,} {kind}" for kind, n in m.error_kinds.items())
                notes.append(f"- {name}, {titles[key]}: {m.errors:,} errors ({kinds})")
    connections = {s.key: s.connections for s in results.scenarios}
    for name, cells in medians.items():
        for key, m in cells.items():
            if m.unaccepted:
                notes.append(
                    f"- {name}, {titles[key]}: at least {m.unaccepted:,} of"
                    f" {connections[key]:,} connections were never accepted (in the listen"
                    " queue through the second half of the cell; a full queue hides more):"
                    " the rate is that of the others"
                )
    for (name, key), why in results.failures.items():
        notes.append(f"- {name}, {titles[key]}: failed: {why}")
    notes += [f"- {name}: not installed ({hint})" for name, hint in missing]
    return notes


def chart(results: Results, path: Path, title: str, cpus: int) -> bool:
    """A grouped bar chart of median requests/s (log scale) as a PNG at ``path``.

    Client-bound cells are hatched. Returns ``False`` when matplotlib is not installed.
    """
    try:
        import matplotlib  # type: ignore[import-not-found, unused-ignore]

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt  # type: ignore[import-not-found, unused-ignore]
    except ImportError:
        return False
    medians = _medians(results)
    limits = _limits(medians, cpus)
    names = [n for n in results.servers if medians.get(n)]
    scenarios = results.scenarios
    width = 0.8 / max(1, len(names))
    fig, ax = plt.subplots(figsize=(max(7.0, 2.2 * len(scenarios) + 3), 5.5))
    palette = plt.get_cmap("tab20") if len(names) > 10 else plt.get_cmap("tab10")
    for i, name in enumerate(names):
        color = palette(i % palette.N)
        label: str | None = name
        for j, s in enumerate(scenarios):
            m = medians[name].get(s.key)
            if m is None:
                continue
            hatch = "//" if (name, s.key) in limits else None
            ax.bar(j + i * width, m.rps, width, color=color, hatch=hatch, label=label)
            label = None
    ax.legend(fontsize="small", ncol=3)
    ax.set_xticks([j + 0.4 - width / 2 for j in range(len(scenarios))])
    ax.set_xticklabels([s.title for s in scenarios], fontsize="small")
    ax.set_yscale("log")
    ax.set_ylabel("requests/s (log scale)")
    ax.set_title(title + ("\nhatched: client-bound" if limits else ""), fontsize="medium")
    ax.grid(axis="y", which="both", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True
