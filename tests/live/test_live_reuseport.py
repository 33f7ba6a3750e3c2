"""``processes=N`` on Linux: one ``SO_REUSEPORT`` listener per worker (``fastserve._reuseport``).

Each test runs ``run_simple`` in a subprocess on 127.0.0.1 and reads the
kernel's view of the port from ``/proc/net/tcp`` (one row per listening
socket, with its accept-queue length). The app answers with the pid of the
worker that served the request; ``/hold`` records that pid in a file and
blocks until the test creates ``release``, so a test can keep every worker
busy and then see connections wait in the accept queues: each connection
sent is then either inside the app or counted in a queue.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import ephemeral_port_reserve
import pytest
from listening import accept_queues, linux_only, wait_for

pytestmark = [pytest.mark.live, pytest.mark.timeout(90), linux_only]

APP = """\
import json
import os
import sys
import time

from fastserve.serving import BaseWSGIServer, ForkingWSGIServer, run_simple

WORKDIR = sys.argv[3]


def app(environ, start_response):
    if environ["PATH_INFO"] == "/hold":
        with open(os.path.join(WORKDIR, "started.txt"), "a") as f:
            f.write(f"{os.getpid()}\\n")
        release = os.path.join(WORKDIR, "release")
        deadline = time.monotonic() + 60
        while not os.path.exists(release) and time.monotonic() < deadline:
            time.sleep(0.01)
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [str(os.getpid()).encode()]


port, options = int(sys.argv[1]), json.loads(sys.argv[2])
BaseWSGIServer.shutdown_timeout = options.pop("shutdown_timeout", 10.0)
ForkingWSGIServer.reuse_port = options.pop("reuse_port", True)
run_simple("127.0.0.1", port, app, **options)
"""


class Server:
    """``app.py`` under ``run_simple(**options)`` in a new session."""

    def __init__(self, tmp_path: Path, **options: Any) -> None:
        self.dir = tmp_path
        (tmp_path / "app.py").write_text(APP)
        self.port = ephemeral_port_reserve.reserve("127.0.0.1")
        self.options = options
        self.log_path = tmp_path / f"log-{self.port}.txt"
        self._log = open(self.log_path, "wb")  # noqa: SIM115
        self.proc = subprocess.Popen(
            self.command(),
            cwd=tmp_path,
            env=self.env(),
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.sent = 0
        self._responses: list[tuple[str, bytes]] = []
        self._threads: list[threading.Thread] = []
        wait_for(self._ready, f"server on port {self.port} answers")

    def command(self) -> list[str]:
        return [sys.executable, "app.py", str(self.port), json.dumps(self.options), str(self.dir)]

    @staticmethod
    def env() -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("WERKZEUG_")}
        env["PYTHONUNBUFFERED"] = "1"
        return env

    def _ready(self) -> bool:
        assert self.proc.poll() is None, self.log()
        try:
            self.get("/")
        except OSError:
            return False
        return True

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def get(self, path: str) -> tuple[str, bytes]:
        """One HTTP/1.0 request on a new connection: (status line, body)."""
        with socket.create_connection(("127.0.0.1", self.port), timeout=30) as s:
            s.sendall(f"GET {path} HTTP/1.0\r\nHost: t\r\n\r\n".encode())
            data = b""
            while chunk := s.recv(65536):
                data += chunk
        head, _, body = data.partition(b"\r\n\r\n")
        return head.split(b"\r\n")[0].decode(), body

    def get_many(self, count: int) -> Counter[int]:
        """``count`` concurrent requests; every one must succeed. :return: pid -> requests."""
        with ThreadPoolExecutor(32) as pool:
            responses = list(pool.map(lambda _: self.get("/"), range(count)))
        assert all(status.endswith(" 200 OK") for status, _ in responses), responses
        return Counter(int(body) for _, body in responses)

    # -- held requests -------------------------------------------------------------

    def hold(self) -> None:
        """Send one more ``/hold`` request (its response is collected in a thread)."""
        self.sent += 1
        t = threading.Thread(target=self._hold, daemon=True)
        t.start()
        self._threads.append(t)

    def _hold(self) -> None:
        try:
            self._responses.append(self.get("/hold"))
        except OSError as e:
            self._responses.append((f"<{type(e).__name__}>", b""))

    def started(self) -> list[int]:
        path = self.dir / "started.txt"
        return [int(p) for p in path.read_text().split()] if path.exists() else []

    def accounted(self) -> bool:
        """Every ``/hold`` sent is inside the app or waits in an accept queue."""
        return len(self.started()) + sum(accept_queues(self.port)) == self.sent

    def hold_every_worker_with_a_queue(self, workers: int) -> set[int]:
        """Send ``/hold`` requests until each of the ``workers`` is inside one
        and every listener has at least one more connection queued.
        :return: the pids of the workers."""
        for _ in range(100):
            wait_for(self.accounted, "each request in the app or in a queue")
            busy = set(self.started())
            queues = accept_queues(self.port)
            if len(busy) == workers and len(queues) == workers and min(queues) >= 1:
                return busy
            self.hold()
        raise AssertionError(f"queues {accept_queues(self.port)}, busy {self.started()}")

    def release(self) -> list[tuple[str, bytes]]:
        """Let the held requests finish; :return: every ``/hold`` response."""
        (self.dir / "release").touch()
        for t in self._threads:
            t.join(30)
        assert len(self._responses) == self.sent, self._responses
        return self._responses

    def wait(self, timeout: float) -> int:
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"still running after {timeout} s:\n{self.log()}") from None

    def close(self) -> None:
        (self.dir / "release").touch()
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.proc.wait(timeout=10)
        self._log.close()


@pytest.fixture
def start(tmp_path: Path) -> Iterator[Any]:
    servers: list[Server] = []

    def start(**options: Any) -> Server:
        server = Server(tmp_path, **options)
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.close()


def parent_of(pid: int) -> int:
    with open(f"/proc/{pid}/stat") as f:
        return int(f.read().rpartition(")")[2].split()[1])


def assert_all_served(responses: list[tuple[str, bytes]]) -> Counter[int]:
    assert all(status.endswith(" 200 OK") for status, _ in responses), responses
    return Counter(int(body) for _, body in responses)


# -- balancing -------------------------------------------------------------------------


@pytest.mark.parametrize("processes", [2, 3])
def test_every_worker_serves(start: Any, processes: int) -> None:
    server = start(processes=processes)
    assert len(accept_queues(server.port)) == processes  # one listener per worker
    served = server.get_many(32 * processes)
    # the kernel hashes connections over the listeners: with 64+ connections a
    # worker that got none is a bug (chance: processes * (1 - 1/processes) ** 64)
    assert len(served) == processes, served
    assert all(parent_of(pid) == server.proc.pid for pid in served)


def test_reuse_port_off_keeps_one_shared_socket(start: Any) -> None:
    server = start(processes=2, reuse_port=False)
    assert len(accept_queues(server.port)) == 1
    served = server.get_many(64)
    assert sum(served.values()) == 64
    assert all(parent_of(pid) == server.proc.pid for pid in served)


@pytest.mark.parametrize("processes", [1, 2])
def test_second_instance_fails_like_werkzeug(start: Any, processes: int) -> None:
    """The first bind has no SO_REUSEPORT: a second server cannot join the group."""
    first = start(processes=2)
    options = json.dumps({"processes": processes})
    second = subprocess.run(
        [sys.executable, "app.py", str(first.port), options, str(first.dir)],
        cwd=first.dir,
        env=Server.env(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert second.returncode == 1, second.stderr
    assert "Address already in use" in second.stderr
    assert f"Port {first.port} is in use by another program." in second.stderr
    assert len(accept_queues(first.port)) == 2
    served = first.get_many(64)
    assert all(parent_of(pid) == first.proc.pid for pid in served)


def test_reloader_child_keeps_one_shared_listener(start: Any) -> None:
    """The reloader's child serves the socket it inherited: no group is made."""
    server = start(processes=2, use_reloader=True, reloader_type="stat")
    served = server.get_many(64)
    assert len(accept_queues(server.port)) == 1
    children = {parent_of(pid) for pid in served}
    assert len(children) == 1 and server.proc.pid not in children  # the reloader's child


def test_an_idle_worker_takes_what_waits_behind_a_slow_request(start: Any) -> None:
    """Connections hashed to a busy worker are served by an idle one after
    about a poll interval, not after the slow request."""
    server = start(processes=2)
    server.hold()
    wait_for(lambda: len(server.started()) == 1, "one worker inside /hold")
    [busy] = server.started()
    with ThreadPoolExecutor(1) as pool:
        # 16 connections: some are hashed to the busy worker's listener
        served = pool.submit(server.get_many, 16).result(timeout=30)
    assert busy not in served and sum(served.values()) == 16
    assert len(server.started()) == 1  # still held: the other worker served them all
    assert_all_served(server.release())


# -- a worker that exits, the group that stops ---------------------------------------------


def test_worker_sigterm_serves_its_queue_then_is_replaced(start: Any) -> None:
    server = start(processes=2)
    workers = server.hold_every_worker_with_a_queue(2)
    stopped = min(workers)
    os.kill(stopped, signal.SIGTERM)
    # it accepted its queue, then shut its listener down: that left the group
    # (had the queue not been accepted first, those clients would have been reset)
    wait_for(lambda: len(accept_queues(server.port)) == 1, "the listener left the group")
    served = assert_all_served(server.release())
    assert served[stopped] >= 2  # its request in flight and what was queued for it
    # a new worker listens on the same socket again, and serves
    wait_for(lambda: len(accept_queues(server.port)) == 2, "a replacement listens")
    wait_for(lambda: not os.path.exists(f"/proc/{stopped}"), "the stopped worker is gone")
    served = server.get_many(64)
    assert len(served) == 2 and stopped not in served


def test_killed_worker_leaves_its_queue_to_the_replacement(start: Any) -> None:
    server = start(processes=2)
    workers = server.hold_every_worker_with_a_queue(2)
    killed = min(workers)
    os.kill(killed, signal.SIGKILL)
    # the parent holds the listener: its queue waits for the replacement,
    # which takes the next /hold from it
    wait_for(lambda: len(set(server.started()) - workers) == 1, "a replacement serves")
    [replacement] = set(server.started()) - workers
    assert parent_of(replacement) == server.proc.pid
    assert len(accept_queues(server.port)) == 2
    responses = server.release()
    cut = [r for r in responses if not r[0].endswith(" 200 OK")]
    assert len(cut) == 1, responses  # only the request the killed worker was serving
    served = assert_all_served([r for r in responses if r not in cut])
    assert killed not in served and served[replacement] >= 1


@pytest.mark.parametrize("group", [False, True], ids=["parent", "group"])
def test_group_stop_serves_every_queued_connection(start: Any, group: bool) -> None:
    server = start(processes=2)
    server.hold_every_worker_with_a_queue(2)
    if group:
        os.killpg(server.proc.pid, signal.SIGTERM)
    else:
        server.proc.send_signal(signal.SIGTERM)
    # every worker accepted its queue and shut its listener down: new
    # connections are refused while the requests finish
    wait_for(lambda: not accept_queues(server.port), "no listener left")
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", server.port), timeout=5).close()
    assert_all_served(server.release())
    assert server.wait(20) == -signal.SIGTERM
