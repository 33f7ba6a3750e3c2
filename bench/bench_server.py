"""Loopback benchmark: fastserve against werkzeug's dev server and production WSGI servers.

Each server runs a hello-world WSGI app in its own subprocess on 127.0.0.1 and
is driven by ``wrk`` (or, when wrk is absent, by a bundled asyncio load
driver). Cells: keep-alive with 1 and with 32 connections, ``Connection:
close`` with 32, and a 64 KiB POST (keep-alive, 32 connections). Servers are
interleaved: every round starts each server in turn (in a rotated order), runs
all cells against it and stops it; the table shows the median of the rounds.
This machine's absolute figures swing with background load, so read the
ratios against werkzeug measured in the same run.

Servers (each single-process; access logs off unless the name says otherwise):

* ``fastserve`` - ``fastserve.run_simple(threaded=True)``, compiled parser;
* ``fastserve-py`` - the same with ``FASTSERVE_NO_EXTENSIONS=1``;
* ``fastserve-log`` - compiled, with werkzeug-style access logging on (to /dev/null);
* ``werkzeug`` - ``werkzeug.serving.run_simple(threaded=True)``, the baseline;
* ``waitress`` (default 4 threads), ``gunicorn-sync`` (1 worker),
  ``gunicorn-gthread`` (1 worker, 8 threads), ``granian`` (WSGI, 1 worker) and
  ``bjoern`` - each when installed (bench-only: ``pip install waitress gunicorn
  granian matplotlib``; bjoern needs ``apt-get install libev-dev`` first).

Usage::

    python bench/bench_server.py                  # 3 rounds x 5 s per cell
    python bench/bench_server.py --quick          # 1 round x 2 s per cell
    python bench/bench_server.py --servers fastserve,werkzeug,waitress --rounds 5
    python bench/bench_server.py --profile fastserve --scenarios ka32   # py-spy profile

Install wrk with ``apt-get install wrk`` (Debian/Ubuntu) or ``brew install wrk``.
Without it the Python driver is used; it saturates far below the fast servers,
so the table then says which driver produced it. Writes a markdown table to
stdout (and ``--markdown``) and a bar chart to ``bench/bench_server.png``.
Never run by CI; results are not committed.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
HOST = "127.0.0.1"
HELLO = b"Hello, World!"
POST_SIZE = 64 * 1024
BASELINE = "werkzeug"


# --- the application under test ---------------------------------------------------------


def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
    """Hello world; a request body (the POST cell) is read completely first."""
    length = environ.get("CONTENT_LENGTH")
    if length:
        remaining = int(length)
        stream = environ["wsgi.input"]
        while remaining > 0:
            chunk = stream.read(min(remaining, 65536))
            if not chunk:
                break
            remaining -= len(chunk)
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(HELLO)))])
    return [HELLO]


# --- servers ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Server:
    """How to start one server on a port; ``module`` is what must be importable."""

    name: str
    module: str
    command: Callable[[int], list[str]]
    env: dict[str, str] = field(default_factory=dict)
    install_hint: str = ""


def _serve_self(name: str) -> Callable[[int], list[str]]:
    return lambda port: [sys.executable, str(Path(__file__).resolve()), "--serve", name, str(port)]


SERVERS: tuple[Server, ...] = (
    Server("fastserve", "fastserve", _serve_self("fastserve")),
    Server(
        "fastserve-py", "fastserve", _serve_self("fastserve-py"), {"FASTSERVE_NO_EXTENSIONS": "1"}
    ),
    Server("fastserve-log", "fastserve", _serve_self("fastserve-log")),
    # an older checkout's fastserve (its src/ with the extension built in
    # place) for A/B runs: FASTSERVE_BASE=/path/to/checkout/src
    Server(
        "fastserve-base",
        "fastserve",
        _serve_self("fastserve"),
        {"PYTHONPATH": os.environ.get("FASTSERVE_BASE", "")},
        install_hint="set FASTSERVE_BASE to an older checkout's src directory",
    ),
    Server("werkzeug", "werkzeug", _serve_self("werkzeug")),
    Server("waitress", "waitress", _serve_self("waitress"), install_hint="pip install waitress"),
    Server(
        "gunicorn-sync",
        "gunicorn",
        lambda port: [
            sys.executable, "-m", "gunicorn", "--chdir", str(BENCH_DIR), "-w", "1",
            "-k", "sync", "-b", f"{HOST}:{port}", "--log-level", "warning", "bench_server:app",
        ],
        install_hint="pip install gunicorn",
    ),  # fmt: skip
    Server(
        "gunicorn-gthread",
        "gunicorn",
        lambda port: [
            sys.executable, "-m", "gunicorn", "--chdir", str(BENCH_DIR), "-w", "1",
            "-k", "gthread", "--threads", "8", "-b", f"{HOST}:{port}",
            "--log-level", "warning", "bench_server:app",
        ],
        install_hint="pip install gunicorn",
    ),  # fmt: skip
    Server(
        "granian",
        "granian",
        lambda port: [
            sys.executable, "-m", "granian", "--interface", "wsgi", "--host", HOST,
            "--port", str(port), "--workers", "1", "--http", "1", "--no-ws",
            "--no-access-log", "--log-level", "warning", "--working-dir", str(BENCH_DIR),
            "bench_server:app",
        ],
        install_hint="pip install granian",
    ),  # fmt: skip
    Server(
        "bjoern",
        "bjoern",
        _serve_self("bjoern"),
        install_hint="apt-get install libev-dev && pip install bjoern",
    ),
)  # fmt: skip


def serve(name: str, port: int) -> None:
    """Run server ``name`` in this process (the ``--serve`` mode of this script)."""
    import logging

    if name.startswith("fastserve"):
        import fastserve.parser
        from fastserve import run_simple

        expected = "py" if name == "fastserve-py" else "c"
        if fastserve.parser.PARSER_IMPL != expected:
            sys.exit(f"{name}: parser is {fastserve.parser.PARSER_IMPL!r}, expected {expected!r}")
        if name != "fastserve-log":
            logging.getLogger("werkzeug").setLevel(logging.WARNING)
        run_simple(HOST, port, app, threaded=True)
    elif name == "werkzeug":
        from werkzeug.serving import run_simple as werkzeug_run_simple

        logging.getLogger("werkzeug").setLevel(logging.WARNING)
        werkzeug_run_simple(HOST, port, app, threaded=True)
    elif name == "waitress":
        import waitress

        waitress.serve(app, host=HOST, port=port, _quiet=True)
    elif name == "bjoern":
        import bjoern

        bjoern.run(app, HOST, port)
    else:
        sys.exit(f"unknown server {name!r}")


def _importable(module: str) -> bool:
    proc = subprocess.run(
        [sys.executable, "-c", f"import {module}"], capture_output=True, timeout=60
    )
    return proc.returncode == 0


def _free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


def _get_ok(port: int, timeout: float = 1.0) -> bool:
    try:
        with socket.create_connection((HOST, port), timeout=timeout) as s:
            s.sendall(b"GET / HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n")
            data = b""
            while chunk := s.recv(4096):
                data += chunk
        return data.startswith(b"HTTP/1.") and b" 200 " in data.split(b"\r\n", 1)[0]
    except OSError:
        return False


class RunningServer:
    """A server subprocess in its own process group; stopped with its children."""

    def __init__(self, server: Server, port: int) -> None:
        self.server, self.port = server, port
        env = {**os.environ, **server.env}
        if not server.env.get("FASTSERVE_NO_EXTENSIONS"):
            env.pop("FASTSERVE_NO_EXTENSIONS", None)
        # stderr goes to a file, never a pipe: a server that logs a lot (waitress warns
        # "Task queue depth" under load) would block on a full pipe nobody reads.
        self.stderr = tempfile.TemporaryFile()
        self.proc = subprocess.Popen(
            server.command(port),
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL if server.name == "fastserve-log" else self.stderr,
            start_new_session=True,
        )

    def wait_ready(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                self.stderr.seek(0)
                err = self.stderr.read().decode(errors="replace")
                raise RuntimeError(f"exited with {self.proc.returncode}: {err[-500:]}")
            if _get_ok(self.port):
                return
            time.sleep(0.1)
        raise RuntimeError(f"not ready after {timeout:.0f}s")

    def stop(self) -> None:
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGTERM)
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(10)
            except ProcessLookupError:
                pass
        self.stderr.close()


# --- scenarios and load drivers ---------------------------------------------------------------


@dataclass(frozen=True)
class Scenario:
    key: str
    title: str
    connections: int
    close: bool = False
    post: bool = False


SCENARIOS: tuple[Scenario, ...] = (
    Scenario("ka1", "keep-alive, 1 conn", 1),
    Scenario("ka32", "keep-alive, 32 conns", 32),
    Scenario("close32", "Connection: close, 32 conns", 32, close=True),
    Scenario("post64k", "64 KiB POST, 32 conns", 32, post=True),
)


@dataclass
class Measurement:
    rps: float
    p50_ms: float
    p99_ms: float
    requests: int
    errors: int


_WRK_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 60e3}


def _wrk_ms(text: str) -> float:
    m = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text)
    if not m:
        raise ValueError(f"unexpected wrk latency {text!r}")
    return float(m.group(1)) * _WRK_UNITS[m.group(2)]


def parse_wrk(output: str) -> Measurement:
    """Requests/s, p50/p99 latency and error counts from ``wrk --latency`` output."""
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1))  # type: ignore[union-attr]
    p50 = _wrk_ms(re.search(r"^\s+50%\s+(\S+)", output, re.M).group(1))  # type: ignore[union-attr]
    p99 = _wrk_ms(re.search(r"^\s+99%\s+(\S+)", output, re.M).group(1))  # type: ignore[union-attr]
    total = int(re.search(r"(\d+) requests in", output).group(1))  # type: ignore[union-attr]
    errors = 0
    if m := re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output
    ):
        errors += sum(int(g) for g in m.groups())
    if m := re.search(r"Non-2xx or 3xx responses: (\d+)", output):
        errors += int(m.group(1))
    return Measurement(rps, p50, p99, total, errors)


def run_wrk(port: int, scenario: Scenario, duration: float, lua_dir: Path) -> Measurement:
    cmd = [
        "wrk", f"-t{min(2, scenario.connections)}", f"-c{scenario.connections}",
        f"-d{max(1, round(duration))}s", "--latency", "--timeout", "10s",
    ]  # fmt: skip
    if scenario.close:
        cmd += ["-H", "Connection: close"]
    if scenario.post:
        script = lua_dir / "post64k.lua"
        if not script.exists():
            script.write_text(
                'wrk.method = "POST"\n'
                f'wrk.body = string.rep("x", {POST_SIZE})\n'
                'wrk.headers["Content-Type"] = "application/octet-stream"\n'
            )
        cmd += ["-s", str(script)]
    cmd.append(f"http://{HOST}:{port}/")
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=duration + 60)
    if proc.returncode != 0:
        raise RuntimeError(f"wrk failed: {proc.stderr.strip()}")
    return parse_wrk(proc.stdout)


async def _python_connection(
    port: int, scenario: Scenario, deadline: float, request: bytes, latencies: list[float],
    errors: list[int], max_requests: int,
) -> None:  # fmt: skip
    reader = writer = None
    while time.perf_counter() < deadline and len(latencies) < max_requests:
        start = time.perf_counter()
        try:
            if writer is None:
                reader, writer = await asyncio.open_connection(HOST, port)
            assert reader is not None
            writer.write(request)
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
            m = re.search(rb"(?i)\r\ncontent-length:\s*(\d+)", head)
            if m:
                await asyncio.wait_for(reader.readexactly(int(m.group(1))), 10)
            else:
                await asyncio.wait_for(reader.read(), 10)
            if b" 200 " not in head.split(b"\r\n", 1)[0]:
                errors[0] += 1
        except (OSError, asyncio.IncompleteReadError, asyncio.TimeoutError):
            errors[0] += 1
            if writer is not None:
                writer.close()
            reader = writer = None
            continue
        latencies.append(time.perf_counter() - start)
        if scenario.close or m is None or re.search(rb"(?i)\r\nconnection:\s*close", head):
            writer.close()
            reader = writer = None
    if writer is not None:
        writer.close()


def run_python_driver(port: int, scenario: Scenario, duration: float) -> Measurement:
    """The bundled load driver: asyncio clients, bounded by time and by request count."""
    body = b"x" * POST_SIZE if scenario.post else b""
    head = f"{'POST' if scenario.post else 'GET'} / HTTP/1.1\r\nHost: {HOST}:{port}\r\n"
    if scenario.close:
        head += "Connection: close\r\n"
    if body:
        head += f"Content-Type: application/octet-stream\r\nContent-Length: {len(body)}\r\n"
    request = head.encode() + b"\r\n" + body
    latencies: list[float] = []
    errors = [0]

    async def main() -> float:
        start = time.perf_counter()
        deadline = start + duration
        await asyncio.gather(
            *(
                _python_connection(port, scenario, deadline, request, latencies, errors, 2_000_000)
                for _ in range(scenario.connections)
            )
        )
        return time.perf_counter() - start

    elapsed = asyncio.run(main())
    if len(latencies) < 2:
        return Measurement(
            len(latencies) / elapsed, float("nan"), float("nan"), len(latencies), errors[0]
        )
    q = statistics.quantiles(latencies, n=100, method="inclusive")
    return Measurement(
        len(latencies) / elapsed, q[49] * 1e3, q[98] * 1e3, len(latencies), errors[0]
    )


# --- the run ---------------------------------------------------------------------------------


def measure(
    servers: list[Server], scenarios: list[Scenario], rounds: int, duration: float,
    warmup: float, driver: str,
) -> tuple[dict[str, dict[str, list[Measurement]]], dict[str, str]]:  # fmt: skip
    """Run every (server, scenario) cell ``rounds`` times; servers rotate between rounds."""
    results: dict[str, dict[str, list[Measurement]]] = {s.name: {} for s in servers}
    failures: dict[str, str] = {}
    lua_dir = Path(tempfile.mkdtemp(prefix="bench-wrk-"))
    try:
        for rnd in range(rounds):
            order = servers[rnd % len(servers) :] + servers[: rnd % len(servers)]
            for server in order:
                if server.name in failures:
                    continue
                running = RunningServer(server, _free_port())
                try:
                    running.wait_ready()
                    for scenario in scenarios:
                        drive = (
                            (lambda p, s, d: run_wrk(p, s, d, lua_dir))
                            if driver == "wrk"
                            else run_python_driver
                        )
                        if warmup > 0:
                            drive(running.port, scenario, warmup)
                        m = drive(running.port, scenario, duration)
                        results[server.name].setdefault(scenario.key, []).append(m)
                        print(
                            f"round {rnd + 1}/{rounds} {server.name:17} {scenario.key:8}"
                            f" {m.rps:10,.0f} req/s  p50 {m.p50_ms:8.2f} ms  p99 {m.p99_ms:8.2f} ms"
                            f"  errors {m.errors}",
                            file=sys.stderr,
                            flush=True,
                        )
                except (RuntimeError, subprocess.TimeoutExpired) as e:
                    failures[server.name] = str(e)
                    print(f"{server.name}: {e}", file=sys.stderr, flush=True)
                finally:
                    running.stop()
    finally:
        shutil.rmtree(lua_dir, ignore_errors=True)
    return results, failures


def median_cell(ms: list[Measurement]) -> Measurement:
    return Measurement(
        statistics.median(m.rps for m in ms),
        statistics.median(m.p50_ms for m in ms),
        statistics.median(m.p99_ms for m in ms),
        sum(m.requests for m in ms),
        sum(m.errors for m in ms),
    )


def markdown(
    results: dict[str, dict[str, list[Measurement]]], scenarios: list[Scenario],
    failures: dict[str, str], missing: list[Server], header: str,
) -> str:  # fmt: skip
    """Two tables: requests/s with the ratio to werkzeug, and p50/p99 latency."""
    medians = {
        name: {key: median_cell(ms) for key, ms in cells.items()}
        for name, cells in results.items()
        if cells
    }
    base = medians.get(BASELINE, {})
    lines = [header, "", "Requests/s (median of rounds; ratio vs werkzeug from the same run):", ""]
    lines.append("| server | " + " | ".join(s.title for s in scenarios) + " |")
    lines.append("|---|" + "---:|" * len(scenarios))
    for name, cells in medians.items():
        row = []
        for s in scenarios:
            m = cells.get(s.key)
            if m is None:
                row.append("-")
                continue
            text = f"{m.rps:,.0f}"
            if s.key in base and base[s.key].rps > 0:
                text += f" ({m.rps / base[s.key].rps:.1f}x)"
            if m.errors:
                text += f" [{m.errors} err]"
            row.append(text)
        lines.append(f"| {name} | " + " | ".join(row) + " |")
    lines += ["", "Latency p50 / p99 in ms (median of rounds):", ""]
    lines.append("| server | " + " | ".join(s.title for s in scenarios) + " |")
    lines.append("|---|" + "---:|" * len(scenarios))
    for name, cells in medians.items():
        row = [
            f"{cells[s.key].p50_ms:.2f} / {cells[s.key].p99_ms:.2f}" if s.key in cells else "-"
            for s in scenarios
        ]
        lines.append(f"| {name} | " + " | ".join(row) + " |")
    notes = [f"- {name}: failed: {why}" for name, why in failures.items()]
    notes += [f"- {s.name}: not installed ({s.install_hint})" for s in missing]
    if notes:
        lines += ["", *notes]
    return "\n".join(lines)


def chart(
    results: dict[str, dict[str, list[Measurement]]], scenarios: list[Scenario], path: Path,
    title: str,
) -> bool:  # fmt: skip
    """Grouped bar chart of median requests/s (log scale); False when matplotlib is absent."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    names = [n for n, cells in results.items() if cells]
    width = 0.8 / max(1, len(names))
    fig, ax = plt.subplots(figsize=(11, 5.5))
    for i, name in enumerate(names):
        values = [
            median_cell(results[name][s.key]).rps if s.key in results[name] else 0.0
            for s in scenarios
        ]
        xs = [j + i * width for j in range(len(scenarios))]
        ax.bar(xs, values, width, label=name)
    ax.set_xticks([j + 0.4 - width / 2 for j in range(len(scenarios))])
    ax.set_xticklabels([s.title for s in scenarios])
    ax.set_yscale("log")
    ax.set_ylabel("requests/s (log scale)")
    ax.set_title(title)
    ax.legend(fontsize="small", ncol=3)
    ax.grid(axis="y", which="both", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True


def summarize_folded(folded: str, top: int = 20) -> str:
    """Self and inclusive sample shares per function from py-spy's raw (folded) output."""
    self_counts: dict[str, int] = {}
    incl_counts: dict[str, int] = {}
    total = 0
    for line in folded.splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = [f for f in stack.split(";") if not f.startswith(("thread (", "process "))]
        if not frames:
            continue
        total += count
        self_counts[frames[-1]] = self_counts.get(frames[-1], 0) + count
        for frame in set(frames):
            incl_counts[frame] = incl_counts.get(frame, 0) + count
    if not total:
        return "no samples (is ptrace allowed? py-spy needs CAP_SYS_PTRACE)"
    lines = [f"{total} samples of busy threads", "", "self %  function"]
    for frame, n in sorted(self_counts.items(), key=lambda kv: -kv[1])[:top]:
        lines.append(f"{100 * n / total:6.1f}  {frame}")
    lines += ["", "incl %  function"]
    for frame, n in sorted(incl_counts.items(), key=lambda kv: -kv[1])[:top]:
        lines.append(f"{100 * n / total:6.1f}  {frame}")
    return "\n".join(lines)


def profile(server: Server, scenario: Scenario, duration: float, driver: str, native: bool) -> str:
    """Sample ``server`` with py-spy while ``scenario`` loads it; return a text summary."""
    py_spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    if not Path(py_spy).exists():
        sys.exit("py-spy not found: pip install py-spy")
    running = RunningServer(server, _free_port())
    out = Path(tempfile.mkdtemp(prefix="bench-prof-"))
    try:
        running.wait_ready()
        cmd = [
            py_spy, "record", "--pid", str(running.proc.pid), "--format", "raw",
            "--output", str(out / "folded.txt"), "--duration", str(max(1, round(duration))),
            "--rate", "250", "--nonblocking", "--function",
        ]  # fmt: skip
        if native:
            cmd.append("--native")
        spy = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        time.sleep(0.5)  # let py-spy attach before the load starts
        if driver == "wrk":
            m = run_wrk(running.port, scenario, duration, out)
        else:
            m = run_python_driver(running.port, scenario, duration)
        _, err = spy.communicate(timeout=duration + 60)
        folded = (out / "folded.txt").read_text() if (out / "folded.txt").exists() else ""
        head = f"{server.name} / {scenario.title}: {m.rps:,.0f} req/s under py-spy"
        if spy.returncode != 0:
            head += f"\npy-spy exited {spy.returncode}: {err.decode(errors='replace')[-500:]}"
        return head + "\n\n" + summarize_folded(folded)
    finally:
        running.stop()
        shutil.rmtree(out, ignore_errors=True)


def _select(items: Iterable[Any], names: str | None, what: str) -> list[Any]:
    items = list(items)
    if not names:
        return items
    wanted = [n.strip() for n in names.split(",") if n.strip()]
    known = {getattr(i, "name", None) or i.key: i for i in items}
    unknown = [n for n in wanted if n not in known]
    if unknown:
        sys.exit(f"unknown {what}: {', '.join(unknown)} (known: {', '.join(known)})")
    return [known[n] for n in wanted]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--serve", nargs=2, metavar=("NAME", "PORT"), help=argparse.SUPPRESS)
    parser.add_argument(
        "--servers", help="comma-separated subset of: " + ", ".join(s.name for s in SERVERS)
    )
    parser.add_argument(
        "--scenarios", help="comma-separated subset of: " + ", ".join(s.key for s in SCENARIOS)
    )
    parser.add_argument("--rounds", type=int, default=3, help="rounds; the table shows medians (3)")
    parser.add_argument("--duration", type=float, default=5.0, help="seconds per cell (5)")
    parser.add_argument("--warmup", type=float, default=1.0, help="warm-up seconds per cell (1)")
    parser.add_argument("--quick", action="store_true", help="1 round, 2 s per cell, 0.5 s warm-up")
    parser.add_argument("--driver", choices=["auto", "wrk", "python"], default="auto")
    parser.add_argument("--chart", type=Path, default=BENCH_DIR / "bench_server.png")
    parser.add_argument("--markdown", type=Path, help="also write the tables to this file")
    parser.add_argument("--json", type=Path, help="also write every measurement to this file")
    parser.add_argument(
        "--profile",
        metavar="SERVER",
        help="instead of the table: sample SERVER with py-spy (pip install py-spy) under the"
        " first selected scenario and print where the time goes",
    )
    parser.add_argument("--profile-native", action="store_true", help="py-spy --native")
    args = parser.parse_args(argv)  # fmt: skip

    if args.serve:
        serve(args.serve[0], int(args.serve[1]))
        return 0
    if args.quick:
        args.rounds, args.duration, args.warmup = 1, 2.0, 0.5
    driver = args.driver
    if driver == "auto":
        driver = "wrk" if shutil.which("wrk") else "python"
        if driver == "python":
            print(
                "wrk not found (install it: apt-get install wrk / brew install wrk);"
                " using the bundled Python driver, which caps the measurable rate",
                file=sys.stderr,
            )
    elif driver == "wrk" and not shutil.which("wrk"):
        sys.exit("wrk not found: apt-get install wrk (Debian/Ubuntu) or brew install wrk")

    chosen = _select(SERVERS, args.servers, "servers")
    scenarios = _select(SCENARIOS, args.scenarios, "scenarios")
    if args.profile:
        (server,) = _select(SERVERS, args.profile, "servers")
        print(profile(server, scenarios[0], args.duration, driver, args.profile_native))
        return 0
    available = [s for s in chosen if _importable(s.module)]
    missing = [s for s in chosen if s not in available]
    header = (
        f"bench_server.py: {len(available)} servers x {len(scenarios)} cells,"
        f" {args.rounds} rounds x {args.duration:g} s (+{args.warmup:g} s warm-up),"
        f" driver {driver}; {os.cpu_count()} CPUs, Python {platform.python_version()},"
        f" load average before {os.getloadavg()[0]:.2f}"
    )
    print(header, file=sys.stderr)
    results, failures = measure(
        available, scenarios, args.rounds, args.duration, args.warmup, driver
    )
    header += f", after {os.getloadavg()[0]:.2f}"
    table = markdown(results, scenarios, failures, missing, header)
    print(table)
    if args.markdown:
        args.markdown.write_text(table + "\n")
    if args.json:
        args.json.write_text(
            json.dumps(
                {
                    n: {k: [asdict(m) for m in ms] for k, ms in c.items()}
                    for n, c in results.items()
                },
                indent=1,
            )
        )
    if chart(
        results,
        scenarios,
        args.chart,
        f"WSGI servers on loopback ({driver}, median of {args.rounds})",
    ):
        print(f"\nchart: {args.chart}", file=sys.stderr)
    else:
        print("\nmatplotlib not installed (pip install matplotlib): no chart", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
