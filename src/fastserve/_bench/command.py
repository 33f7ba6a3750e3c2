"""``fastserve bench [module:app]``: the command line of the benchmark, and its main loop.

Flow of :func:`main`:

1. parse the options (defaults from a :class:`Defaults`: the ``fastserve
   bench`` command's are short, ``bench/bench_server.py``'s are the full
   table), pick the servers that are installed and the driver (wrk if on the
   PATH, else the bundled one - the header says which);
2. load the app once here, so that a typo is one error line before any
   server starts;
3. :func:`runner.run` the interleaved rounds, with a progress line on stderr;
4. print the tables (``report.render``) on stdout, write the chart when
   matplotlib is installed, and the markdown / JSON files if asked.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import platform
import sys
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Final, NoReturn, TextIO

from .._cli_options import _positive_int
from .apps import HELLO_SPEC
from .drivers import Driver, choose_driver
from .report import chart, render
from .runner import Plan, Progress, run
from .scenarios import Scenario, parse_scenarios
from .servers import DEFAULT_SERVERS, SERVERS, Server

__all__ = ["CLI_DEFAULTS", "Defaults", "build_parser", "main"]


@dataclass(frozen=True)
class Defaults:
    """The defaults of one front end (``fastserve bench``, ``bench/bench_server.py``)."""

    prog: str
    servers: tuple[str, ...]  # empty: all of them
    scenarios: str
    rounds: int
    duration: float
    warmup: float
    baseline: str
    chart: Path | None
    description: str = ""
    epilog: str = ""
    extra_servers: tuple[Server, ...] = field(default=())


CLI_DEFAULTS: Final = Defaults(
    prog="fastserve bench",
    servers=DEFAULT_SERVERS,
    scenarios="ka32,close32",
    rounds=2,
    duration=2.0,
    warmup=0.5,
    baseline="fastserve",
    chart=Path("fastserve-bench.png"),
    description="Benchmark a WSGI app (default: a hello-world app) under fastserve and the other"
    " servers installed here, over loopback: keep-alive and Connection: close, interleaved"
    " rounds, medians, ratios to fastserve. Uses wrk when it is on the PATH, a bundled driver"
    " otherwise. Takes about a minute with the defaults.",
)


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        _fail(f"{message} (see '{self.prog} --help')")


def _fail(message: str) -> NoReturn:
    print(f"fastserve: error: {message}", file=sys.stderr, flush=True)
    sys.exit(2)


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, not {text!r}") from None
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"must be more than 0, not {text}")
    return value


def _catalogue(defaults: Defaults) -> dict[str, Server]:
    return {s.name: s for s in (*SERVERS, *defaults.extra_servers)}


def build_parser(defaults: Defaults = CLI_DEFAULTS) -> argparse.ArgumentParser:
    """The options, with ``defaults``."""
    names = ", ".join(_catalogue(defaults))
    parser = _Parser(
        prog=defaults.prog, description=defaults.description, epilog=defaults.epilog or None
    )
    parser.add_argument(
        "app",
        nargs="?",
        metavar="module:app",
        help="the WSGI app to benchmark, as 'fastserve module:app' takes it"
        " (default: a hello-world app)",
    )
    parser.add_argument("--path", default="/", help="the path requested (default: /)")
    parser.add_argument(
        "--servers",
        help=f"comma-separated servers, or 'all'; of: {names}"
        f" (default: {', '.join(defaults.servers) or 'all'}; each only where installed)",
    )
    parser.add_argument(
        "--scenarios",
        help="comma-separated cells: ka<N> keep-alive, close<N> Connection: close,"
        " post<N> 64 KiB POSTs, flask<N> the built-in Flask app, with N connections"
        f" (default: {defaults.scenarios})",
    )
    parser.add_argument(
        "-c",
        "--connections",
        type=_positive_int,
        help="N connections in every cell (default: as the scenarios say)",
    )
    parser.add_argument(
        "--rounds", type=_positive_int, default=defaults.rounds,
        help=f"interleaved rounds; the tables show medians (default: {defaults.rounds})",
    )  # fmt: skip
    parser.add_argument(
        "-d", "--duration", type=_positive_float, default=defaults.duration,
        help=f"seconds measured per cell (default: {defaults.duration:g}; wrk rounds up to"
        " whole seconds)",
    )  # fmt: skip
    parser.add_argument(
        "--warmup", type=float, default=defaults.warmup,
        help=f"warm-up seconds per cell, not measured (default: {defaults.warmup:g})",
    )  # fmt: skip
    parser.add_argument(
        "--driver", choices=["auto", "wrk", "python"], default="auto",
        help="load generator: wrk if on the PATH (auto), wrk, or the bundled Python driver",
    )  # fmt: skip
    parser.add_argument(
        "--client-threads", type=_positive_int, default=max(1, min(4, (os.cpu_count() or 2) // 2)),
        help="wrk threads, or bundled driver processes (default: half the CPUs, 1 to 4)",
    )  # fmt: skip
    parser.add_argument(
        "--baseline", default=defaults.baseline,
        help=f"the server ratios are taken to (default: {defaults.baseline})",
    )  # fmt: skip
    chart_help = f" (default: {defaults.chart})" if defaults.chart else ""
    parser.add_argument(
        "--chart", type=Path, default=defaults.chart,
        help=f"write a PNG bar chart here when matplotlib is installed{chart_help}",
    )  # fmt: skip
    parser.add_argument("--no-chart", action="store_true", help="do not write a chart")
    parser.add_argument("--markdown", type=Path, help="also write the tables to this file")
    parser.add_argument("--json", type=Path, help="also write every measurement to this file")
    return parser


def _select_servers(
    text: str | None, defaults: Defaults
) -> tuple[list[Server], list[tuple[str, str]]]:
    """The servers to run (installed ones) and the ``(name, hint)`` of the missing ones."""
    catalogue = _catalogue(defaults)
    if text is None:
        wanted = list(defaults.servers) or list(catalogue)
    elif text.strip() == "all":
        wanted = list(catalogue)
    else:
        wanted = [n.strip() for n in text.split(",") if n.strip()]
        unknown = [n for n in wanted if n not in catalogue]
        if unknown:
            _fail(f"unknown server {', '.join(unknown)} (known: {', '.join(catalogue)})")
    chosen = [catalogue[n] for n in dict.fromkeys(wanted)]
    return (
        [s for s in chosen if s.installed()],
        [(s.name, s.install_hint or "not installed") for s in chosen if not s.installed()],
    )


class _ProgressLine:
    """One line on stderr, rewritten after every cell (a line per cell when not a terminal)."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self.stream = stream or sys.stderr
        self.tty = self.stream.isatty()
        self.open = False

    def __call__(self, p: Progress) -> None:
        if p.measurement is not None:
            what = f"{p.measurement.rps:,.0f} req/s"
        else:
            what = "failed"
        left = f", ~{p.remaining:.0f} s left" if p.done < p.total else ""
        text = (
            f"[{p.done}/{p.total}] round {p.round + 1} {p.server}, {p.scenario.title}: {what}{left}"
        )
        if self.tty:
            print(f"\r\x1b[K{text}", end="", file=self.stream, flush=True)
            self.open = True
        else:
            print(text, file=self.stream, flush=True)

    def finish(self) -> None:
        if self.open:
            print(file=self.stream, flush=True)
            self.open = False


def main(
    argv: Sequence[str] | None = None,
    defaults: Defaults = CLI_DEFAULTS,
    check_app: Callable[[str], None] | None = None,
) -> int:
    """Run the benchmark; print the tables. Returns the exit status (1: nothing was measured).

    :param check_app: loads the user's ``module:app`` once before any server
        starts and exits with a one-line error when it cannot (the command
        passes :func:`fastserve.cli.check_app_or_exit`; this package does not
        import the CLI above it).
    """
    args = build_parser(defaults).parse_args(argv)
    target = args.app or HELLO_SPEC
    try:
        scenarios = parse_scenarios(args.scenarios or defaults.scenarios)
    except ValueError as exc:
        _fail(str(exc))
    if args.connections:
        scenarios = list(dict.fromkeys(Scenario(s.kind, args.connections) for s in scenarios))
    servers, missing = _select_servers(args.servers, defaults)
    if args.warmup < 0:
        _fail("--warmup must be 0 or more")
    if not args.path.startswith("/"):
        _fail(f"--path must start with '/', not {args.path!r}")
    notes = []
    if any(s.kind == "flask" for s in scenarios) and not _have("flask"):
        scenarios = [s for s in scenarios if s.kind != "flask"]
        notes.append("flask scenarios skipped: Flask is not installed (pip install flask)")
    if not servers or not scenarios:
        _fail("nothing to run: " + ("no server installed" if not servers else "no scenario"))
    if args.app and check_app is not None:
        check_app(args.app)
    try:
        driver, driver_line = choose_driver(args.driver, args.client_threads)
    except ValueError as exc:
        _fail(str(exc))
    plan = Plan(
        servers, scenarios, args.rounds, args.duration, args.warmup, target, args.path,
        os.getcwd(),
    )  # fmt: skip
    return _run(plan, driver, driver_line, args, defaults.prog, missing, notes)


def _have(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


def _run(
    plan: Plan, driver: Driver, driver_line: str, args: argparse.Namespace, prog: str,
    missing: list[tuple[str, str]], notes: list[str],
) -> int:  # fmt: skip
    cpus = os.cpu_count() or 1
    app = "a hello-world app" if plan.target == HELLO_SPEC else repr(plan.target)
    load_before = os.getloadavg()[0]
    print(
        f"{prog}: {app}, {len(plan.servers)} servers x {len(plan.scenarios)} cells x"
        f" {plan.rounds} rounds, about {plan.estimate(driver.name == 'wrk'):.0f} s; {driver_line}",
        file=sys.stderr,
        flush=True,
    )
    progress = _ProgressLine()
    try:
        results = run(plan, driver, progress)
    except KeyboardInterrupt:
        progress.finish()
        print(f"{prog}: interrupted; the servers are stopped", file=sys.stderr)
        return 130
    finally:
        progress.finish()
        driver.close()
    header = [
        f"{prog}: {app} at {plan.path} on 127.0.0.1; {len(plan.servers)} servers x"
        f" {len(plan.scenarios)} cells, {plan.rounds} interleaved round"
        f"{'s' * (plan.rounds != 1)} of {plan.duration:g} s per cell (+{plan.warmup:g} s"
        " warm-up)",
        driver_line,
        f"machine: {cpus} CPUs, {platform.python_implementation()} {platform.python_version()}"
        f" on {platform.system()}; load average {load_before:.2f} before,"
        f" {os.getloadavg()[0]:.2f} after",
        *notes,
    ]
    if args.baseline not in results.servers:
        header.append(f"no ratios: the baseline {args.baseline!r} is not among the servers")
    table = render(results, args.baseline, cpus, header, missing)
    print(table, flush=True)
    if args.markdown:
        args.markdown.write_text(table + "\n")
    if args.json:
        args.json.write_text(
            json.dumps(
                {
                    name: {key: [asdict(m) for m in ms] for key, ms in cells.items()}
                    for name, cells in results.cells.items()
                },
                indent=1,
            )
            + "\n"
        )
    if args.chart is not None and not args.no_chart:
        title = f"WSGI servers on loopback: {app} (median of {plan.rounds}, {driver.name})"
        if chart(results, args.chart, title, cpus):
            print(f"chart: {args.chart}", file=sys.stderr)
        else:
            print("no chart: matplotlib is not installed (pip install matplotlib)", file=sys.stderr)
    measured = any(ms for cells in results.cells.values() for ms in cells.values())
    return 0 if measured else 1
