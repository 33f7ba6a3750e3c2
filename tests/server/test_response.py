"""Responses through a running server: a stalled response parked in the
engine's poller while others are served, and ``passthrough_errors`` (which
ends ``serve_forever`` or a thread). Framing and the WSGI response protocol
are tested without a listener in ``test_conn_response.py``."""

from __future__ import annotations

import socket
import time
from typing import Any

import pytest
from server_helpers import Reader, recv_all

pytestmark = pytest.mark.live


BIG_PIECE = bytes(range(256)) * 256  # 64 KiB


def get(srv: Any, path: str = "/") -> Any:
    with srv.connect() as s:
        s.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
        return Reader(s).response()


def _big_list_app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
    start_response("200 OK", [])
    return [BIG_PIECE] * 128  # 8 MiB: more than the kernel's send buffer takes


def _stalled_client(srv: Any) -> socket.socket:
    sock = srv.connect()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    return sock


def test_a_client_not_reading_a_large_list_holds_no_thread(serve: Any) -> None:
    srv = serve(_big_list_app)
    with _stalled_client(srv):
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:  # the response waits in the poller
            engine = srv.server._engine  # None until serve_forever() has begun
            if engine is None:
                time.sleep(0.01)
                continue
            with engine.lock:
                waiting = [c for c in engine.conns.values() if c.writing]
                if waiting and all(c.parked for c in waiting):
                    break
            time.sleep(0.01)
        else:
            raise AssertionError("the stalled response still holds a thread")
        for _ in range(3):  # others are served meanwhile
            resp = get(srv)
            assert resp.status == 200 and len(resp.body) == len(BIG_PIECE) * 128


def test_passthrough_errors_reraise_on_the_plain_server(serve: Any) -> None:
    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        raise KeyError("through")

    srv = serve(app, threaded=False, passthrough_errors=True)
    with srv.connect() as s:
        s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        assert recv_all(s, timeout=5) == b""
    srv.thread.join(5)
    assert isinstance(srv.error, KeyError)
    assert srv.server.socket.fileno() == -1  # serve_forever's finally closed the server


def test_passthrough_errors_on_a_threaded_server_keep_serving(serve: Any) -> None:
    import threading as _threading

    seen: list[BaseException] = []

    def hook(args: Any) -> None:
        seen.append(args.exc_value)

    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        if environ["PATH_INFO"] == "/crash":
            raise KeyError("through")
        start_response("200 OK", [])
        return [b"alive"]

    old_hook = _threading.excepthook
    _threading.excepthook = hook
    try:
        srv = serve(app, passthrough_errors=True)
        with srv.connect() as s:
            s.sendall(b"GET /crash HTTP/1.1\r\nHost: x\r\n\r\n")
            assert recv_all(s, timeout=5) == b""
        with srv.connect() as s:
            s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            assert Reader(s).response().body == b"alive"
        # the client saw the close before the dying thread reached the hook
        deadline = time.monotonic() + 10
        while not seen and time.monotonic() < deadline:
            time.sleep(0.01)
    finally:
        _threading.excepthook = old_hook
    assert len(seen) == 1 and isinstance(seen[0], KeyError)
