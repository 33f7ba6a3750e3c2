"""Request shapes at the edges of what is allowed, and pre-forked workers on TLS and unix."""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest
from live_helpers import LiveServer, read_response

pytestmark = [pytest.mark.live, pytest.mark.timeout(120)]


@pytest.fixture(scope="module")
def server(start_server: Callable[..., LiveServer]) -> LiveServer:
    return start_server("echo")


def _one(server: LiveServer, request: bytes) -> dict[str, object]:
    with server.raw_socket() as sock:
        sock.sendall(request)
        status, _, body = read_response(sock, bytearray())
    assert status == b"HTTP/1.1 200 OK", (status, body[:200])
    result: dict[str, object] = json.loads(body)
    return result


@pytest.mark.parametrize("method", ["get", "FOO", "PROPFIND", "M-SEARCH"])
def test_any_method_token_reaches_the_app(server: LiveServer, method: str) -> None:
    data = _one(server, method.encode() + b" /m HTTP/1.1\r\nHost: t\r\n\r\n")
    assert data["method"] == method


def test_options_asterisk(server: LiveServer) -> None:
    data = _one(server, b"OPTIONS * HTTP/1.1\r\nHost: t\r\n\r\n")
    assert (data["method"], data["path"]) == ("OPTIONS", "*")


def test_underscore_header_names_dropped(server: LiveServer) -> None:
    data = _one(server, b"GET /u HTTP/1.1\r\nHost: t\r\nX_Spoof: 1\r\nX-Real: 2\r\n\r\n")
    headers = data["headers"]
    assert isinstance(headers, dict)
    assert headers.get("HTTP_X_REAL") == "2"
    assert "HTTP_X_SPOOF" not in headers


def test_field_line_at_the_limit_is_accepted(server: LiveServer) -> None:
    value = b"v" * (8190 - len(b"X-Big: "))  # 8190 bytes without the CRLF: the largest allowed
    data = _one(server, b"GET /limit HTTP/1.1\r\nHost: t\r\nX-Big: " + value + b"\r\n\r\n")
    headers = data["headers"]
    assert isinstance(headers, dict)
    assert headers["HTTP_X_BIG"] == value.decode()


def test_empty_lines_before_the_request_are_skipped(server: LiveServer) -> None:
    data = _one(server, b"\r\n\r\nGET /after-blank HTTP/1.1\r\nHost: t\r\n\r\n")
    assert data["path"] == "/after-blank"


def test_percent_encoded_slash_and_query(server: LiveServer) -> None:
    data = _one(server, b"GET /a%2Fb/%7Euser?x=%2F&y HTTP/1.1\r\nHost: t\r\n\r\n")
    assert (data["path"], data["query"]) == ("/a/b/~user", "x=%2F&y")


@pytest.mark.parametrize(
    "transport", [{"ssl_context": "adhoc"}, {"hostname": "unix"}], ids=["tls", "unix"]
)
def test_prefork_workers(
    start_server: Callable[..., LiveServer], transport: dict[str, str]
) -> None:
    server = start_server("echo", threaded=False, processes=2, **transport)
    conn = server.connect()
    try:
        for i in range(4):
            conn.request("POST", f"/pf/{i}", body=b"z" * 1000 * i)
            response = conn.getresponse()
            data = json.loads(response.read())
            assert not response.will_close
            assert (data["path"], data["body_length"]) == (f"/pf/{i}", 1000 * i)
    finally:
        conn.close()
