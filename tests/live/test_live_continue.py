"""``Expect: 100-continue`` (RFC 9110 §10.1.1): the interim response is sent only to an
HTTP/1.1 client whose body the application reads, before the client sends that body."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import socket
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
from live_helpers import LiveServer, read_response, recv_until_closed

pytestmark = [pytest.mark.live, pytest.mark.timeout(120)]

CURL = shutil.which("curl")


@pytest.fixture(scope="module")
def server(server_on: Callable[..., LiveServer]) -> LiveServer:
    return server_on()


def _read_interim(sock: socket.socket) -> bytes:
    """The interim response, read a byte at a time (nothing past it)."""
    interim = b""
    while not interim.endswith(b"\r\n\r\n"):
        chunk = sock.recv(1)
        assert chunk, interim
        interim += chunk
    return interim


@pytest.mark.parametrize(
    ("framing", "body", "expected"),
    [
        ("Content-Length: 11", b"hello world", "hello world"),
        ("Transfer-Encoding: chunked", b"3\r\nabc\r\n0\r\n\r\n", "abc"),
    ],
    ids=["content-length", "chunked"],
)
def test_continue_sent_when_the_app_reads(
    server: LiveServer, framing: str, body: bytes, expected: str
) -> None:
    """100 Continue comes only when the app reads the body, before the client sends it."""
    with server.raw_socket() as sock:
        sock.sendall(
            b"POST /upload HTTP/1.1\r\nHost: t\r\n%s\r\nExpect: 100-continue\r\n\r\n"
            % framing.encode()
        )
        assert _read_interim(sock) == b"HTTP/1.1 100 Continue\r\n\r\n"
        sock.sendall(body)
        status, _, data = read_response(sock, bytearray())
    assert status == b"HTTP/1.1 200 OK"
    assert json.loads(data)["body"] == expected


def test_continue_not_sent_when_body_unread(server: LiveServer) -> None:
    with server.raw_socket() as sock:
        sock.sendall(
            b"POST /noread HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n"
        )
        buf = bytearray()
        status, _, body = read_response(sock, buf)
        assert (status, body) == (b"HTTP/1.1 200 OK", b"ignored")


def test_continue_not_sent_to_http10(server: LiveServer) -> None:
    with server.raw_socket() as sock:
        sock.sendall(
            b"POST /upload HTTP/1.0\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\nhello"
        )
        response = recv_until_closed(sock)
    assert b"100 Continue" not in response
    assert response.startswith(b"HTTP/1.1 200 OK\r\n")
    assert json.loads(response.partition(b"\r\n\r\n")[2])["body"] == "hello"


@pytest.mark.skipif(CURL is None, reason="curl is not installed (apt-get install curl)")
def test_curl_chunked_upload_waits_for_continue(server: LiveServer, tmp_path: Path) -> None:
    """A real client that waits for the interim response: curl, a chunked 100 kB upload."""
    assert CURL is not None
    payload = os.urandom(100_000)
    (tmp_path / "payload").write_bytes(payload)
    proc = subprocess.run(
        [
            CURL, "--silent", "--show-error", "--max-time", "20", "--verbose",
            "-H", "Transfer-Encoding: chunked",
            "-H", "Expect: 100-continue",
            "--data-binary", f"@{tmp_path / 'payload'}",
            f"{server.url}/chunked",
        ],
        capture_output=True,
        timeout=60,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert b"< HTTP/1.1 100 Continue" in proc.stderr
    data = json.loads(proc.stdout)
    assert data["input_terminated"] is True
    assert data["body_sha256"] == hashlib.sha256(payload).hexdigest()
