"""The servers a benchmark can compare, and one running server's lifecycle.

A :class:`Server` says how to start a server on a loopback port: its command
line and environment, and the module that must be importable for it to be
offered. :data:`SERVERS` is the catalogue; :data:`DEFAULT_SERVERS` is what
``fastserve bench`` runs when installed.

:class:`RunningServer` starts one in its own session (so stopping it reaches
its workers too) with the app spec in ``FASTSERVE_BENCH_APP``, waits until it
answers an HTTP request, reports the CPU time of its whole process group
(Linux ``/proc``; ``None`` elsewhere) and stops it with SIGTERM, then SIGKILL.
Every server binds 127.0.0.1 only.
"""

from __future__ import annotations

import importlib.util
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

from .apps import APP_ENV

__all__ = [
    "DEFAULT_SERVERS",
    "HOST",
    "SERVERS",
    "RunningServer",
    "Server",
    "free_port",
    "in_process",
    "keeps_alive",
    "listen_queue",
    "process_group_cpu",
]

HOST: Final = "127.0.0.1"
SERVE_SCRIPT: Final = Path(__file__).resolve().with_name("serve.py")
TARGET: Final = "fastserve._bench.target:app"


@dataclass(frozen=True)
class Server:
    """How to start one server on a port.

    :param name: the row's label, and the name ``--servers`` takes.
    :param module: what must be importable for the server to be offered.
    :param command: the command line for a port.
    :param env: extra environment variables.
    :param install_hint: how to get it, shown when it is missing.
    :param about: its configuration, one line for the notes.
    """

    name: str
    module: str
    command: Callable[[int], list[str]]
    env: Mapping[str, str] = field(default_factory=dict)
    install_hint: str = ""
    about: str = ""

    def installed(self) -> bool:
        """Whether :attr:`module` can be found by this interpreter."""
        try:
            return importlib.util.find_spec(self.module) is not None
        except (ImportError, ValueError):
            return False


def in_process(launcher: str) -> Callable[[int], list[str]]:
    """The command line of a server started by ``serve.py`` (see its docstring)."""
    return lambda port: [sys.executable, str(SERVE_SCRIPT), launcher, str(port)]


def _gunicorn(worker: str, *extra: str) -> Callable[[int], list[str]]:
    return lambda port: [
        sys.executable, "-m", "gunicorn", "-w", "1", "-k", worker, *extra,
        "-b", f"{HOST}:{port}", "--log-level", "warning", TARGET,
    ]  # fmt: skip


def _granian(port: int) -> list[str]:
    return [
        sys.executable, "-m", "granian", "--interface", "wsgi", "--host", HOST,
        "--port", str(port), "--workers", "1", "--http", "1", "--no-ws",
        "--no-access-log", "--log-level", "warning", "--working-dir", os.getcwd(), TARGET,
    ]  # fmt: skip


def _uwsgi(port: int) -> list[str]:
    # --http11-socket: uWSGI's own HTTP parser with keep-alive, no router process
    return [
        sys.executable, "-c", "import pyuwsgi; pyuwsgi.run()",
        "--http11-socket", f"{HOST}:{port}", "--module", TARGET, "--processes", "1",
        "--threads", "8", "--die-on-term", "--disable-logging", "--need-app",
    ]  # fmt: skip


SERVERS: Final[tuple[Server, ...]] = (
    Server("fastserve", "fastserve", in_process("fastserve"),
           about="run_simple(threaded=True), compiled parser, no access log"),
    Server("fastserve-py", "fastserve", in_process("fastserve"),
           {"FASTSERVE_NO_EXTENSIONS": "1"}, about="the same with the pure-Python parser"),
    Server("fastserve-log", "fastserve", in_process("fastserve-log"),
           about="compiled parser, access log on (written to /dev/null)"),
    Server("werkzeug", "werkzeug", in_process("werkzeug"),
           about="werkzeug.serving.run_simple(threaded=True)"),
    Server("waitress", "waitress", in_process("waitress"), install_hint="pip install waitress",
           about="waitress.serve, 4 threads"),
    Server("gunicorn-sync", "gunicorn", _gunicorn("sync"), install_hint="pip install gunicorn",
           about="1 sync worker (no keep-alive)"),
    Server("gunicorn-gthread", "gunicorn", _gunicorn("gthread", "--threads", "8"),
           install_hint="pip install gunicorn", about="1 gthread worker, 8 threads"),
    Server("granian", "granian", _granian, install_hint="pip install granian",
           about="WSGI interface, 1 worker, HTTP/1"),
    Server("bjoern", "bjoern", in_process("bjoern"),
           install_hint="apt-get install libev-dev && pip install bjoern",
           about="bjoern.run (libev, one thread)"),
    Server("fastwsgi", "fastwsgi", in_process("fastwsgi"), install_hint="pip install fastwsgi",
           about="fastwsgi.run (libuv, one thread)"),
    Server("socketify", "socketify", in_process("socketify"),
           install_hint="pip install socketify", about="socketify.WSGI, 1 worker"),
    Server("uwsgi", "pyuwsgi", _uwsgi, install_hint="pip install pyuwsgi",
           about="--http11-socket, 1 process, 8 threads"),
)  # fmt: skip

#: what ``fastserve bench`` runs by default, each where installed
DEFAULT_SERVERS: Final = (
    "fastserve", "werkzeug", "waitress", "gunicorn-gthread", "granian", "bjoern",
)  # fmt: skip


def free_port() -> int:
    """A loopback port that was free a moment ago."""
    with socket.socket() as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


def answers_http(port: int, path: str = "/", timeout: float = 1.0) -> bool:
    """Whether a ``GET path`` on 127.0.0.1:``port`` gets an HTTP response (any status)."""
    try:
        with socket.create_connection((HOST, port), timeout=timeout) as s:
            s.sendall(f"GET {path} HTTP/1.1\r\nHost: {HOST}\r\nConnection: close\r\n\r\n".encode())
            return s.recv(16).startswith(b"HTTP/1.")
    except OSError:
        return False


def keeps_alive(port: int, path: str = "/", timeout: float = 5.0) -> bool:
    """Whether the server would keep a connection open after answering ``GET path``.

    Read from the response head: HTTP/1.1 without ``Connection: close`` (RFC 9112 §9.3).
    """
    request = f"GET {path} HTTP/1.1\r\nHost: {HOST}:{port}\r\n\r\n".encode()
    with socket.create_connection((HOST, port), timeout=timeout) as s:
        s.sendall(request)
        head = b""
        while b"\r\n\r\n" not in head and len(head) < 65536:
            chunk = s.recv(65536)
            if not chunk:
                break
            head += chunk
    status_line, _, fields = head.partition(b"\r\n\r\n")[0].partition(b"\r\n")
    closes = any(
        name.strip().lower() == b"connection" and b"close" in value.lower()
        for name, _, value in (line.partition(b":") for line in fields.split(b"\r\n"))
    )
    return status_line.startswith(b"HTTP/1.1 ") and not closes


_CLK_TCK: Final = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def process_group_cpu(pgid: int) -> float | None:
    """CPU seconds (user + system) used so far by the live processes of group ``pgid``.

    Read from ``/proc/<pid>/stat`` (fields 5 ``pgrp``, 14 ``utime``, 15 ``stime``,
    proc(5)); ``None`` where there is no ``/proc``.
    """
    if not os.path.isdir("/proc/self"):
        return None
    ticks = 0
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat", "rb") as f:
                stat = f.read()
        except OSError:
            continue  # gone meanwhile
        # the command name (field 2) is in parentheses and may hold spaces
        fields = stat[stat.rfind(b")") + 2 :].split()
        if int(fields[2]) == pgid:
            ticks += int(fields[11]) + int(fields[12])
    return ticks / _CLK_TCK


def listen_queue(port: int) -> int | None:
    """Connections waiting to be accepted on 127.0.0.1:``port``; ``None`` without Linux ``/proc``.

    For a listening socket, ``/proc/net/tcp`` gives the accept queue's length
    as ``rx_queue`` (state ``0A``); sockets sharing the port (``SO_REUSEPORT``)
    are summed. A keep-alive server that stops accepting - every thread busy
    holding a connection - leaves the rest of the client's connections there,
    unanswered, and wrk does not count them.
    """
    try:
        with open("/proc/net/tcp") as f:
            lines = f.read().splitlines()[1:]
    except OSError:
        return None
    local = f"0100007F:{port:04X}"  # 127.0.0.1 in the kernel's byte order
    waiting = 0
    for line in lines:
        fields = line.split()
        if fields[1] == local and fields[3] == "0A":
            waiting += int(fields[4].split(":")[1], 16)
    return waiting


class RunningServer:
    """A server subprocess in its own session, serving ``app_spec`` on a free loopback port.

    :param server: what to start.
    :param app_spec: the ``module:app`` to serve.
    :param cwd: the directory it runs in (the user's modules are importable from it).
    """

    def __init__(self, server: Server, app_spec: str, cwd: str | None = None) -> None:
        self.server = server
        self.port = free_port()
        #: whether it keeps connections open after a response (set by the runner)
        self.keeps_alive = True
        env = {**os.environ, **server.env, APP_ENV: app_spec}
        if "FASTSERVE_NO_EXTENSIONS" not in server.env:
            env.pop("FASTSERVE_NO_EXTENSIONS", None)
        # stderr goes to a file, never a pipe: a server that logs a lot (waitress warns
        # "Task queue depth" under load) would block on a full pipe nobody reads
        self._stderr = tempfile.TemporaryFile()
        self.proc = subprocess.Popen(
            server.command(self.port),
            cwd=cwd,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=self._stderr,
            stderr=self._stderr,
            start_new_session=True,
        )

    def wait_ready(self, path: str = "/", timeout: float = 30.0) -> None:
        """Return once the server answers; raise :class:`RuntimeError` if it exits or times out."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.exited():
                raise RuntimeError(f"exited before answering: {self.output()}")
            if answers_http(self.port, path):
                return
            time.sleep(0.05)
        raise RuntimeError(f"did not answer within {timeout:.0f} s: {self.output()}")

    def output(self, limit: int = 500) -> str:
        """The last ``limit`` characters the server wrote, on one line."""
        self._stderr.seek(0)
        text = self._stderr.read().decode(errors="replace")
        return " | ".join(text[-limit:].strip().splitlines()) or "no output"

    def cpu_seconds(self) -> float | None:
        """CPU seconds its process group has used so far (see :func:`process_group_cpu`)."""
        return process_group_cpu(self.proc.pid)

    def exited(self, timeout: float = 0.0) -> bool:
        """Whether the server's main process has exited, waiting up to ``timeout`` seconds.

        The process is not reaped (``WNOWAIT``): until :meth:`stop` reaps it,
        its id - the group's id - cannot be reused, so signalling the group
        can only reach what this object started.
        """
        deadline = time.monotonic() + timeout
        while True:
            if self.proc.returncode is not None:
                return True
            info = os.waitid(os.P_PID, self.proc.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT)
            if info is not None:
                return True
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.02)

    def stop(self) -> None:
        """SIGTERM to the whole group, SIGKILL after 10 s; then whatever is left; then reap."""
        if self.proc.returncode is None:
            self._signal_group(signal.SIGTERM)
            if not self.exited(10):
                self._signal_group(signal.SIGKILL)
                self.exited(10)
            # a worker its master did not take down
            self._signal_group(signal.SIGKILL)
            self.proc.wait(10)
        self._stderr.close()

    def _signal_group(self, signum: int) -> None:
        try:
            os.killpg(self.proc.pid, signum)
        except (ProcessLookupError, PermissionError):
            pass

    def __enter__(self) -> RunningServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
