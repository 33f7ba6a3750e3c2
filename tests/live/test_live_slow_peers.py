"""Slow peers against a server subprocess (issue 7): what they cost the server
process as a whole - threads, CPU, file descriptors - read from ``/proc``.

* one long request costs one thread, and the process idles while it waits;
* 300 slow peers (heads and bodies trickling in, responses nobody reads) hold no
  threads, and a plain request is answered promptly meanwhile;
* out of file descriptors, the server rests its listener (``accept_backoff``),
  logs a couple of lines at most, burns no CPU, and serves again once
  connections close.

The server is ``serve_live.py`` with ``server_attrs`` (class attributes of
``BaseWSGIServer``) and ``rlimit_nofile``; every test starts its own server, so
their counts do not mix. Linux only (``/proc``).
"""

from __future__ import annotations

import os
import re
import select
import socket
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from live_helpers import LiveServer, read_response

pytestmark = [
    pytest.mark.live,
    pytest.mark.timeout(60),
    pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/<pid>"),
]

#: werkzeug's access line: ``... "GET /path HTTP/1.1" 200 -`` (maybe ANSI-styled)
_ACCESS = re.compile(r'"[A-Z]+ \S* HTTP/\d\.\d" \d{3} ')


def _threads(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("Threads:"):
            return int(line.split()[1])
    raise AssertionError(f"no Threads line for {pid}")


def _cpu_seconds(pid: int) -> float:
    """User + system CPU time of the whole process so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    utime, stime = int(fields[11]), int(fields[12])  # fields 14 and 15 of proc(5)
    return (utime + stime) / os.sysconf("SC_CLK_TCK")


def _other_lines(log: str) -> list[str]:
    """Log lines that are not access lines."""
    return [line for line in log.splitlines() if line.strip() and not _ACCESS.search(line)]


def _wait_until(predicate: Callable[[], bool], timeout: float, step: float = 0.05) -> bool:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            return False
        time.sleep(step)
    return True


def _timed_get(server: LiveServer, path: str) -> float:
    start = time.monotonic()
    status, _, body = server.request(path, timeout=10)
    assert status == 200, (status, body[:200])
    return time.monotonic() - start


@pytest.fixture
def sockets() -> Iterator[list[socket.socket]]:
    """Client sockets a test holds open; all closed at its end."""
    held: list[socket.socket] = []
    yield held
    for s in held:
        s.close()


def test_one_long_request_costs_one_thread_and_no_cpu(
    start_server: Callable[..., LiveServer], sockets: list[socket.socket]
) -> None:
    server = start_server("echo")
    pid = server.proc.pid
    long = server.raw_socket(timeout=30)
    sockets.append(long)
    long.sendall(b"GET /block HTTP/1.1\r\nHost: t\r\n\r\n")
    assert _wait_until(lambda: {"method": "GET", "path": "/block"} in server.calls(), 10)
    time.sleep(0.3)  # past promote_after: the poller has moved to another thread
    samples, cpu_before, start = [], _cpu_seconds(pid), time.monotonic()
    while time.monotonic() - start < 2.0:
        samples.append(_threads(pid))
        time.sleep(0.1)
    cpu = _cpu_seconds(pid) - cpu_before
    wall = time.monotonic() - start
    # the monitor (main thread), the poller's thread and the one in the app (+1 spare)
    assert max(samples) <= 4, samples
    assert max(samples) == min(samples), samples
    assert cpu <= 0.1 * wall, f"{cpu:.2f} s of CPU in {wall:.2f} s while idle"
    assert server.json("/release") == {"released": True}
    assert read_response(long, bytearray())[2] == b'{"released": true}'


def _trickle(peers: list[socket.socket], stop: threading.Event, pause: float) -> None:
    """One byte to each peer every ``pause`` seconds (send errors: that peer is done)."""
    live = list(peers)
    while live and not stop.wait(pause):
        for s in list(live):
            try:
                s.send(b"a")
            except OSError:
                live.remove(s)


def test_prompt_answers_while_300_slow_peers_are_connected(
    start_server: Callable[..., LiveServer], sockets: list[socket.socket]
) -> None:
    """140 heads and 140 small bodies trickling in, 20 responses of 4 MiB nobody
    reads (20: each stalled one holds ~3 MiB of kernel buffers on loopback)."""
    server = start_server("echo")
    pid = server.proc.pid
    tricklers = []
    for i in range(140):
        head = server.raw_socket()
        head.sendall(f"GET /slow-head-{i} HTTP/1.1\r\nHost: t\r\nX-Slow: ".encode())
        body = server.raw_socket()
        body.sendall(
            f"POST /slow-body-{i} HTTP/1.1\r\nHost: t\r\nContent-Length: 1000\r\n\r\na".encode()
        )
        sockets.extend((head, body))
        tricklers.extend((head, body))
    for _ in range(20):
        reader = socket.socket()
        sockets.append(reader)
        reader.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        reader.settimeout(10)
        reader.connect((server.host, server.port))
        reader.sendall(b"GET /big?mb=4 HTTP/1.1\r\nHost: t\r\n\r\n")
    stop = threading.Event()
    feeder = threading.Thread(target=_trickle, args=(tricklers, stop, 0.3))
    feeder.start()
    try:
        time.sleep(1.0)  # a few trickle rounds; far from every default timeout
        latencies = [_timed_get(server, f"/meanwhile-{i}") for i in range(5)]
        start = time.monotonic()
        data = server.json("/posted", method="POST", body=b"p" * 5000, timeout=10)
        latencies.append(time.monotonic() - start)
        threads = _threads(pid)
        unanswered = [
            s for s in tricklers if not select.select([s], [], [], 0)[0]
        ]  # nobody was refused or cut in the meantime
    finally:
        stop.set()
        feeder.join(10)
    assert data["body_length"] == 5000
    assert max(latencies) < 2.0, latencies
    assert threads <= 8, f"{threads} threads for 300 slow peers"
    assert len(unanswered) == len(tricklers)


def test_out_of_file_descriptors_backs_off_and_recovers(
    start_server: Callable[..., LiveServer], sockets: list[socket.socket]
) -> None:
    """RLIMIT_NOFILE=64 and 100 clients holding partial heads: the server pauses
    accepting, writes a couple of log lines, idles, and serves again once the
    clients are gone."""
    server = start_server("echo", rlimit_nofile=64, server_attrs={"request_head_timeout": 60.0})
    pid = server.proc.pid
    mark = server.log_mark()
    for i in range(100):
        s = server.raw_socket(timeout=10)
        sockets.append(s)
        s.sendall(f"GET /held-{i} HTTP/1.1\r\nHost: t\r\n".encode())
    _wait_until(lambda: bool(_other_lines(server.log(since=mark))), 5)
    cpu_before, start = _cpu_seconds(pid), time.monotonic()
    time.sleep(2.0)  # the episode goes on: measure what it costs
    cpu = _cpu_seconds(pid) - cpu_before
    wall = time.monotonic() - start
    during = _other_lines(server.log(since=mark))
    assert cpu <= 0.25 * wall, f"{cpu:.2f} s of CPU in {wall:.2f} s out of descriptors"
    assert 1 <= len(during) <= 3, during[:20]
    for s in sockets:
        s.close()
    sockets.clear()
    closed = time.monotonic()
    recovered = None
    while time.monotonic() - closed < 15:
        try:
            if server.request("/after", timeout=2)[0] == 200:
                recovered = time.monotonic() - closed
                break
        except OSError:
            time.sleep(0.1)
    assert recovered is not None and recovered <= 5.0, recovered
    assert server.proc.poll() is None
    assert len(_other_lines(server.log(since=mark))) <= 3, _other_lines(server.log(since=mark))
