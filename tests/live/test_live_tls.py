"""TLS clients against fastserve: ad-hoc and dev certificates, keep-alive, wrong protocol."""

from __future__ import annotations

import json
import socket
import ssl
import threading
from collections.abc import Callable

import pytest
import requests
from live_helpers import LiveServer

from fastserve._tls import make_ssl_devcert

pytestmark = [pytest.mark.live, pytest.mark.timeout(120)]


@pytest.fixture(scope="module")
def adhoc(start_server: Callable[..., LiveServer]) -> LiveServer:
    return start_server("echo", ssl_context="adhoc")


@pytest.fixture(scope="module")
def devcert(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, str]:
    return make_ssl_devcert(str(tmp_path_factory.mktemp("devcert") / "dev"), host="localhost")


@pytest.fixture(scope="module")
def devcert_server(start_server: Callable[..., LiveServer], devcert: tuple[str, str]) -> LiveServer:
    return start_server("echo", ssl_context=list(devcert))


def test_adhoc_https(adhoc: LiveServer) -> None:
    conn = adhoc.connect()
    try:
        ports = set()
        for i in range(3):
            conn.request("GET", f"/tls/{i}")
            response = conn.getresponse()
            data = json.loads(response.read())
            assert data["scheme"] == "https" and data["path"] == f"/tls/{i}"
            ports.add(data["remote_port"])
        cert = conn.sock.getpeercert(binary_form=True)  # type: ignore[union-attr]
    finally:
        conn.close()
    assert len(ports) == 1  # keep-alive over TLS
    assert cert


@pytest.mark.filterwarnings("ignore::urllib3.exceptions.InsecureRequestWarning")
def test_adhoc_requests_session(adhoc: LiveServer) -> None:
    with requests.Session() as session:
        # verify per request: REQUESTS_CA_BUNDLE in the environment overrides session.verify
        first = session.post(f"{adhoc.url}/a", data=b"x" * 100_000, verify=False, timeout=10).json()
        second = session.get(f"{adhoc.url}/b", verify=False, timeout=10).json()
    assert first["body_length"] == 100_000
    assert first["remote_port"] == second["remote_port"]


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


def test_plain_http_on_tls_port(adhoc: LiveServer) -> None:
    """Plain HTTP to the TLS port gets nowhere, logs no traceback, and the server keeps serving."""
    mark = adhoc.log_mark()
    with adhoc.raw_socket() as sock:
        sock.sendall(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n")
        try:
            reply = sock.recv(65536)
        except ConnectionResetError:
            reply = b""
    assert not reply.startswith(b"HTTP/1.1 200")
    assert adhoc.json("/after-plain")["scheme"] == "https"
    assert "Traceback" not in adhoc.log(since=mark)


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
