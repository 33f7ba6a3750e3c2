"""Run a command that starts a server, talk to it over loopback, always stop it.

Used by the CLI and Flask tests. Output (stdout and stderr together) goes to
a log file, so a chatty server can never block on a full pipe; every wait is
bounded and raises with the log attached; :meth:`LiveCommand.stop` runs in
``finally`` / ``__exit__`` and kills what terminate did not end.
"""

from __future__ import annotations

import http.client
import os
import signal
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import ephemeral_port_reserve

import fastserve

#: the directory that holds the ``fastserve`` package under test
PACKAGE_ROOT = str(Path(fastserve.__file__).resolve().parent.parent)
STARTUP_TIMEOUT = 30.0
REQUEST_TIMEOUT = 15.0


def free_port() -> int:
    """A loopback port nobody listens on (reserved the ``ephemeral_port_reserve`` way)."""
    return int(ephemeral_port_reserve.reserve("127.0.0.1"))


def child_env(cwd: Path, **extra: str) -> dict[str, str]:
    """The environment of a server process: fastserve and ``cwd`` importable, unbuffered."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("WERKZEUG_", "FLASK_"))}
    inherited = [os.environ["PYTHONPATH"]] if os.environ.get("PYTHONPATH") else []
    env["PYTHONPATH"] = os.pathsep.join([str(cwd), PACKAGE_ROOT, *inherited])
    env["PYTHONUNBUFFERED"] = "1"
    env["NO_COLOR"] = "1"
    env.update(extra)
    return env


def run_command(
    args: Sequence[str], cwd: Path, env: Mapping[str, str] | None = None, timeout: float = 60.0
) -> subprocess.CompletedProcess[str]:
    """Run a command that is expected to end by itself (error cases, ``--version``)."""
    return subprocess.run(
        [sys.executable, *args],
        cwd=cwd,
        env=dict(env) if env is not None else child_env(cwd),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@dataclass
class Response:
    status: int
    headers: http.client.HTTPMessage
    body: bytes

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", "replace")


class LiveCommand:
    """``python <args>`` started in ``cwd`` in its own process group."""

    def __init__(
        self,
        args: Sequence[str],
        cwd: Path,
        port: int | None = None,
        env: Mapping[str, str] | None = None,
        unix_path: Path | None = None,
        https: bool = False,
        host: str = "127.0.0.1",
    ) -> None:
        self.cwd = cwd
        self.host = host
        self.port = port
        self.unix_path = unix_path
        self.https = https
        self.log_path = cwd / f"server-{time.monotonic_ns()}.log"
        self._log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(
            [sys.executable, *args],
            cwd=cwd,
            env=dict(env) if env is not None else child_env(cwd),
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # the reloader's children are stopped with the group
        )

    def __enter__(self) -> LiveCommand:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def log(self) -> str:
        return self.log_path.read_text("utf-8", "replace")

    def _fail(self, what: str) -> AssertionError:
        return AssertionError(f"{what}; exit status {self.proc.poll()}; log:\n{self.log}")

    def wait_ready(self, timeout: float = STARTUP_TIMEOUT) -> None:
        """Wait until the server accepts connections (bounded)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise self._fail("server exited before accepting connections")
            try:
                self._connect(timeout=1.0).close()
                return
            except OSError:
                time.sleep(0.05)
        raise self._fail(f"server not ready after {timeout} s")

    def wait_for_log(self, text: str, timeout: float = STARTUP_TIMEOUT, count: int = 1) -> None:
        """Wait until ``text`` appears ``count`` times in the output (bounded)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.log.count(text) >= count:
                return
            if self.proc.poll() is not None:
                break
            time.sleep(0.05)
        raise self._fail(f"{text!r} not seen {count} time(s) in the output")

    def _connect(self, timeout: float) -> socket.socket:
        if self.unix_path is not None:
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            sock.settimeout(timeout)
            try:
                sock.connect(str(self.unix_path))
            except OSError:
                sock.close()
                raise
            return sock
        assert self.port is not None
        return socket.create_connection((self.host, self.port), timeout=timeout)

    def request(
        self,
        method: str,
        path: str,
        body: bytes | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> Response:
        """One request on a new connection; the whole response is read."""
        conn: http.client.HTTPConnection
        if self.https:
            context = ssl.create_default_context()
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
            conn = http.client.HTTPSConnection(
                self.host, self.port, timeout=REQUEST_TIMEOUT, context=context
            )
        else:
            conn = http.client.HTTPConnection(self.host, self.port, timeout=REQUEST_TIMEOUT)
            if self.unix_path is not None:
                conn.sock = self._connect(REQUEST_TIMEOUT)
        try:
            conn.request(method, path, body=body, headers=dict(headers or {}))
            response = conn.getresponse()
            return Response(response.status, response.headers, response.read())
        finally:
            conn.close()

    def get(self, path: str, headers: Mapping[str, str] | None = None) -> Response:
        return self.request("GET", path, headers=headers)

    def stop(self) -> None:
        """Stop the process group (SIGTERM, then SIGKILL after 10 s) and close the log."""
        try:
            if self.proc.poll() is None:
                os.killpg(self.proc.pid, signal.SIGTERM)
                try:
                    self.proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    os.killpg(self.proc.pid, signal.SIGKILL)
                    self.proc.wait(timeout=10)
            # a reloader child may outlive its parent for a moment: end the group for sure
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        finally:
            self._log.close()
