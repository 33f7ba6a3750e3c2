"""How the server is run and where it listens: ``make_server``, the plain (non-threaded)
server's HTTP/1.0, pre-forked workers on every transport, werkzeug's own handler class,
IPv6 loopback, and a unix socket path left over by a crash.

(Every client on TCP, TLS and unix sockets: ``test_live_keep_alive.py``; SIGTERM and
Ctrl+C: ``test_live_graceful_stop.py``; ``SO_REUSEPORT`` workers: ``test_live_reuseport.py``;
``make_server`` in a thread of the test process: ``test_live_in_process.py``.)"""

from __future__ import annotations

import hashlib
import http.client
import json
import os
import shutil
import socket
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from live_clients import TRANSPORTS
from live_helpers import LiveServer

pytestmark = [pytest.mark.live, pytest.mark.timeout(120)]

TRANSPORT_PARAMS = [pytest.param(TRANSPORTS[t], id=t) for t in ("tcp", "unix", "tls")]


def test_make_server(start_server: Callable[..., LiveServer]) -> None:
    server = start_server("echo", mode="make_server")
    conn = server.connect()
    try:
        for i in range(3):
            conn.request("GET", f"/made/{i}")
            assert json.loads(conn.getresponse().read())["path"] == f"/made/{i}"
    finally:
        conn.close()


def test_non_threaded_server_speaks_http10_and_closes(
    start_server: Callable[..., LiveServer],
) -> None:
    """werkzeug's plain server: HTTP/1.0 status line, ``Connection: close``, close-delimited
    streaming."""
    server = start_server("echo", threaded=False)
    conn = server.connect()
    try:
        conn.request("GET", "/single")
        response = conn.getresponse()
        assert response.version == 10
        assert response.getheader("Connection") == "close"
        assert json.loads(response.read())["path"] == "/single"
        conn.request("GET", "/stream")  # http.client reconnects after the close
        response = conn.getresponse()
        assert response.getheader("Transfer-Encoding") is None
        assert response.read() == b"0\n1\n2\n3\n4\n"
    finally:
        conn.close()


@pytest.mark.parametrize("transport", TRANSPORT_PARAMS)
def test_prefork_workers(
    start_server: Callable[..., LiveServer], transport: dict[str, Any]
) -> None:
    """``processes=2``: HTTP/1.1 with keep-alive, bodies included, on every transport."""
    server = start_server("echo", threaded=False, processes=2, **transport)
    conn = server.connect()
    try:
        for i in range(4):
            conn.request("POST", f"/pf/{i}", body=b"z" * 1000 * i)
            response = conn.getresponse()
            data = json.loads(response.read())
            assert response.version == 11 and not response.will_close
            assert (data["path"], data["body_length"]) == (f"/pf/{i}", 1000 * i)
    finally:
        conn.close()


@pytest.mark.parametrize("transport", TRANSPORT_PARAMS)
def test_werkzeug_handler_subclass(
    start_server: Callable[..., LiveServer], transport: dict[str, Any]
) -> None:
    """werkzeug's own handler class (here a subclass that silences the access log) is the
    compatibility path: it closes every connection, and chunked uploads and streaming
    responses work through it."""
    server = start_server("echo", request_handler="werkzeug-quiet", **transport)
    mark = server.log_mark()
    payload = os.urandom(50_000)
    conn = server.connect()
    try:
        conn.request(
            "POST", "/wz/upload", body=iter([payload[:10], payload[10:]]), encode_chunked=True
        )
        response = conn.getresponse()
        data = json.loads(response.read())
        assert response.getheader("Connection") == "close"  # werkzeug's handler always closes
        conn.request("GET", "/stream")  # http.client reconnects
        streamed = conn.getresponse()
        assert streamed.getheader("Transfer-Encoding") == "chunked"
        assert streamed.read() == b"0\n1\n2\n3\n4\n"
    finally:
        conn.close()
    assert data["input_terminated"] is True
    assert data["body_sha256"] == hashlib.sha256(payload).hexdigest()
    assert data["scheme"] == ("https" if transport.get("ssl_context") else "http")
    log = server.final_log(since=mark)
    assert '"POST /wz/upload' not in log  # log_request overridden
    assert "Traceback" not in log


def _has_ipv6_loopback() -> bool:
    if not socket.has_ipv6:
        return False
    try:
        with socket.socket(socket.AF_INET6) as s:
            s.bind(("::1", 0))
        return True
    except OSError:
        return False


@pytest.mark.skipif(not _has_ipv6_loopback(), reason="no IPv6 loopback on this machine")
def test_ipv6_loopback(start_server: Callable[..., LiveServer]) -> None:
    server = start_server("echo", hostname="::1")
    conn = http.client.HTTPConnection("::1", server.port, timeout=10)
    try:
        conn.request("GET", "/v6")
        data = json.loads(conn.getresponse().read())
    finally:
        conn.close()
    assert data["remote_addr"] == "::1"
    assert data["headers"]["HTTP_HOST"] == f"[::1]:{server.port}"


def test_stale_unix_socket_file_is_replaced(start_server: Callable[..., LiveServer]) -> None:
    workdir = Path(tempfile.mkdtemp(prefix="fs-stale-"))  # short: sun_path holds 108 bytes
    try:
        sock_path = workdir / "stale.sock"
        with socket.socket(socket.AF_UNIX) as stale:
            stale.bind(str(sock_path))  # a socket file nobody listens on, as a crash leaves it
        server = start_server("echo", hostname=f"unix://{sock_path}")
        assert server.json("/after-stale")["path"] == "/after-stale"
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
