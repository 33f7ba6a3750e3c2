"""TLS: ad-hoc and dev certificates, pipelining and large bodies over TLS, and the wrong
protocol on either port. (Keep-alive over TLS, with each client, is in
``test_live_keep_alive.py``; websockets over TLS in ``test_live_websocket.py``.)"""

from __future__ import annotations

import hashlib
import json
import os
import socket
import ssl
import threading
from collections.abc import Callable

import pytest
import requests
from live_helpers import LiveServer, insecure_client_context, read_response

from fastserve._tls import make_ssl_devcert

pytestmark = [pytest.mark.live, pytest.mark.timeout(120)]


@pytest.fixture(scope="module")
def adhoc(server_on: Callable[..., LiveServer]) -> LiveServer:
    return server_on(ssl_context="adhoc")


@pytest.fixture(scope="module")
def devcert(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, str]:
    return make_ssl_devcert(str(tmp_path_factory.mktemp("devcert") / "dev"), host="localhost")


@pytest.fixture(scope="module")
def devcert_server(server_on: Callable[..., LiveServer], devcert: tuple[str, str]) -> LiveServer:
    return server_on(ssl_context=list(devcert))


def test_devcert_verified_by_client(devcert_server: LiveServer, devcert: tuple[str, str]) -> None:
    ctx = ssl.create_default_context(cafile=devcert[0])
    with socket.create_connection(("127.0.0.1", devcert_server.port), timeout=10) as raw:
        with ctx.wrap_socket(raw, server_hostname="localhost") as tls:
            subject = dict(x[0] for x in tls.getpeercert()["subject"])  # type: ignore[index]
            tls.sendall(b"GET /verified HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
            response = b""
            while chunk := tls.recv(65536):
                response += chunk
    assert response.startswith(b"HTTP/1.1 200 OK\r\n")
    assert json.loads(response.partition(b"\r\n\r\n")[2])["scheme"] == "https"
    assert subject["commonName"] == "localhost"


def test_devcert_with_requests(devcert_server: LiveServer, devcert: tuple[str, str]) -> None:
    response = requests.get(
        f"https://localhost:{devcert_server.port}/req", verify=devcert[0], timeout=10
    )
    assert response.json()["scheme"] == "https"


def test_tls_pipelining_and_large_bodies(adhoc: LiveServer) -> None:
    upload = os.urandom(3 * 1024 * 1024)
    ctx = insecure_client_context()
    with socket.create_connection((adhoc.host, adhoc.port), timeout=20) as raw:
        with ctx.wrap_socket(raw) as tls:
            assert tls.getpeercert(binary_form=True)  # the ad-hoc certificate
            tls.sendall(
                b"GET /tls-a HTTP/1.1\r\nHost: t\r\n\r\nGET /big HTTP/1.1\r\nHost: t\r\n\r\n"
                b"POST /tls-up HTTP/1.1\r\nHost: t\r\nContent-Length: %d\r\n\r\n"
                % len(upload)
                + upload
            )
            buf = bytearray()
            first = json.loads(read_response(tls, buf)[2])  # type: ignore[arg-type]
            big = read_response(tls, buf)[2]  # type: ignore[arg-type]
            up = json.loads(read_response(tls, buf)[2])  # type: ignore[arg-type]
    assert first["path"] == "/tls-a" and first["scheme"] == "https"
    assert big == b"x" * (4 * 1024 * 1024)
    assert up["body_sha256"] == hashlib.sha256(upload).hexdigest()


def test_failed_handshakes_are_dropped_without_a_traceback(
    start_server: Callable[..., LiveServer],
) -> None:
    """A client that refuses the certificate, and plain HTTP sent to the TLS port: each
    connection is dropped (silently, as werkzeug does) and the server keeps serving. The
    server logs nothing for them, so the whole log is read once the server has stopped."""
    server = start_server("echo", ssl_context="adhoc")
    ctx = ssl.create_default_context()  # verifies: the self-signed certificate is refused
    with socket.create_connection((server.host, server.port), timeout=10) as raw:
        with pytest.raises(ssl.SSLCertVerificationError):
            ctx.wrap_socket(raw, server_hostname="localhost")
    assert server.json("/after-failed-handshake")["scheme"] == "https"
    with server.raw_socket() as sock:
        sock.sendall(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n")
        try:
            reply = sock.recv(65536)
        except ConnectionResetError:
            reply = b""
    assert not reply.startswith(b"HTTP/1.1 200")
    assert server.json("/after-plain")["scheme"] == "https"
    assert "Traceback" not in server.final_log()


def test_tls_client_on_plain_port(server_on: Callable[..., LiveServer]) -> None:
    """An HTTPS client talking to the plain port fails its handshake: its ClientHello is
    refused as a malformed request (400), logged as such, without a traceback."""
    server = server_on()
    mark = server.log_mark()
    ctx = ssl.create_default_context()
    with server.raw_socket() as sock:
        with pytest.raises(ssl.SSLError):
            ctx.wrap_socket(sock, server_hostname="localhost")
    log = server.wait_for_log("code 400, message", '" 400 -', since=mark)
    assert "Traceback" not in log
    assert server.json("/after-tls")["path"] == "/after-tls"


def test_silent_client_does_not_block_others(adhoc: LiveServer) -> None:
    """A client that connects and never sends a ClientHello must not stall the server
    (werkzeug's handshake in accept() does: flask#4841; fastserve's runs per
    connection, bounded by ``request_head_timeout``)."""
    with adhoc.raw_socket():
        result: list[object] = []

        def fetch() -> None:
            try:
                result.append(adhoc.json("/not-stalled", timeout=10)["path"])
            except Exception as e:  # reported below
                result.append(e)

        t = threading.Thread(target=fetch)
        t.start()
        t.join(15)
    assert result == ["/not-stalled"]
