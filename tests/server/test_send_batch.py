"""The engine's send batch: responses the fast path keeps (DEFER) while a poll
batch is served go out after it, to the right connections, and never wait for a
slow request that follows them in the batch.

The byte-for-byte equivalence of a kept response with one sent at once is in
``test_fast_path.py`` (every scenario runs both ways); these tests are about the
engine: who sends the kept responses, and when.
"""

from __future__ import annotations

import socket
import threading
import time
from types import ModuleType
from typing import Any

from server_helpers import Reader, Running

from fastserve._engine import SEND_BATCH, Engine, Lease
from fastserve.connection import DEFER, PARK, HTTPConnection
from fastserve.server import make_server

GET = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"


def path_app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
    """Answers with its own path, so a response that reached the wrong
    connection shows."""
    body = environ["PATH_INFO"].encode()
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]


def test_demoted_leader_hands_its_batch_over(server_parser: ModuleType) -> None:
    """A leader demoted while it holds kept responses: the next leader sends them
    (``orphans``), the old one's own flush then finds them sent and does nothing."""
    server = make_server("127.0.0.1", 0, path_app, threaded=True)
    engine = Engine(server)
    ours, client = socket.socketpair()
    client.settimeout(5)
    try:
        conn = HTTPConnection(server, ours, ("127.0.0.1", 40000))
        conn.defer = True
        state = conn._process(GET)
        if server_parser.__name__.endswith("_py"):
            assert state == PARK  # the pure-Python path sends at once
            assert Reader(client).response().body == b"/"
            return
        assert state == DEFER
        lease = Lease()
        lease.deferred.append(conn)
        engine.lease = lease
        with engine.lock:
            engine.demote()
        assert engine.orphans == [conn]
        engine._flush_orphans()  # what the next leader does first
        assert engine.orphans == []
        assert Reader(client).response().body == b"/"
        assert conn.parked
        engine._flush(lease.deferred)  # the demoted thread, back from its request
        assert lease.deferred == []
        client.setblocking(False)
        try:
            extra = client.recv(100)
        except BlockingIOError:
            extra = b"none"
        assert extra == b"none"  # not sent twice
    finally:
        ours.close()
        client.close()
        engine.close()
        server.server_close()


def test_many_connections_at_once(serve: Any) -> None:
    """Rounds of requests sent on many keep-alive connections at the same time
    (poll batches of several ready connections, more than SEND_BATCH): every
    connection gets its own response, in order."""
    running: Running = serve(path_app)
    count = SEND_BATCH * 2 + 3
    socks = [running.connect() for _ in range(count)]
    readers = [Reader(s) for s in socks]
    try:
        for round_ in range(20):
            for i, s in enumerate(socks):
                s.sendall(b"GET /%d/%d HTTP/1.1\r\nHost: x\r\n\r\n" % (i, round_))
            for i, reader in enumerate(readers):
                assert reader.response().body == b"/%d/%d" % (i, round_)
    finally:
        for s in socks:
            s.close()


def test_kept_response_does_not_wait_for_a_slow_request(serve: Any) -> None:
    """A fast response kept in a batch whose next request is slow goes out when the
    monitor moves the poller to another thread, not when the slow request ends."""
    slow_done = threading.Event()
    busy_started = threading.Event()

    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        path = environ["PATH_INFO"]
        if path == "/busy":  # holds the leader while the next two requests arrive
            busy_started.set()
            time.sleep(0.3)
        elif path == "/slow":
            time.sleep(3)
            slow_done.set()
        return path_app(environ, start_response)

    running: Running = serve(app, promote_after=0.5)
    busy, fast, slow = (running.connect(timeout=10) for _ in range(3))
    try:
        # warm the connections up (each served once), so the next requests are
        # keep-alive requests on known connections
        for s in (busy, fast, slow):
            s.sendall(GET)
        for s in (busy, fast, slow):
            assert Reader(s, timeout=10).response().body == b"/"
        busy.sendall(b"GET /busy HTTP/1.1\r\nHost: x\r\n\r\n")
        assert busy_started.wait(10)
        fast.sendall(b"GET /fast HTTP/1.1\r\nHost: x\r\n\r\n")
        time.sleep(0.05)
        slow.sendall(b"GET /slow HTTP/1.1\r\nHost: x\r\n\r\n")
        assert Reader(fast, timeout=10).response().body == b"/fast"
        assert not slow_done.is_set()
        assert Reader(busy, timeout=10).response().body == b"/busy"
        assert Reader(slow, timeout=10).response().body == b"/slow"
    finally:
        for s in (busy, fast, slow):
            s.close()
