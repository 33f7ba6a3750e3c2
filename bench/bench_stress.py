"""Slow peers and resource limits (issue 7): fastserve against werkzeug's dev server and waitress.

Each (server, scenario) cell starts a fresh server subprocess on 127.0.0.1 serving the app in
``bench/stress_app.py`` and measures a *normal client* - ``wrk -t1 -c8``, keep-alive,
``GET /`` (hello world), ``--timeout 2s`` - for a few seconds before and then during an attack.
The attackers run in a separate process (``bench/stress_attack.py``, one asyncio loop), so they
never share a GIL with this process or with wrk. A sampler thread reads the server's
``/proc/<pid>/status`` (``Threads``, ``VmRSS``) every 0.2 s for the peaks, and
``/proc/<pid>/stat`` (utime + stime) for CPU % (100 = one core busy) over the measured window.
Everything is bounded in connections and time; nothing leaves the loopback interface.

Scenarios (``--scenarios``, comma-separated; all by default):

* ``slow-heads`` - 500 connections each sending a request head at 1 byte/s;
* ``trickle-300``, ``trickle-1100`` - 300 / 1,100 connections POSTing to ``/sink`` (which never
  reads its body) with ``Content-Length: 10000`` and the body at 1 byte per 0.5 s;
* ``nonreader-300``, ``nonreader-1100`` - 300 / 1,100 connections (4 KiB receive buffer) that
  pipeline 4 ``GET /1mib`` and never read;
* ``long-request`` - one ``GET /sleep20`` (one byte a second for 20 s) and nothing else: idle CPU %
  first, then peak threads and CPU % during it (``--quick``: the first 6 s of it);
* ``slow-stream`` - ``GET /sleep2`` on fresh connections, 5 a second, beside fast ``GET /`` on
  fresh connections (20 a second): the fast ones' latency from connect to last byte (p99, max;
  target: none over 0.5 s), measured before wrk runs, then wrk as the normal client;
* ``idle-10k`` - 10,000 keep-alive connections, each sends one request, reads the reply and stays
  open; RLIMIT_NOFILE is raised to the hard limit (skipped when that is below 10,200);
* ``fd-exhaustion`` - the server starts with RLIMIT_NOFILE 256 and 400 connections are opened and
  held, each having sent one byte (a silent one would wait in the kernel under TCP_DEFER_ACCEPT and
  never reach accept()): CPU % and the lines the server writes to stderr over 10 s, then the 400
  are closed and a new client retries until served (time to first success);
* ``soak`` - 200,000 (``--quick``: 20,000) keep-alive requests by wrk (runs of at most 5 s,
  stopped at a 60 s cap, 15 s with ``--quick``): req/s, errors, RSS before and after.

Servers (``--servers``; all by default, each single-process, access logs off):

* ``fastserve`` - ``fastserve.run_simple(threaded=True)``; the installed package, or the checkout
  given with ``--fastserve-path DIR`` (prepended to the server's PYTHONPATH, e.g. a worktree's
  ``src`` with the extension built in place);
* ``werkzeug`` - ``werkzeug.serving.run_simple(threaded=True)`` (a thread per connection);
* ``waitress`` - ``waitress.serve`` with its defaults (4 threads, ``connection_limit`` 100;
  bench-only: ``pip install waitress``).

A cell that measures nothing for its server is not run unless ``--all-cells`` is given: werkzeug
answers every request with ``Connection: close``, so it has no idle keep-alive connections for
``idle-10k``. The notes under the table say which cells were left out and why.

Columns: the normal client's req/s before and during the attack and their ratio; wrk's timeouts
(responses slower than 2 s; wrk does not count a request that is never answered, so a server
that stops answering shows as 0 req/s with 0 timeouts) / its other errors (connect, read, write,
non-2xx) during; the server's peak thread count and peak RSS over the cell; its CPU % during the
measured window; notes: what the attackers got (connected, unanswered, closed by the server,
responses by status), how long a fresh ``GET /`` takes to succeed after the attack when that is
over 0.1 s, lines the server wrote to stderr, and the scenario's own figures. ``--json`` adds the
raw wrk and attacker figures of every cell.

Usage::

    python bench/bench_stress.py                       # everything: ~3 min per server
    python bench/bench_stress.py --quick               # 2 s windows: ~1.5 min per server
    python bench/bench_stress.py --servers fastserve --scenarios trickle-300,fd-exhaustion
    python bench/bench_stress.py --fastserve-path /tmp/fs-base/src --quick --servers fastserve

Needs Linux (``/proc``) and ``wrk`` (``apt-get install wrk``). Writes a markdown table to stdout
(and ``--markdown FILE``), every figure as JSON with ``--json FILE``. Never run by CI; results
are not committed.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import queue
import re
import resource
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
ATTACKER = BENCH_DIR / "stress_attack.py"
HOST = "127.0.0.1"
SERVERS = ("fastserve", "werkzeug", "waitress")
INSTALL_HINTS = {"waitress": "pip install waitress"}
CLK_TCK = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")
FD_LIMIT = 256
IDLE_CONNS = 10_000


# --- the server side (``--serve`` mode of this script) -----------------------------------------


def serve(name: str, port: int, nofile: int) -> None:
    """Set RLIMIT_NOFILE (0: soft = hard), then import and run server ``name``."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if nofile > 0:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(nofile, hard), hard))
    elif soft != hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    import logging

    sys.path.insert(0, str(BENCH_DIR))
    from stress_app import app

    if name == "fastserve":
        from fastserve import run_simple

        logging.getLogger("werkzeug").setLevel(logging.WARNING)
        run_simple(HOST, port, app, threaded=True)
    elif name == "werkzeug":
        from werkzeug.serving import run_simple as werkzeug_run_simple

        logging.getLogger("werkzeug").setLevel(logging.WARNING)
        werkzeug_run_simple(HOST, port, app, threaded=True)
    elif name == "waitress":
        import waitress

        waitress.serve(app, host=HOST, port=port)
    else:
        sys.exit(f"unknown server {name!r}")


def _server_env(name: str, fastserve_path: str | None) -> dict[str, str]:
    env = dict(os.environ)
    env.pop("FASTSERVE_NO_EXTENSIONS", None)
    if name == "fastserve" and fastserve_path:
        env["PYTHONPATH"] = os.pathsep.join(
            p for p in (fastserve_path, env.get("PYTHONPATH", "")) if p
        )
    return env


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


def time_to_success(port: int, cap: float) -> float | None:
    """Seconds until a fresh ``GET /`` gets a 200 (retried every 0.1 s), None after ``cap``."""
    start = time.monotonic()
    while time.monotonic() - start < cap:
        if _get_ok(port, timeout=min(1.0, cap)):
            return time.monotonic() - start
        time.sleep(0.1)
    return None


class RunningServer:
    """A server subprocess in its own session; its stderr is counted line by line."""

    def __init__(self, name: str, port: int, nofile: int, fastserve_path: str | None) -> None:
        self.name, self.port = name, port
        self.lines = 0
        self.accept_lines = 0  # lines about accept() failing (out of descriptors)
        self.head: list[str] = []  # the first few lines written to stderr
        self.tail = b""
        self.proc = subprocess.Popen(
            [sys.executable, str(Path(__file__).resolve()), "--serve", name, str(port),
             "--nofile", str(nofile)],
            env=_server_env(name, fastserve_path),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            start_new_session=True,
        )  # fmt: skip
        self._reader = threading.Thread(target=self._read_stderr, daemon=True)
        self._reader.start()

    def _read_stderr(self) -> None:
        assert self.proc.stderr is not None
        pending = b""
        while chunk := self.proc.stderr.read1(65536):
            self.lines += chunk.count(b"\n")
            self.accept_lines += chunk.count(b"accept()")
            if len(self.head) < 3:
                pending += chunk
                *complete, pending = pending.split(b"\n")
                self.head += [c.decode(errors="replace")[:200] for c in complete][
                    : 3 - len(self.head)
                ]
                pending = pending[-1000:]
            self.tail = (self.tail + chunk)[-2000:]

    def wait_ready(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                time.sleep(0.2)
                err = self.tail.decode(errors="replace").strip()
                raise RuntimeError(f"exited with {self.proc.returncode}: {err[-400:]}")
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
        self._reader.join(5)


# --- measuring the server --------------------------------------------------------------------


class Monitor(threading.Thread):
    """Samples a pid's thread count, RSS and the kernel's TCP memory; peaks per phase."""

    def __init__(self, pid: int, interval: float = 0.2) -> None:
        super().__init__(daemon=True)
        self.pid, self.interval = pid, interval
        self.phase = "idle"
        self.peaks: dict[str, dict[str, float]] = {}
        self.first: dict[str, float] = {}
        self.last: dict[str, float] = {}
        self._stop_event = threading.Event()
        self._lock = threading.Lock()

    def sample(self) -> dict[str, float]:
        values: dict[str, float] = {}
        try:
            with open(f"/proc/{self.pid}/status") as f:
                for line in f:
                    if line.startswith("Threads:"):
                        values["threads"] = int(line.split()[1])
                    elif line.startswith("VmRSS:"):
                        values["rss_mb"] = int(line.split()[1]) / 1024
            with open("/proc/net/sockstat") as f:
                m = re.search(r"^TCP:.* mem (\d+)", f.read(), re.M)
                if m:
                    values["tcp_mem_mb"] = int(m.group(1)) * PAGE / 2**20
        except (OSError, ValueError):
            return {}
        with self._lock:
            peaks = self.peaks.setdefault(self.phase, {})
            for key, value in values.items():
                peaks[key] = max(peaks.get(key, value), value)
            if not self.first:
                self.first = dict(values)
            self.last = dict(values)
        return values

    def cpu_seconds(self) -> float | None:
        try:
            with open(f"/proc/{self.pid}/stat") as f:
                fields = f.read().rpartition(")")[2].split()
            return (int(fields[11]) + int(fields[12])) / CLK_TCK
        except (OSError, ValueError, IndexError):
            return None

    def set_phase(self, phase: str) -> None:
        self.sample()
        with self._lock:
            self.phase = phase
        self.sample()

    def peak(self, key: str, phases: tuple[str, ...] | None = None) -> float | None:
        with self._lock:
            found = [
                p[key]
                for name, p in self.peaks.items()
                if key in p and (phases is None or name in phases)
            ]
        return max(found) if found else None

    def run(self) -> None:
        while not self._stop_event.is_set():
            self.sample()
            self._stop_event.wait(self.interval)

    def stop(self) -> None:
        self._stop_event.set()
        self.join(5)


class CpuWindow:
    """CPU % of the server (100 = one core) between construction and :meth:`percent`."""

    def __init__(self, monitor: Monitor) -> None:
        self.monitor = monitor
        self.cpu0, self.t0 = monitor.cpu_seconds(), time.monotonic()

    def percent(self) -> float | None:
        cpu1, t1 = self.monitor.cpu_seconds(), time.monotonic()
        if self.cpu0 is None or cpu1 is None or t1 <= self.t0:
            return None
        return 100.0 * (cpu1 - self.cpu0) / (t1 - self.t0)


@dataclass
class WrkResult:
    rps: float
    requests: int
    timeouts: int
    errors: int  # connect + read + write errors and non-2xx/3xx responses
    p99_ms: float | None
    max_ms: float | None
    seconds: float
    hung: bool = False  # wrk never got going and was killed (see run_wrk)


_WRK_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 60e3}


def _wrk_ms(text: str | None) -> float | None:
    m = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text or "")
    return float(m.group(1)) * _WRK_UNITS[m.group(2)] if m else None


def run_wrk(port: int, seconds: float) -> WrkResult:
    """The normal client: one wrk thread, 8 keep-alive connections, ``GET /``."""
    secs = max(1, round(seconds))
    cmd = ["wrk", "-t1", "-c8", f"-d{secs}s", "--timeout", "2s", "--latency"]
    cmd.append(f"http://{HOST}:{port}/")
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=secs + 8)
    except subprocess.TimeoutExpired:
        # wrk checks the address with one *blocking* connect() before it starts; against a
        # full listen backlog that connect waits out the SYN retries (minutes). The normal
        # client then got nothing done at all: count it as 0 req/s.
        return WrkResult(0.0, 0, 0, 0, None, None, secs + 8.0, hung=True)
    out = proc.stdout
    if proc.returncode != 0 or "requests in" not in out:
        raise RuntimeError(f"wrk failed: {(proc.stderr or out).strip()[-300:]}")
    rps_m = re.search(r"Requests/sec:\s+([\d.]+)", out)
    total_m = re.search(r"(\d+) requests in ([\d.]+)(ms|s|m)", out)
    timeouts = errors = 0
    if m := re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out):
        errors += int(m.group(1)) + int(m.group(2)) + int(m.group(3))
        timeouts = int(m.group(4))
    if m := re.search(r"Non-2xx or 3xx responses: (\d+)", out):
        errors += int(m.group(1))
    lat = re.search(r"^\s+Latency\s+\S+\s+\S+\s+(\S+)", out, re.M)
    p99 = re.search(r"^\s+99%\s+(\S+)", out, re.M)
    elapsed = secs
    if total_m:
        elapsed = float(total_m.group(2)) * {"ms": 1e-3, "s": 1.0, "m": 60.0}[total_m.group(3)]
    return WrkResult(
        rps=float(rps_m.group(1)) if rps_m else 0.0,
        requests=int(total_m.group(1)) if total_m else 0,
        timeouts=timeouts,
        errors=errors,
        p99_ms=_wrk_ms(p99.group(1)) if p99 else None,
        max_ms=_wrk_ms(lat.group(1)) if lat else None,
        seconds=elapsed,
    )


class Attacker:
    """``stress_attack.py`` as a subprocess; its JSON lines are collected by event name."""

    def __init__(self, mode: str, port: int, **options: float) -> None:
        cmd = [sys.executable, str(ATTACKER), mode, "--port", str(port)]
        for key, value in options.items():
            cmd += [f"--{key.replace('_', '-')}", f"{value:g}"]
        self.stderr = tempfile.TemporaryFile()
        self.proc = subprocess.Popen(
            cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=self.stderr, text=True
        )
        self.events: queue.Queue[dict[str, Any]] = queue.Queue()
        self.seen: dict[str, dict[str, Any]] = {}
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            try:
                self.events.put(json.loads(line))
            except json.JSONDecodeError:
                continue
        self.events.put({"event": "eof"})

    def wait(self, event: str, timeout: float) -> dict[str, Any] | None:
        """The first ``event`` line (None on timeout or when the attacker exited first)."""
        if event in self.seen:
            return self.seen[event]
        if "eof" in self.seen:
            return None
        deadline = time.monotonic() + timeout
        while (remaining := deadline - time.monotonic()) > 0:
            try:
                item = self.events.get(timeout=remaining)
            except queue.Empty:
                return None
            self.seen[item["event"]] = item
            if item["event"] == event:
                return item
            if item["event"] == "eof":
                return None
        return None

    def error(self) -> str:
        self.stderr.seek(0)
        return self.stderr.read().decode(errors="replace").strip()[-300:]

    def stop(self, timeout: float = 15.0) -> dict[str, Any]:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        done = self.wait("done", timeout) or {}
        try:
            self.proc.wait(5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)
        if not done:
            done = {"error": self.error() or f"no summary (exit {self.proc.returncode})"}
        self.stderr.close()
        return done


# --- scenarios ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Scenario:
    name: str
    kind: str  # "attack", "long" or "soak"
    mode: str = ""  # stress_attack.py mode
    conns: int = 0
    nofile: int = 0  # the server's RLIMIT_NOFILE (0: raised to the hard limit)


SCENARIOS: tuple[Scenario, ...] = (
    Scenario("slow-heads", "attack", "slow-heads", 500),
    Scenario("trickle-300", "attack", "trickle", 300),
    Scenario("trickle-1100", "attack", "trickle", 1100),
    Scenario("nonreader-300", "attack", "nonreader", 300),
    Scenario("nonreader-1100", "attack", "nonreader", 1100),
    Scenario("long-request", "long"),
    Scenario("slow-stream", "attack", "slow-stream"),
    Scenario("idle-10k", "attack", "idle", IDLE_CONNS),
    Scenario("fd-exhaustion", "attack", "hold", 400, nofile=FD_LIMIT),
    Scenario("soak", "soak"),
)


@dataclass(frozen=True)
class Timing:
    before: float  # seconds of wrk before the attack
    during: float  # seconds of wrk during it
    ramp: float  # seconds the attacker may take to connect
    ramp_idle: float  # the same for idle-10k
    idle_cpu: float  # long-request: idle seconds measured first
    long_window: float  # long-request: seconds of the request measured (20: all of it)
    fd_window: float  # fd-exhaustion: seconds the 400 are held after they are connected
    soak_requests: int
    soak_cap: float


FULL = Timing(5, 5, 10, 30, 5, 20, 10, 200_000, 60)
QUICK = Timing(2, 2, 6, 15, 2, 6, 5, 20_000, 15)


# Cells that measure nothing for that server: skipped unless --all-cells.
NOT_MEANINGFUL = {
    ("werkzeug", "idle-10k"): "werkzeug closes every connection after one response, so none"
    " stays open idle",
}
# Printed under the table for each server in the run.
SERVER_NOTES = {
    "werkzeug": "werkzeug 3 sends `Connection: close` with every response: wrk's keep-alive"
    " connections are one request each, and a nonreader's 3 further pipelined requests are"
    " never read.",
    "waitress": "waitress (defaults) has 4 threads and accepts at most 100 connections"
    " (`connection_limit`); further ones wait in its listen backlog. It reads a request's whole"
    " body before the app runs.",
}


@dataclass
class Row:
    server: str
    scenario: str
    rps_before: float | None = None
    rps_during: float | None = None
    timeouts: int | None = None
    errors: int | None = None
    peak_threads: int | None = None
    peak_rss_mb: float | None = None
    cpu_pct: float | None = None
    notes: list[str] = field(default_factory=list)
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def ratio(self) -> float | None:
        if self.rps_before and self.rps_during is not None:
            return self.rps_during / self.rps_before
        return None


def _fmt_s(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f} s"


def _fmt_ms(seconds: float | None) -> str:
    return "-" if seconds is None else f"{seconds * 1e3:,.0f} ms"


def _attacker_note(stats: dict[str, Any], target: int) -> str:
    if "error" in stats:
        return f"attacker: {stats['error']}"
    parts = [f"attackers connected {stats.get('connected', 0):,}/{target:,}"]
    if stats.get("pending"):
        parts.append(f"{stats['pending']:,} still connecting or awaiting a reply at the ramp's end")
    if stats.get("unanswered"):
        parts.append(f"{stats['unanswered']:,} unanswered")
    if stats.get("closed_by_server"):
        parts.append(f"{stats['closed_by_server']:,} closed by server")
    if stats.get("responses"):
        codes = ", ".join(f"{k}x{v}" for k, v in sorted(stats.get("statuses", {}).items()))
        parts.append(f"{stats['responses']:,} responses ({codes})")
    return ", ".join(parts)


def _finish(row: Row, monitor: Monitor, server: RunningServer) -> None:
    threads = monitor.peak("threads")
    row.peak_threads = int(threads) if threads is not None else None
    row.peak_rss_mb = monitor.peak("rss_mb")
    idle_threads, idle_rss = monitor.first.get("threads"), monitor.first.get("rss_mb")
    if idle_threads is not None and idle_rss is not None:
        row.details["idle_threads"], row.details["idle_rss_mb"] = idle_threads, idle_rss


def run_attack(scenario: Scenario, server: RunningServer, monitor: Monitor, t: Timing) -> Row:
    row = Row(server.name, scenario.name)
    port = server.port
    before = run_wrk(port, t.before)
    row.rps_before = before.rps
    row.details["before"] = asdict(before)
    monitor.set_phase("attack")
    ramp = t.ramp_idle if scenario.mode == "idle" else t.ramp
    fd_window = t.fd_window if scenario.mode == "hold" else 0.0
    options: dict[str, float] = {
        "conns": scenario.conns, "ramp": ramp,
        "duration": ramp + 2 * t.during + fd_window + 60,
    }  # fmt: skip
    if scenario.mode == "slow-stream":
        options["probe_window"] = t.during
    attacker = Attacker(scenario.mode, port, **options)
    try:
        ready = attacker.wait("ready", ramp + 15)
        if ready is None:
            raise RuntimeError(f"attacker not ready: {attacker.error() or 'timeout'}")
        row.details["ready"] = ready
        if scenario.mode == "slow-stream":
            probes = attacker.wait("probes", t.during + 20)
            if probes is None:
                raise RuntimeError(f"no probe results: {attacker.error() or 'timeout'}")
            row.details["probes"] = probes
            row.notes.append(
                f"fast requests {probes['fast']} (failed {probes['fast_failed']}):"
                f" p99 {_fmt_ms(probes['fast_p99'])}, max {_fmt_ms(probes['fast_max'])},"
                f" {probes['fast_over_0_5s']} over 0.5 s"
            )
        lines0 = server.lines
        cpu = CpuWindow(monitor)
        window_start = time.monotonic()
        during = run_wrk(port, t.during)
        if fd_window:
            time.sleep(max(0.0, window_start + fd_window - time.monotonic()))
        window = time.monotonic() - window_start
        row.cpu_pct = cpu.percent()
        log_lines = server.lines - lines0
        accept_lines = server.accept_lines  # the whole cell: the first comes before the window
    finally:
        stats = attacker.stop()
    row.rps_during, row.timeouts, row.errors = during.rps, during.timeouts, during.errors
    row.details["during"] = asdict(during)
    if during.hung:
        row.notes.append(f"wrk could not even connect, killed after {during.seconds:.0f} s")
    row.details["attacker"] = stats
    row.details["log_lines"] = log_lines
    row.details["log_window_s"] = window
    if scenario.mode == "slow-stream":
        row.notes.append(
            f"slow requests done {stats.get('slow_done', 0)}, failed {stats.get('slow_failed', 0)}"
        )
    else:
        row.notes.append(_attacker_note({**ready, **stats}, scenario.conns))
        if ready.get("elapsed", 0) > 1:
            row.notes.append(f"connected in {ready['elapsed']:.1f} s")
    monitor.set_phase("after")
    cap = 10.0
    recovered = time_to_success(port, cap)
    row.details["recovery_s"] = recovered
    if scenario.mode == "hold" or recovered is None or recovered > 0.1:
        row.notes.append(
            f"new client served {_fmt_s(recovered)} after the attack ended"
            if recovered is not None
            else f"new client NOT served within {cap:.0f} s after the attack ended"
        )
    if log_lines or scenario.mode == "hold":
        text = (
            f"{log_lines:,} stderr lines in {window:.0f} s"
            f" ({accept_lines:,} about accept() in the whole cell)"
        )
        if log_lines and server.head:
            row.details["log_head"] = server.head
            text += f" (first: `{server.head[0].strip()[:70]}`)"
        row.notes.append(text)
    if scenario.mode == "nonreader":
        tcp = monitor.peak("tcp_mem_mb", ("attack",))
        if tcp is not None:
            row.notes.append(f"kernel TCP memory peak {tcp:,.0f} MB")
    return row


def run_long(scenario: Scenario, server: RunningServer, monitor: Monitor, t: Timing) -> Row:
    row = Row(server.name, scenario.name)
    idle = CpuWindow(monitor)
    time.sleep(t.idle_cpu)
    idle_pct = idle.percent()
    row.details["idle_cpu_pct"] = idle_pct
    idle_threads = monitor.sample().get("threads")
    monitor.set_phase("attack")
    attacker = Attacker("long", server.port, duration=t.long_window + 15)
    try:
        if attacker.wait("ready", 15) is None:
            raise RuntimeError(f"attacker not ready: {attacker.error() or 'timeout'}")
        cpu = CpuWindow(monitor)
        whole = t.long_window >= 20
        if whole:  # the full request: until the attacker reports the response complete
            attacker.wait("done", t.long_window + 10)
        else:
            time.sleep(t.long_window)
        row.cpu_pct = cpu.percent()
    finally:
        stats = attacker.stop()
    row.details["attacker"] = stats
    idle_text = "-" if idle_pct is None else f"{idle_pct:.1f}%"
    row.notes.append(f"idle CPU {idle_text} over {t.idle_cpu:g} s, threads idle: {idle_threads}")
    if "error" in stats:
        row.notes.append(f"attacker: {stats['error']}")
    else:
        got = f"{stats.get('bytes', 0)} bytes in {stats.get('response_s', 0):.1f} s"
        if stats.get("complete"):
            row.notes.append(f"response complete ({got})")
        else:
            row.notes.append(f"measured the first {t.long_window:g} s ({got})")
        if stats.get("max_gap") is not None:
            row.notes.append(f"max gap between chunks {stats['max_gap']:.2f} s")
    return row


def run_soak(scenario: Scenario, server: RunningServer, monitor: Monitor, t: Timing) -> Row:
    """wrk in runs of at most 5 s until ``soak_requests`` are done or ``soak_cap`` has passed."""
    row = Row(server.name, scenario.name)
    before = run_wrk(server.port, t.before)  # also the warm-up
    row.rps_before = before.rps
    rss = [monitor.sample().get("rss_mb")]
    monitor.set_phase("attack")
    cpu = CpuWindow(monitor)
    start = time.monotonic()
    done = timeouts = errors = 0
    rate = max(before.rps, 1.0)
    while done < t.soak_requests and (left := t.soak_cap - (time.monotonic() - start)) >= 1:
        seconds = min(5.0, left, max(1.0, (t.soak_requests - done) / rate))
        part = run_wrk(server.port, math.ceil(seconds))
        done, timeouts, errors = (
            done + part.requests,
            timeouts + part.timeouts,
            errors + part.errors,
        )
        rate = max(part.rps, 1.0)
        rss.append(monitor.sample().get("rss_mb"))
    elapsed = time.monotonic() - start
    row.cpu_pct = cpu.percent()
    time.sleep(0.5)
    rss.append(monitor.sample().get("rss_mb"))
    row.rps_during, row.timeouts, row.errors = done / elapsed, timeouts, errors
    row.details.update(before=asdict(before), requests=done, seconds=elapsed, rss_mb=rss)
    capped = "" if done >= t.soak_requests else f" (stopped at the {t.soak_cap:g} s cap)"
    row.notes.append(f"{done:,} requests in {elapsed:.1f} s{capped}")
    if rss[0] is not None and rss[-1] is not None:
        row.notes.append(f"RSS {rss[0]:.1f} -> {rss[-1]:.1f} MB")
    return row


RUNNERS = {"attack": run_attack, "long": run_long, "soak": run_soak}


def run_cell(name: str, scenario: Scenario, t: Timing, fastserve_path: str | None) -> Row:
    if scenario.name == "idle-10k":
        hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
        if hard != resource.RLIM_INFINITY and hard < IDLE_CONNS + 200:
            return Row(name, scenario.name, notes=[f"skipped: hard RLIMIT_NOFILE {hard} < 10,200"])
    server = RunningServer(name, _free_port(), scenario.nofile, fastserve_path)
    monitor = Monitor(server.proc.pid)
    try:
        server.wait_ready()
        monitor.start()
        row = RUNNERS[scenario.kind](scenario, server, monitor, t)
    except (RuntimeError, subprocess.TimeoutExpired, OSError) as e:
        row = Row(name, scenario.name, notes=[f"failed: {e}"])
    finally:
        if monitor.is_alive():
            monitor.stop()
        exited = server.proc.poll()
        server.stop()
    if exited is not None:
        row.notes.append(f"server exited during the run (status {exited})")
    _finish(row, monitor, server)
    return row


# --- output ------------------------------------------------------------------------------------


def _num(value: float | None, fmt: str) -> str:
    return "-" if value is None else format(value, fmt)


def markdown(rows: list[Row], header: str, missing: list[str], footer: list[str]) -> str:
    lines = [header, ""]
    lines.append(
        "| server | scenario | req/s before | req/s during | during/before | timeouts / errors"
        " | peak threads | peak RSS MB | CPU % | notes |"
    )
    lines.append("|---|---|---:|---:|---:|---:|---:|---:|---:|---|")
    for r in rows:
        errs = "-" if r.timeouts is None else f"{r.timeouts} / {r.errors}"
        lines.append(
            f"| {r.server} | {r.scenario} | {_num(r.rps_before, ',.0f')}"
            f" | {_num(r.rps_during, ',.0f')} | {_num(r.ratio, '.2f')} | {errs}"
            f" | {_num(r.peak_threads, ',')} | {_num(r.peak_rss_mb, ',.1f')}"
            f" | {_num(r.cpu_pct, '.0f')} | {'; '.join(r.notes).replace('|', '/')} |"
        )
    footer = footer + [
        f"- {name}: not installed ({INSTALL_HINTS.get(name, '')})" for name in missing
    ]
    if footer:
        lines += ["", *footer]
    return "\n".join(lines)


def _probe(name: str, fastserve_path: str | None) -> str | None:
    """Where the server's module comes from (None when it cannot be imported)."""
    code = {
        "fastserve": "import fastserve, fastserve.parser as p;"
        " print(fastserve.__file__.rsplit('/', 2)[0], 'parser', p.PARSER_IMPL)",
        "werkzeug": "import importlib.metadata as m; print(m.version('werkzeug'))",
        "waitress": "import importlib.metadata as m; print(m.version('waitress'))",
    }[name]
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
        env=_server_env(name, fastserve_path), cwd=tempfile.gettempdir(),
    )  # fmt: skip
    return proc.stdout.strip() if proc.returncode == 0 else None


def _select(names: str | None, known: list[str], what: str) -> list[str]:
    if not names:
        return known
    wanted = [n.strip() for n in names.split(",") if n.strip()]
    unknown = [n for n in wanted if n not in known]
    if unknown:
        sys.exit(f"unknown {what}: {', '.join(unknown)} (known: {', '.join(known)})")
    return wanted


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--serve", nargs=2, metavar=("NAME", "PORT"), help=argparse.SUPPRESS)
    parser.add_argument("--nofile", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--servers", help="comma-separated subset of: " + ", ".join(SERVERS))
    parser.add_argument(
        "--scenarios", help="comma-separated subset of: " + ", ".join(s.name for s in SCENARIOS)
    )
    parser.add_argument(
        "--quick", action="store_true", help="2 s windows, shorter long-request and soak"
    )
    parser.add_argument(
        "--duration", type=float, help="seconds of wrk before / during (5; quick 2)"
    )
    parser.add_argument("--soak-requests", type=int, help="soak: requests (200000; quick 20000)")
    parser.add_argument(
        "--fastserve-path", metavar="DIR", help="prepend DIR to PYTHONPATH for the fastserve server"
    )
    parser.add_argument(
        "--all-cells", action="store_true", help="also run the cells that mean nothing (see notes)"
    )
    parser.add_argument("--markdown", type=Path, help="also write the table to this file")
    parser.add_argument("--json", type=Path, help="also write every figure to this file")
    args = parser.parse_args(argv)

    if args.serve:
        serve(args.serve[0], int(args.serve[1]), args.nofile)
        return 0
    if not Path("/proc/self/status").exists():
        sys.exit("needs Linux (/proc)")
    if not shutil.which("wrk"):
        sys.exit("wrk not found: apt-get install wrk (Debian/Ubuntu)")
    timing = QUICK if args.quick else FULL
    if args.duration:
        timing = Timing(**{**asdict(timing), "before": args.duration, "during": args.duration})
    if args.soak_requests:
        timing = Timing(**{**asdict(timing), "soak_requests": args.soak_requests})
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    fastserve_path = str(Path(args.fastserve_path).resolve()) if args.fastserve_path else None

    names = _select(args.servers, list(SERVERS), "servers")
    by_name = {s.name: s for s in SCENARIOS}
    scenarios = [by_name[n] for n in _select(args.scenarios, list(by_name), "scenarios")]
    versions = {n: _probe(n, fastserve_path) for n in names}
    available = [n for n in names if versions[n] is not None]
    missing = [n for n in names if versions[n] is None]
    wrk_version = subprocess.run(["wrk", "-v"], capture_output=True, text=True).stdout.split()
    header = (
        f"bench_stress.py{' --quick' if args.quick else ''}: {len(available)} servers x"
        f" {len(scenarios)} scenarios, wrk -t1 -c8 {timing.before:g} s before / {timing.during:g} s"
        f" during; {os.cpu_count()} CPUs, Python {platform.python_version()},"
        f" wrk {wrk_version[1] if len(wrk_version) > 1 else '?'};"
        + "".join(f" {n} {versions[n]};" for n in available)
        + f" load average before {os.getloadavg()[0]:.2f}"
    )
    print(header, file=sys.stderr, flush=True)
    started = time.monotonic()
    rows: list[Row] = []
    footer = [f"- {SERVER_NOTES[n]}" for n in available if n in SERVER_NOTES]
    for i, scenario in enumerate(scenarios):
        # rotate the server order per scenario, as bench_server.py does per round
        order = (
            available[i % len(available) :] + available[: i % len(available)] if available else []
        )
        for name in order:
            why = NOT_MEANINGFUL.get((name, scenario.name))
            if why and not args.all_cells:
                footer.append(f"- {name} / {scenario.name}: not run, {why} (`--all-cells` runs it)")
                continue
            t0 = time.monotonic()
            row = run_cell(name, scenario, timing, fastserve_path)
            rows.append(row)
            before, during = _num(row.rps_before, ",.0f"), _num(row.rps_during, ",.0f")
            threads, rss = _num(row.peak_threads, ","), _num(row.peak_rss_mb, ",.0f")
            print(
                f"[{time.monotonic() - started:5.0f} s] {name:9} {scenario.name:15}"
                f" before {before:>7}  during {during:>7}  threads {threads:>6}  RSS {rss:>5} MB"
                f"  CPU {_num(row.cpu_pct, '.0f'):>4}%  ({time.monotonic() - t0:.0f} s)"
                f"  {'; '.join(row.notes)}",
                file=sys.stderr,
                flush=True,
            )
    header += f", after {os.getloadavg()[0]:.2f}; {time.monotonic() - started:.0f} s in all"
    rows.sort(
        key=lambda r: (available.index(r.server), [s.name for s in scenarios].index(r.scenario))
    )
    table = markdown(rows, header, missing, footer)
    print(table)
    if args.markdown:
        args.markdown.write_text(table + "\n")
    if args.json:
        args.json.write_text(
            json.dumps(
                {
                    "header": header,
                    "footer": footer,
                    "rows": [{**asdict(r), "ratio": r.ratio} for r in rows],
                },
                indent=1,
            )
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
