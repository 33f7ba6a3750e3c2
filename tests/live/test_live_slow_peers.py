"""Slow peers: clients that trickle, pause, stall or read slowly, and long requests.

First what each sees: a head or body split anywhere still parses, a head that never
ends gets 408, a slow reader or a long request holds only its own request. Then
(issue 7) what they cost the server process as a whole - threads, CPU, file
descriptors - read from ``/proc``:

* one long request costs one thread, and the process idles while it waits;
* 300 slow peers (heads and bodies trickling in, responses nobody reads) hold no
  threads, and a plain request is answered promptly meanwhile;
* out of file descriptors, the server rests its listener (``accept_backoff``),
  logs a couple of lines at most, burns no CPU, and serves again once
  connections close.

For those the server is ``serve_live.py`` with ``server_attrs`` (class attributes
of ``BaseWSGIServer``) and ``rlimit_nofile``; every such test starts its own
server, so their counts do not mix. Linux only (``/proc``).
"""

from __future__ import annotations

import json
import os
import re
import select
import socket
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from live_apps import echo
from live_helpers import LiveServer, read_response, recv_until_closed

from fastserve import serving

pytestmark = [pytest.mark.live, pytest.mark.timeout(120)]

linux_proc = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/<pid>")

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


def _wait_settled(sample: Callable[[], int], timeout: float = 10) -> None:
    """Wait until ``sample()`` gives the same value five times in a row, 0.05 s apart."""
    deadline = time.monotonic() + timeout
    values = [sample()]
    while len(values) < 5 or len(set(values[-5:])) > 1:
        assert time.monotonic() < deadline, f"not settled within {timeout} s: {values}"
        time.sleep(0.05)
        values.append(sample())


def _timed_get(server: LiveServer, path: str) -> float:
    start = time.monotonic()
    status, _, body = server.request(path, timeout=10)
    assert status == 200, (status, body[:200])
    return time.monotonic() - start


@pytest.fixture(scope="module")
def server(server_on: Callable[..., LiveServer]) -> LiveServer:
    return server_on()


def _send_in_pieces(sock: socket.socket, pieces: list[bytes], pause: float = 0.1) -> None:
    """Each piece in its own segment, a pause between them (the pause shapes the traffic;
    nothing waits on it)."""
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    for piece in pieces:
        sock.sendall(piece)
        time.sleep(pause)


def test_body_arrives_in_pieces(server: LiveServer) -> None:
    with server.raw_socket() as sock:
        _send_in_pieces(
            sock,
            [
                b"POST /slow-body HTTP/1.1\r\nHost: t\r\nContent-",
                b"Length: 10\r\n\r\nhello",
                b"world",
            ],
        )
        data = json.loads(read_response(sock, bytearray())[2])
    assert data["body"] == "helloworld"


def test_chunks_split_anywhere(server: LiveServer) -> None:
    """Chunk-size lines, data and CRLFs cut across sends (and a pause in each)."""
    with server.raw_socket() as sock:
        _send_in_pieces(
            sock,
            [
                b"POST /slow-chunks HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n5",
                b"\r\nhel",
                b"lo\r",
                b"\n6\r\n world\r\n0",
                b"\r\n",
                b"\r\n",
            ],
        )
        data = json.loads(read_response(sock, bytearray())[2])
    assert data["body"] == "hello world"


class _QuickTimeouts(serving.ThreadedWSGIServer):
    request_head_timeout = 0.5
    keep_alive_timeout = 0.5


def test_incomplete_head_gets_408(in_process_server: Callable[..., Any]) -> None:
    server = in_process_server(_QuickTimeouts("127.0.0.1", 0, echo))
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(b"GET /slow HTTP/1.1\r\nHost: t\r\n")  # never finished
        response = recv_until_closed(sock)
    assert response.startswith(b"HTTP/1.1 408 Request Timeout\r\n")
    assert b"\r\nConnection: close\r\n" in response


def test_slow_request_does_not_block_others(server: LiveServer) -> None:
    """threaded=True: a request holding its thread (a long poll) leaves the others served."""
    blocked: list[object] = []

    def long_poll() -> None:
        blocked.append(server.json("/block", timeout=60))

    t = threading.Thread(target=long_poll)
    t.start()
    try:
        conn = server.connect()
        try:
            for i in range(5):
                conn.request("GET", f"/meanwhile/{i}")
                assert json.loads(conn.getresponse().read())["path"] == f"/meanwhile/{i}"
        finally:
            conn.close()
        assert blocked == []  # still held
    finally:
        server.json("/release")
        t.join(30)
    assert blocked == [{"released": True}]


def test_slow_reader_does_not_block_others(server: LiveServer) -> None:
    """A client that stops reading a large response holds only its own request."""
    with socket.socket() as slow:
        # a small window and a response far larger than the socket buffers: the server's
        # send blocks until this client reads
        slow.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
        slow.settimeout(30)
        slow.connect((server.host, server.port))
        slow.sendall(b"GET /big?mb=64 HTTP/1.1\r\nHost: t\r\n\r\n")
        # the response has started: the server is sending what this client does not read
        assert select.select([slow], [], [], 20)[0], "no response started"
        results: list[object] = []

        def others() -> None:
            try:
                results.extend(server.json(f"/meanwhile-{i}")["path"] for i in range(5))
            except Exception as e:  # reported below
                results.append(e)

        t = threading.Thread(target=others)
        t.start()
        t.join(20)
        assert results == [f"/meanwhile-{i}" for i in range(5)]
        _, headers, body = read_response(slow, bytearray())
    assert len(body) == 64 * 1024 * 1024 and body.count(b"x") == len(body)


# -- what slow peers cost the process (/proc) -----------------------------------------------


@pytest.fixture
def sockets() -> Iterator[list[socket.socket]]:
    """Client sockets a test holds open; all closed at its end."""
    held: list[socket.socket] = []
    yield held
    for s in held:
        s.close()


@linux_proc
def test_one_long_request_costs_one_thread_and_no_cpu(
    start_server: Callable[..., LiveServer], sockets: list[socket.socket]
) -> None:
    server = start_server("echo")
    pid = server.proc.pid
    long = server.raw_socket(timeout=30)
    sockets.append(long)
    long.sendall(b"GET /block HTTP/1.1\r\nHost: t\r\n\r\n")
    assert _wait_until(lambda: {"method": "GET", "path": "/block"} in server.calls(), 10)
    # past promote_after the poller moves to another thread: wait until the count settles
    _wait_settled(lambda: _threads(pid))
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


def _trickle(
    peers: list[socket.socket], stop: threading.Event, pause: float, rounds: list[int]
) -> None:
    """One byte to each peer every ``pause`` seconds (send errors: that peer is done);
    ``rounds[0]`` counts the rounds sent."""
    live = list(peers)
    while live and not stop.wait(pause):
        for s in list(live):
            try:
                s.send(b"a")
            except OSError:
                live.remove(s)
        rounds[0] += 1


@linux_proc
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
        sockets.append(head)
        head.sendall(f"GET /slow-head-{i} HTTP/1.1\r\nHost: t\r\nX-Slow: ".encode())
        body = server.raw_socket()
        sockets.append(body)
        body.sendall(
            f"POST /slow-body-{i} HTTP/1.1\r\nHost: t\r\nContent-Length: 1000\r\n\r\na".encode()
        )
        tricklers.extend((head, body))
    for _ in range(20):
        reader = socket.socket()
        sockets.append(reader)
        reader.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        reader.settimeout(10)
        reader.connect((server.host, server.port))
        reader.sendall(b"GET /big?mb=4 HTTP/1.1\r\nHost: t\r\n\r\n")
    stop = threading.Event()
    rounds = [0]
    feeder = threading.Thread(target=_trickle, args=(tricklers, stop, 0.3, rounds))
    feeder.start()
    try:
        # a few trickle rounds (about a second); far from every default timeout
        assert _wait_until(lambda: rounds[0] >= 3, 20), rounds
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


@linux_proc
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
    assert _wait_until(lambda: bool(_other_lines(server.log(since=mark))), 10), server.log(mark)
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
