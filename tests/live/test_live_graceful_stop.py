"""Graceful stop of a real ``run_simple`` process (see ``fastserve._signals``).

Each test starts a server subprocess in its own session on 127.0.0.1, puts
slow requests in flight (the app records each start in a file, so the signal
is sent only once they are inside the app), signals it, and checks what
gunicorn and uvicorn do: every request in flight completes with
``Connection: close``, a new connection is refused, and the process exits
with werkzeug's status for that signal (Ctrl+C: ``run_simple`` returns; SIGTERM:
killed by SIGTERM; the reloader parent: 0). The last test stops a ``serve_live.py``
server (both parsers) holding parked keep-alive connections.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import ephemeral_port_reserve
import pytest
from live_helpers import LiveServer, wait_until

pytestmark = [pytest.mark.live, pytest.mark.timeout(60)]

APP = """\
import json
import os
import sys
import time

from fastserve.serving import BaseWSGIServer, ForkingWSGIServer, run_simple

STARTED = sys.argv[3]


def app(environ, start_response):
    if environ["PATH_INFO"] == "/slow":
        with open(STARTED, "a") as f:
            f.write(f"{os.getpid()}\\n")
        time.sleep(float(environ["QUERY_STRING"] or 2))
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"done"]


port, options = int(sys.argv[1]), json.loads(sys.argv[2])
BaseWSGIServer.shutdown_timeout = options.pop("shutdown_timeout", 10.0)
ForkingWSGIServer.reuse_port = options.pop("reuse_port", True)
run_simple("127.0.0.1", port, app, **options)
print("RETURNED", flush=True)
"""


class Server:
    """``app.py`` under ``run_simple(**options)`` in a new session."""

    def __init__(self, tmp_path: Path, **options: Any) -> None:
        self.tmp_path = tmp_path
        self.port = ephemeral_port_reserve.reserve("127.0.0.1")
        self.started = tmp_path / "started.txt"
        (tmp_path / "app.py").write_text(APP)
        env = {k: v for k, v in os.environ.items() if not k.startswith("WERKZEUG_")}
        env["PYTHONUNBUFFERED"] = "1"
        self.log_path = tmp_path / "log.txt"
        self._log = open(self.log_path, "wb")  # noqa: SIM115
        self.proc = subprocess.Popen(
            [sys.executable, "app.py", str(self.port), json.dumps(options), str(self.started)],
            cwd=tmp_path,
            env=env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.responses: list[bytes] = []
        self._threads: list[threading.Thread] = []
        deadline = time.monotonic() + 20
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                break
            except OSError:
                assert self.proc.poll() is None, self.log()
                assert time.monotonic() < deadline, self.log()
                time.sleep(0.05)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def slow_requests(self, count: int, seconds: float = 2.0) -> None:
        """Send ``count`` more concurrent ``/slow`` requests; wait until all are in the app."""
        for _ in range(count):
            t = threading.Thread(target=self._request, args=(seconds,), daemon=True)
            t.start()
            self._threads.append(t)
        self.wait_started(len(self._threads))

    def _request(self, seconds: float) -> None:
        data = b""
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=30) as s:
                s.sendall(f"GET /slow?{seconds} HTTP/1.1\r\nHost: t\r\n\r\n".encode())
                while chunk := s.recv(65536):
                    data += chunk
        except OSError as e:
            data += f"<{type(e).__name__}>".encode()
        self.responses.append(data)

    def wait_started(self, count: int) -> list[str]:
        deadline = time.monotonic() + 15
        while True:
            lines = self.started.read_text().split() if self.started.exists() else []
            if len(lines) >= count:
                return lines
            assert time.monotonic() < deadline, (lines, self.log())
            time.sleep(0.02)

    def signal(self, signum: int, group: bool = False) -> None:
        if group:
            os.killpg(self.proc.pid, signum)
        else:
            self.proc.send_signal(signum)

    def assert_refused(self) -> None:
        """New connections are refused soon after the signal (the listener is shut down
        first); a probe made before that is closed again at once, empty, or reset."""

        def refused() -> bool:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=2).close()
            except ConnectionRefusedError:
                return True
            except OSError:  # reset: the listener closed while this one was queued
                pass
            return False

        wait_until(refused, "new connections refused", timeout=10)

    def wait(self, timeout: float) -> int:
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"still running after {timeout} s:\n{self.log()}") from None

    def finished_responses(self, timeout: float = 15) -> list[bytes]:
        for t in self._threads:
            t.join(timeout)
        return self.responses

    def close(self) -> None:
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.proc.wait(timeout=10)
        self._log.close()


@pytest.fixture
def start(tmp_path: Path) -> Any:
    servers: list[Server] = []

    def start(**options: Any) -> Server:
        server = Server(tmp_path, **options)
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.close()


def assert_completed_with_close(responses: list[bytes], count: int) -> None:
    assert len(responses) == count, responses
    for response in responses:
        head, _, body = response.partition(b"\r\n\r\n")
        assert head.split(b"\r\n")[0].endswith(b" 200 OK"), response
        assert b"\r\nConnection: close" in head, response
        assert body == b"done", response


def assert_cut(responses: list[bytes], count: int) -> None:
    assert len(responses) == count, responses
    assert not any(b" 200 OK" in r for r in responses), responses


@pytest.mark.parametrize("threaded", [True, False], ids=["threaded", "plain"])
def test_sigterm_lets_requests_in_flight_finish(start: Any, threaded: bool) -> None:
    count = 10 if threaded else 1
    server = start(threaded=threaded)
    server.slow_requests(count)
    sent = time.monotonic()
    server.signal(signal.SIGTERM)
    server.assert_refused()
    assert server.wait(10) == -signal.SIGTERM
    assert time.monotonic() - sent < 10
    assert_completed_with_close(server.finished_responses(), count)
    assert "RETURNED" not in server.log()  # killed by SIGTERM, after the cleanup


def test_first_sigint_lets_requests_finish_then_run_simple_returns(start: Any) -> None:
    server = start(threaded=True)
    server.slow_requests(10)
    server.signal(signal.SIGINT)
    server.assert_refused()
    # werkzeug's serve_forever swallows KeyboardInterrupt: run_simple returns
    assert server.wait(10) == 0
    assert_completed_with_close(server.finished_responses(), 10)
    assert "RETURNED" in server.log()
    assert "Traceback" not in server.log()


@pytest.mark.parametrize("threaded", [True, False], ids=["threaded", "plain"])
def test_second_sigint_stops_at_once(start: Any, threaded: bool) -> None:
    server = start(threaded=threaded)
    server.slow_requests(1, seconds=20)
    server.signal(signal.SIGINT)
    server.assert_refused()  # the first Ctrl+C was handled
    assert server.proc.poll() is None  # draining: the request still runs
    sent = time.monotonic()
    server.signal(signal.SIGINT)
    assert server.wait(5) == 0
    assert time.monotonic() - sent < 3
    assert_cut(server.finished_responses(), 1)
    assert "RETURNED" in server.log()


@pytest.mark.parametrize("threaded", [True, False], ids=["threaded", "plain"])
def test_shutdown_timeout_bounds_the_drain(start: Any, threaded: bool) -> None:
    server = start(threaded=threaded, shutdown_timeout=1.0)
    server.slow_requests(1, seconds=30)
    sent = time.monotonic()
    server.signal(signal.SIGTERM)
    assert server.wait(10) == -signal.SIGTERM
    assert 0.9 < time.monotonic() - sent < 5
    assert_cut(server.finished_responses(), 1)


@pytest.mark.parametrize(
    ("signum", "group"),
    [(signal.SIGTERM, False), (signal.SIGTERM, True), (signal.SIGINT, True)],
    ids=["SIGTERM-parent", "SIGTERM-group", "SIGINT-group"],
)
def test_reloader_child_drains(start: Any, signum: int, group: bool) -> None:
    server = start(threaded=True, use_reloader=True, reloader_type="stat")
    server.slow_requests(5)
    pids = set(server.wait_started(5))
    assert server.proc.pid not in {int(p) for p in pids}  # served by the child
    server.signal(signum, group=group)
    server.assert_refused()
    # the parent exits 0, as werkzeug's reloader parent does
    assert server.wait(10) == 0
    assert_completed_with_close(server.finished_responses(), 5)
    for pid in pids:
        assert not Path(f"/proc/{pid}").exists()


@pytest.mark.parametrize("group", [False, True], ids=["parent", "group"])
def test_prefork_workers_drain(start: Any, group: bool) -> None:
    # one shared socket: an idle worker takes the next connection (with one
    # listener per worker it could queue behind the busy one; that case is in
    # test_live_reuseport.py)
    server = start(processes=2, reuse_port=False)
    server.slow_requests(1)
    # one request per worker: the second one starts in the other worker
    server.slow_requests(1)
    pids = {int(p) for p in server.wait_started(2)}
    assert len(pids) == 2 and server.proc.pid not in pids
    server.signal(signal.SIGTERM, group=group)
    server.assert_refused()
    assert server.wait(10) == -signal.SIGTERM
    assert_completed_with_close(server.finished_responses(), 2)
    for pid in pids:
        assert not Path(f"/proc/{pid}").exists()


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_signal_stops_server_with_open_connections(
    start_server: Callable[..., LiveServer], signum: signal.Signals
) -> None:
    """Ctrl+C / SIGTERM stop the server even with parked connections and a request in flight
    (one that would hold its thread for 30 s: ``shutdown_timeout`` cuts it after 1 s)."""
    server = start_server("echo", server_attrs={"shutdown_timeout": 1.0})
    idle = server.connect()
    in_flight = server.raw_socket()
    try:
        idle.request("GET", "/parked")
        idle.getresponse().read()
        in_flight.sendall(b"GET /block HTTP/1.1\r\nHost: t\r\n\r\n")
        wait_until(
            lambda: {"method": "GET", "path": "/block"} in server.calls(), "/block in the app"
        )
        server.proc.send_signal(signum)
        returncode = server.proc.wait(timeout=15)
    finally:
        idle.close()
        in_flight.close()
    # SIGINT: werkzeug's serve_forever swallows KeyboardInterrupt (exit 0); SIGTERM: werkzeug
    # installs no handler, so the default action ends the process (-SIGTERM) - or exit 0.
    assert returncode in ((0,) if signum == signal.SIGINT else (0, -signal.SIGTERM))
    with pytest.raises(OSError):
        socket.create_connection((server.host, server.port), timeout=2).close()
