"""Load drivers: wrk when it is on the PATH, the bundled ``loadgen`` otherwise.

A driver runs one cell - a scenario against a port for some seconds - as a
child process and returns a :class:`Measurement`: requests/s, p50/p99
latency, errors, and the CPU time the load generator itself used, taken from
the child's own resource usage (``wait4``), so the benchmark can tell when
the client, not the server, was the limit (``verdict.py``). The server's CPU
and its listen queue are added by the runner.

``wrk`` measures whole seconds, so a fractional duration is rounded up for it.
Its threads are the client's parallelism; the bundled driver gets the same
from separate processes (one selector loop each), the connections split
between them.
"""

from __future__ import annotations

import math
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final, Protocol

from .loadgen import HOST, Histogram, LoadResult
from .scenarios import Scenario

__all__ = [
    "BundledDriver",
    "Driver",
    "Measurement",
    "WrkDriver",
    "choose_driver",
    "parse_wrk",
    "run_child",
]

#: a response slower than this is a timeout error (wrk's --timeout, the loadgen's
#: --timeout): short enough that a connection the server never serves (one
#: left in the listen backlog) shows up as errors within a cell of a few seconds
TIMEOUT: Final = 2.0


@dataclass
class Measurement:
    """One cell measured once (or the median of several, see ``report.median``).

    CPU figures are in cores: CPU seconds per wall-clock second (1.0 = one
    core busy the whole time).
    """

    rps: float
    p50_ms: float
    p99_ms: float
    requests: int
    errors: int
    client_cpu: float
    client_threads: int
    server_cpu: float | None = None
    error_kinds: dict[str, int] = field(default_factory=dict)
    #: connections still waiting to be accepted through the second half of the cell
    unaccepted: int | None = None


class Driver(Protocol):
    """Runs cells; says what it is."""

    name: str
    description: str

    def measure(self, port: int, scenario: Scenario, path: str, duration: float) -> Measurement:
        """Load 127.0.0.1:``port`` with ``scenario`` for ``duration`` seconds."""
        ...

    def close(self) -> None:
        """Remove what the driver made (scripts, temporary files)."""
        ...


def run_child(argv: list[str], timeout: float) -> tuple[int, str, str, float, float]:
    """Run ``argv``; return its exit status, stdout, stderr, CPU seconds and wall seconds.

    The CPU time is the child's own (user + system, from ``wait4``), not that
    of the process running the benchmark. A child still running after
    ``timeout`` seconds is killed.
    """
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        start = time.perf_counter()
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=err)
        deadline = time.monotonic() + timeout
        while True:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            if time.monotonic() > deadline:
                proc.kill()
                pid, status, usage = os.wait4(proc.pid, 0)
                break
            time.sleep(0.01)
        wall = time.perf_counter() - start
        proc.returncode = os.waitstatus_to_exitcode(status)  # reaped here, not by Popen
        out.seek(0)
        err.seek(0)
        return (
            proc.returncode,
            out.read().decode(errors="replace"),
            err.read().decode(errors="replace"),
            usage.ru_utime + usage.ru_stime,
            wall,
        )


# --- wrk -----------------------------------------------------------------------------------------

_WRK_UNITS: Final = {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 60e3}


def _wrk_ms(text: str) -> float:
    m = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text)
    if not m:
        raise ValueError(f"unexpected wrk latency {text!r}")
    return float(m.group(1)) * _WRK_UNITS[m.group(2)]


def _search(pattern: str, text: str) -> re.Match[str]:
    m = re.search(pattern, text, re.M)
    if m is None:
        raise ValueError(f"wrk output without {pattern!r}: {text[-300:]!r}")
    return m


def parse_wrk(output: str) -> tuple[float, float, float, int, dict[str, int]]:
    """Requests/s, p50 and p99 (ms), requests, and errors by kind from ``wrk --latency``."""
    rps = float(_search(r"Requests/sec:\s+([\d.]+)", output).group(1))
    p50 = _wrk_ms(_search(r"^\s+50%\s+(\S+)", output).group(1))
    p99 = _wrk_ms(_search(r"^\s+99%\s+(\S+)", output).group(1))
    total = int(_search(r"(\d+) requests in", output).group(1))
    kinds: dict[str, int] = {}
    socket_errors = r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)"
    if m := re.search(socket_errors, output):
        for kind, n in zip(("connect", "read", "write", "timeout"), m.groups(), strict=True):
            kinds[kind] = int(n)
    if m := re.search(r"Non-2xx or 3xx responses: (\d+)", output):
        kinds["status"] = int(m.group(1))
    return rps, p50, p99, total, {kind: n for kind, n in kinds.items() if n}


class WrkDriver:
    """``wrk -t THREADS -c CONNS -d SECONDS --latency`` (its threads capped at the connections)."""

    def __init__(self, wrk: str, threads: int) -> None:
        self.wrk = wrk
        self.threads = threads
        try:
            banner = subprocess.run(
                [wrk, "-v"], capture_output=True, text=True, timeout=10
            ).stdout.split()
            version = banner[1] if len(banner) > 1 and banner[0] == "wrk" else "?"
        except (OSError, subprocess.TimeoutExpired):
            version = "?"
        self.name = "wrk"
        self.description = f"wrk {version} ({wrk}), {threads} thread{'s' * (threads != 1)}"
        self._scripts = Path(tempfile.mkdtemp(prefix="fastserve-bench-"))

    def measure(self, port: int, scenario: Scenario, path: str, duration: float) -> Measurement:
        threads = min(self.threads, scenario.connections)
        cmd = [
            self.wrk, f"-t{threads}", f"-c{scenario.connections}",
            f"-d{max(1, math.ceil(duration))}s", "--latency", f"--timeout={TIMEOUT:g}s",
        ]  # fmt: skip
        if scenario.close:
            cmd += ["-H", "Connection: close"]
        if scenario.body_size:
            script = self._scripts / f"post{scenario.body_size}.lua"
            script.write_text(
                'wrk.method = "POST"\n'
                f'wrk.body = string.rep("x", {scenario.body_size})\n'
                'wrk.headers["Content-Type"] = "application/octet-stream"\n'
            )
            cmd += ["-s", str(script)]
        cmd.append(f"http://{HOST}:{port}{path}")
        status, out, err, cpu, wall = run_child(cmd, timeout=duration + 60)
        if status != 0:
            raise RuntimeError(f"wrk exited with status {status}: {err.strip()[-300:]}")
        rps, p50, p99, total, kinds = parse_wrk(out)
        return Measurement(
            rps, p50, p99, total, sum(kinds.values()), cpu / wall, threads, error_kinds=kinds
        )

    def close(self) -> None:
        shutil.rmtree(self._scripts, ignore_errors=True)


# --- the bundled driver --------------------------------------------------------------------------


class BundledDriver:
    """``python -m fastserve._bench.loadgen`` in up to ``processes`` processes at once."""

    def __init__(self, processes: int) -> None:
        self.processes = processes
        self.name = "bundled"
        self.description = (
            f"the bundled Python driver, {processes} process{'es' * (processes != 1)}"
        )

    def measure(self, port: int, scenario: Scenario, path: str, duration: float) -> Measurement:
        n = min(self.processes, scenario.connections)
        shares = [scenario.connections // n + (i < scenario.connections % n) for i in range(n)]
        argv = [
            sys.executable, "-m", "fastserve._bench.loadgen", "--port", str(port),
            "--path", path, "--duration", str(duration), "--timeout", str(TIMEOUT),
            "--body-size", str(scenario.body_size), *(["--close"] if scenario.close else []),
        ]  # fmt: skip
        # one process per share, all at once, each waited for from its own thread
        with ThreadPoolExecutor(n) as pool:
            runs = list(
                pool.map(
                    lambda share: run_child([*argv, "--connections", str(share)], duration + 60),
                    shares,
                )
            )
        requests, cpu, elapsed = 0, 0.0, 0.0
        kinds: dict[str, int] = {}
        latency = Histogram()
        for status, out, err, child_cpu, wall in runs:
            if status != 0:
                raise RuntimeError(f"load generator exited with {status}: {err.strip()[-300:]}")
            result = LoadResult.from_json(out)
            requests += result.requests
            latency.merge(result.latency)
            for kind, count in result.errors.items():
                kinds[kind] = kinds.get(kind, 0) + count
            elapsed = max(elapsed, result.elapsed)
            cpu += child_cpu / wall
        return Measurement(
            requests / elapsed if elapsed else 0.0,
            latency.quantile(0.5) * 1e3,
            latency.quantile(0.99) * 1e3,
            requests,
            sum(kinds.values()),
            cpu,
            n,
            error_kinds={kind: count for kind, count in kinds.items() if count},
        )

    def close(self) -> None:
        pass


def choose_driver(kind: str, threads: int) -> tuple[Driver, str]:
    """The driver for ``--driver auto|wrk|python``, and a line saying which and why.

    :raise ValueError: ``wrk`` was asked for and is not on the PATH.
    """
    wrk = shutil.which("wrk")
    if kind == "wrk" and wrk is None:
        raise ValueError("wrk is not on the PATH (apt-get install wrk, brew install wrk)")
    if kind != "python" and wrk is not None:
        driver: Driver = WrkDriver(wrk, threads)
        return driver, f"driver: {driver.description}"
    driver = BundledDriver(threads)
    why = "as asked" if kind == "python" else "wrk is not on the PATH"
    return driver, (
        f"driver: {driver.description} ({why}; it saturates far below wrk:"
        " install wrk for fast servers)"
    )
