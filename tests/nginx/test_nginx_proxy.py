"""nginx, configured as ``docs/nginx.md`` says, in front of fastserve over TCP and a unix socket.

Requests reuse upstream connections (keep-alive), bodies arrive whole in both
directions, and werkzeug's ``ProxyFix`` gives the app the client's view from
nginx's ``X-Forwarded-*`` headers - a value the client forged included.
"""

from __future__ import annotations

import hashlib
import http.client
import json
from collections.abc import Iterator
from typing import Any

import pytest
from nginx_helpers import Fastserve, Nginx, Processes, documented_config, wait_for

pytestmark = [pytest.mark.live, pytest.mark.nginx, pytest.mark.timeout(120)]


@pytest.fixture(scope="module", params=["tcp", "unix"])
def proxied(request: pytest.FixtureRequest, module_processes: Processes) -> tuple[Nginx, Fastserve]:
    """nginx in front of one fastserve, over TCP or a unix socket."""
    server = module_processes.fastserve(unix=request.param == "unix")
    return module_processes.nginx(server), server


def client(nginx: Nginx) -> http.client.HTTPConnection:
    return http.client.HTTPConnection("127.0.0.1", nginx.port, timeout=20)


def get_json(conn: http.client.HTTPConnection, *args: Any, **kwargs: Any) -> dict[str, Any]:
    conn.request(*args, **kwargs)
    response = conn.getresponse()
    body = response.read()
    assert response.status == 200, (response.status, body)
    result: dict[str, Any] = json.loads(body)
    return result


def test_documented_config_has_upstream_keepalive() -> None:
    """The configuration these tests run is the documented one, with the keep-alive trio."""
    config = documented_config()
    assert any(line.startswith("keepalive ") for line in config["upstream"])
    assert "proxy_http_version 1.1;" in config["location"]
    assert 'proxy_set_header Connection "";' in config["location"]


def test_requests_reuse_one_upstream_connection(proxied: tuple[Nginx, Fastserve]) -> None:
    nginx, server = proxied
    records = []
    for _ in range(2):  # two client connections, ten requests each
        conn = client(nginx)
        try:
            records += [get_json(conn, "GET", f"/reuse/{i}") for i in range(10)]
        finally:
            conn.close()
    assert [r["uri"] for r in records] == [f"/reuse/{i}" for i in range(10)] * 2
    # Sequential requests: nginx keeps the one upstream connection and sends them all on it.
    assert {r["conn"] for r in records} == {records[0]["conn"]}
    assert {r["connection"] for r in records} == {None}  # no "Connection: close" upstream
    assert [c["uri"] for c in server.calls()][-20:] == [r["uri"] for r in records]


def _pieces(data: bytes, size: int) -> Iterator[bytes]:
    for start in range(0, len(data), size):
        yield data[start : start + size]


@pytest.mark.parametrize("chunked", [False, True], ids=["content_length", "chunked"])
@pytest.mark.parametrize("prefix", ["/", "/unbuffered/"], ids=["buffered", "unbuffered"])
def test_request_body_arrives_whole(
    proxied: tuple[Nginx, Fastserve], chunked: bool, prefix: str
) -> None:
    nginx, _ = proxied
    body = bytes(range(256)) * 1024  # 256 KiB, every byte value
    conn = client(nginx)
    try:
        if chunked:
            record = get_json(conn, "POST", f"{prefix}upload", body=_pieces(body, 10000),
                              encode_chunked=True)  # fmt: skip
        else:
            record = get_json(conn, "POST", f"{prefix}upload", body=body)
    finally:
        conn.close()
    # Unbuffered, a chunked body larger than nginx's head buffer is forwarded chunked (nginx's
    # own chunks); otherwise nginx sends a Content-Length.
    streamed = chunked and prefix == "/unbuffered/"
    assert record["transfer_encoding"] == ("chunked" if streamed else None)
    received = record["body"].encode("latin-1")
    assert hashlib.sha256(received).hexdigest() == hashlib.sha256(body).hexdigest()


def test_proxy_fix_gives_the_client_view(proxied: tuple[Nginx, Fastserve]) -> None:
    """nginx sets X-Forwarded-*, ProxyFix(x_for=1, ...) applies the last hop's values."""
    nginx, server = proxied
    conn = client(nginx)
    try:
        record = get_json(
            conn, "GET", "/who",
            headers={
                "Host": f"app.example:{nginx.port}",
                "X-Forwarded-For": "203.0.113.9",  # forged by the client
                "X-Forwarded-Proto": "https",  # forged by the client
                "X-Forwarded-Host": "evil.example",  # forged by the client
            },
        )  # fmt: skip
    finally:
        conn.close()
    # nginx appends the address it saw; ProxyFix trusts that one hop only.
    assert record["forwarded_for"] == "203.0.113.9, 127.0.0.1"
    assert record["remote_addr"] == "127.0.0.1"
    # What fastserve itself saw: nginx, over TCP or the unix socket.
    assert record["orig_remote_addr"] == ("<local>" if server.unix else "127.0.0.1")
    assert record["forwarded_proto"] == "http"
    assert record["scheme"] == "http"
    assert record["host"] == f"app.example:{nginx.port}"
    assert record["server_port"] == str(nginx.port)
    # The access log line (werkzeug's handler logs the environ's REMOTE_ADDR) shows it too.
    wait_for(lambda: '"GET /who HTTP/1.1" 200' in server.log(), "the access log line")
    assert [line.split()[0] for line in server.log().splitlines() if "GET /who " in line] == [
        "127.0.0.1"
    ]


def test_streamed_response_arrives_whole(proxied: tuple[Nginx, Fastserve]) -> None:
    """A response without a length: fastserve frames it chunked, nginx reads it through."""
    nginx, _ = proxied
    conn = client(nginx)
    try:
        conn.request("GET", "/stream/20000")
        response = conn.getresponse()
        body = response.read()
    finally:
        conn.close()
    assert response.status == 200
    assert body == b"".join(b"line %d\n" % i for i in range(20000))
