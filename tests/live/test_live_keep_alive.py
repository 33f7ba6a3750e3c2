"""Keep-alive and pipelining: when a connection carries the next request, when it closes.

Sequential requests share one connection whatever the client (``http.client``,
``requests``, ``urllib3``, curl) and transport (TCP, TLS, unix socket);
pipelined requests are answered in order; HTTP/1.0 gets keep-alive only when
it asks; ``Connection: close`` from either side ends the connection; idle
connections are parked without a thread each and closed after
``keep_alive_timeout``. Also the CI's live smoke test on other Pythons.
"""

from __future__ import annotations

import http.client
import json
import os
import socket
import threading
from collections.abc import Callable
from typing import Any

import pytest
from live_apps import echo
from live_clients import TRANSPORTS, Request, client_params, exchange
from live_helpers import LiveServer, read_response, recv_until_closed, wait_until

from fastserve import serving

pytestmark = [pytest.mark.live, pytest.mark.timeout(120)]


@pytest.fixture(scope="module")
def server(server_on: Callable[..., LiveServer]) -> LiveServer:
    return server_on()


@pytest.mark.parametrize(("transport", "client"), client_params(("tcp", "tls", "unix")))
def test_sequential_requests_share_one_connection(
    server_on: Callable[..., LiveServer], transport: str, client: str
) -> None:
    """GETs and POSTs with bodies, one after another: one connection carries them all."""
    server = server_on(**TRANSPORTS[transport])
    upload = os.urandom(100_000)
    sequence = [
        Request("POST", f"/ka/{i}", body=upload[: 1000 * i])
        if i % 2
        else Request("GET", f"/ka/{i}")
        for i in range(5)
    ]
    responses = exchange(client, server, sequence)
    data = [r.json() for r in responses]
    assert [(r.status, r.version) for r in responses] == [(200, "HTTP/1.1")] * 5
    assert all(r.headers.get("connection") != "close" for r in responses)
    assert [d["path"] for d in data] == [f"/ka/{i}" for i in range(5)]
    assert [d["body_length"] for d in data] == [1000 * i if i % 2 else 0 for i in range(5)]
    if responses[0].new_connection is not None:  # the client says when it connects
        assert [r.new_connection for r in responses] == [True] + [False] * 4
    assert {d["scheme"] for d in data} == {"https" if transport == "tls" else "http"}
    if transport == "unix":
        assert {(d["remote_addr"], d["remote_port"]) for d in data} == {("<local>", 0)}
        assert {d["headers"]["HTTP_HOST"] for d in data} == {"localhost"}
    else:
        assert len({d["remote_port"] for d in data}) == 1


def test_thousand_requests_on_one_connection(server: LiveServer) -> None:
    conn = server.connect()
    try:
        ports = set()
        for i in range(1000):
            conn.request("GET", f"/n/{i}")
            response = conn.getresponse()
            data = json.loads(response.read())
            assert data["path"] == f"/n/{i}" and not response.will_close
            ports.add(data["remote_port"])
    finally:
        conn.close()
    assert len(ports) == 1


def test_concurrent_keep_alive_clients(server: LiveServer) -> None:
    """16 clients x 20 requests each on their own connections: every answer is the right one."""
    errors: list[str] = []

    def client(n: int) -> None:
        conn = server.connect(timeout=20)
        try:
            for i in range(20):
                payload = f"client {n} request {i}".encode() * (i + 1)
                conn.request("POST", f"/c/{n}/{i}", body=payload)
                data = json.loads(conn.getresponse().read())
                if data["path"] != f"/c/{n}/{i}" or data["body_length"] != len(payload):
                    errors.append(f"{n}/{i}: {data['path']} {data['body_length']}")
        except Exception as e:  # collected and reported below
            errors.append(f"{n}: {e!r}")
        finally:
            conn.close()

    threads = [threading.Thread(target=client, args=(n,)) for n in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not any(t.is_alive() for t in threads)
    assert errors == []


# -- pipelining ------------------------------------------------------------------------


def test_pipelined_requests_answered_in_order(server: LiveServer) -> None:
    """Three requests in one send: three responses, in request order, on one connection."""
    requests = (
        b"".join(b"GET /pipe/%d HTTP/1.1\r\nHost: t\r\n\r\n" % i for i in range(3))
        + b"POST /pipe/post HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n\r\nhello"
    )
    with server.raw_socket() as sock:
        sock.sendall(requests)
        buf = bytearray()
        paths, ports = [], set()
        for _ in range(4):
            status, headers, body = read_response(sock, buf)
            assert status == b"HTTP/1.1 200 OK"
            assert headers.get("connection") != "close"
            data = json.loads(body)
            paths.append(data["path"])
            ports.add(data["remote_port"])
        assert data["body"] == "hello"
    assert paths == ["/pipe/0", "/pipe/1", "/pipe/2", "/pipe/post"]
    assert len(ports) == 1


def test_pipelined_byte_by_byte(server: LiveServer) -> None:
    """Two requests trickled one byte at a time still get two ordered responses."""
    data = b"GET /trickle/a HTTP/1.1\r\nHost: t\r\n\r\nGET /trickle/b HTTP/1.1\r\nHost: t\r\n\r\n"
    with server.raw_socket() as sock:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        for i in range(len(data)):
            sock.sendall(data[i : i + 1])
        buf = bytearray()
        first = json.loads(read_response(sock, buf)[2])
        second = json.loads(read_response(sock, buf)[2])
    assert [first["path"], second["path"]] == ["/trickle/a", "/trickle/b"]


def test_pipelined_streaming_responses_keep_order(server: LiveServer) -> None:
    with server.raw_socket() as sock:
        sock.sendall(
            b"GET /stream HTTP/1.1\r\nHost: t\r\n\r\n"
            b"GET /first-after HTTP/1.1\r\nHost: t\r\n\r\n"
            b"GET /stream HTTP/1.1\r\nHost: t\r\n\r\n"
            b"GET /second-after HTTP/1.1\r\nHost: t\r\n\r\n"
        )
        buf = bytearray()
        bodies = [read_response(sock, buf)[2] for _ in range(4)]
    assert bodies[0] == bodies[2] == b"0\n1\n2\n3\n4\n"
    assert [json.loads(bodies[i])["path"] for i in (1, 3)] == ["/first-after", "/second-after"]


def test_next_request_arrives_while_the_app_runs(server: LiveServer) -> None:
    """The second request is sent while the first is still in the app: both answered, in order."""
    with server.raw_socket(timeout=60) as sock:
        sock.sendall(b"GET /block HTTP/1.1\r\nHost: t\r\n\r\n")
        wait_until(
            lambda: {"method": "GET", "path": "/block"} in server.calls(), "/block in the app"
        )
        sock.sendall(b"GET /queued HTTP/1.1\r\nHost: t\r\n\r\n")
        server.json("/release")
        buf = bytearray()
        first = json.loads(read_response(sock, buf)[2])
        second = json.loads(read_response(sock, buf)[2])
    assert first == {"released": True}
    assert second["path"] == "/queued"


# -- when the connection closes ------------------------------------------------------------


def test_http10_keep_alive_when_asked(server: LiveServer) -> None:
    with server.raw_socket() as sock:
        sock.sendall(b"GET /a HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
        buf = bytearray()
        status, headers, body = read_response(sock, buf)
        assert json.loads(body)["path"] == "/a"
        assert headers.get("connection", "").lower() == "keep-alive"
        sock.sendall(b"GET /b HTTP/1.0\r\n\r\n")
        status, headers, body = read_response(sock, buf)
        assert json.loads(body)["path"] == "/b"
        assert headers.get("connection") == "close"
        assert buf + recv_until_closed(sock) == b""


def test_client_connection_close(server: LiveServer) -> None:
    with server.raw_socket() as sock:
        sock.sendall(b"GET /bye HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
        response = recv_until_closed(sock)
    head = response.partition(b"\r\n\r\n")[0].split(b"\r\n")
    assert head[0] == b"HTTP/1.1 200 OK"
    assert b"Connection: close" in head


def test_app_connection_close_is_honoured(server: LiveServer) -> None:
    with server.raw_socket() as sock:
        sock.sendall(
            b"GET /app-close HTTP/1.1\r\nHost: t\r\n\r\nGET /never HTTP/1.1\r\nHost: t\r\n\r\n"
        )
        buf = bytearray()
        _, headers, body = read_response(sock, buf)
        assert (headers["connection"], body) == ("close", b"bye")
        assert buf + recv_until_closed(sock) == b""


def test_request_then_half_close(server: LiveServer) -> None:
    """A client that shuts down its sending side after the request (``nc -N``) gets the answer."""
    with server.raw_socket() as sock:
        sock.sendall(b"GET /half-closed HTTP/1.1\r\nHost: t\r\n\r\n")
        sock.shutdown(socket.SHUT_WR)
        response = recv_until_closed(sock)
    assert response.startswith(b"HTTP/1.1 200 OK\r\n")
    assert json.loads(response.partition(b"\r\n\r\n")[2])["path"] == "/half-closed"


def test_idle_keep_alive_connections_hold_no_threads(server: LiveServer) -> None:
    """Idle keep-alive connections are parked in the poller, not one thread each."""
    baseline = server.json("/threads")["threads"]
    conns: list[http.client.HTTPConnection] = []
    try:
        for i in range(200):
            conn = server.connect()
            conns.append(conn)
            conn.request("GET", f"/idle/{i}")
            response = conn.getresponse()
            response.read()
            assert not response.will_close
        threads = server.json("/threads")["threads"]
        # every connection is still open and usable
        conns[0].request("GET", "/idle/again")
        assert json.loads(conns[0].getresponse().read())["path"] == "/idle/again"
    finally:
        for conn in conns:
            conn.close()
    assert threads < baseline + 50, (baseline, threads)


class _QuickTimeouts(serving.ThreadedWSGIServer):
    request_head_timeout = 0.5
    keep_alive_timeout = 0.5


def test_idle_keep_alive_connection_is_closed(
    in_process_server: Callable[..., Any],
) -> None:
    """After ``keep_alive_timeout`` without a request, the server closes the connection."""
    server = in_process_server(_QuickTimeouts("127.0.0.1", 0, echo))
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(b"GET /then-idle HTTP/1.1\r\nHost: t\r\n\r\n")
        response = recv_until_closed(sock)  # the response, then EOF once idle too long
    assert response.startswith(b"HTTP/1.1 200 OK\r\n")
    assert response.endswith(b"}")
