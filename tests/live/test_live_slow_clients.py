"""Clients that trickle, pause or read slowly, and long keep-alive runs."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Callable

import pytest
from live_helpers import LiveServer, read_response, recv_until_closed

pytestmark = [pytest.mark.live, pytest.mark.timeout(120)]


@pytest.fixture(scope="module")
def server(start_server: Callable[..., LiveServer]) -> LiveServer:
    return start_server("echo")


def _send_in_pieces(sock: socket.socket, pieces: list[bytes], pause: float = 0.1) -> None:
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


def test_expect_continue_with_chunked_body(server: LiveServer) -> None:
    with server.raw_socket() as sock:
        sock.sendall(
            b"POST /continue-chunked HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n"
            b"Expect: 100-continue\r\n\r\n"
        )
        interim = b""
        while not interim.endswith(b"\r\n\r\n"):
            interim += sock.recv(1)
        assert interim == b"HTTP/1.1 100 Continue\r\n\r\n"
        sock.sendall(b"3\r\nabc\r\n0\r\n\r\n")
        data = json.loads(read_response(sock, bytearray())[2])
    assert data["body"] == "abc"


def test_next_request_arrives_while_the_app_runs(server: LiveServer) -> None:
    """The second request is sent while the first is still in the app: both answered, in order."""
    with server.raw_socket(timeout=60) as sock:
        sock.sendall(b"GET /block HTTP/1.1\r\nHost: t\r\n\r\n")
        time.sleep(0.2)
        sock.sendall(b"GET /queued HTTP/1.1\r\nHost: t\r\n\r\n")
        server.json("/release")
        buf = bytearray()
        first = json.loads(read_response(sock, buf)[2])
        second = json.loads(read_response(sock, buf)[2])
    assert first == {"released": True}
    assert second["path"] == "/queued"


def test_client_connection_close(server: LiveServer) -> None:
    with server.raw_socket() as sock:
        sock.sendall(b"GET /bye HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
        response = recv_until_closed(sock)
    head = response.partition(b"\r\n\r\n")[0].split(b"\r\n")
    assert head[0] == b"HTTP/1.1 200 OK"
    assert b"Connection: close" in head


def test_thousand_requests_on_one_connection(server: LiveServer) -> None:
    conn = server.connect()
    try:
        ports = set()
        for i in range(1000):
            conn.request("GET", f"/n/{i}")
            data = json.loads(conn.getresponse().read())
            assert data["path"] == f"/n/{i}"
            ports.add(data["remote_port"])
    finally:
        conn.close()
    assert len(ports) == 1


@pytest.mark.parametrize(
    "size_line",
    [b"ffffffffffffffffffffffff", b"-5", b"0x5", b"5 5"],
    ids=["overflow", "negative", "hex-prefix", "space-inside"],
)
def test_bad_chunk_size_line(server: LiveServer, size_line: bytes) -> None:
    """Chunk sizes outside RFC 9112 §7.1's ``1*HEXDIG``: refused with a 4xx, then a close."""
    with server.raw_socket() as sock:
        sock.sendall(
            b"POST /bad-size HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n"
            + size_line
            + b"\r\nhello\r\n0\r\n\r\n"
        )
        response = recv_until_closed(sock)
    status = int(response.split(b" ", 2)[1])
    assert status in (400, 413), response[:200]
    assert b"\r\nConnection: close\r\n" in response


def test_slow_reader_does_not_block_others(server: LiveServer) -> None:
    """A client that stops reading a large response holds only its own request."""
    with socket.socket() as slow:
        # a small window and a response far larger than the socket buffers: the server's
        # send blocks until this client reads
        slow.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
        slow.settimeout(30)
        slow.connect((server.host, server.port))
        slow.sendall(b"GET /big?mb=64 HTTP/1.1\r\nHost: t\r\n\r\n")
        time.sleep(0.3)
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
