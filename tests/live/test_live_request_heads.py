"""Request heads the server accepts, and the environ the application gets from them:
request targets (origin, absolute and asterisk form, percent-encoding), any method
token, field lines up to the limit, header names with underscores dropped."""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest
from live_helpers import LiveServer, read_response

pytestmark = [pytest.mark.live, pytest.mark.timeout(120)]


@pytest.fixture(scope="module")
def server(server_on: Callable[..., LiveServer]) -> LiveServer:
    return server_on()


def _one(server: LiveServer, request: bytes) -> dict[str, object]:
    with server.raw_socket() as sock:
        sock.sendall(request)
        status, _, body = read_response(sock, bytearray())
    assert status == b"HTTP/1.1 200 OK", (status, body[:200])
    result: dict[str, object] = json.loads(body)
    return result


def test_get_environ(server: LiveServer) -> None:
    status, headers, body = server.request("/hello/w%C3%B6rld?x=1&y=%20")
    assert status == 200
    data = json.loads(body)
    assert data["path"] == "/hello/w\u00c3\u00b6rld"  # PEP 3333: UTF-8 bytes as latin-1
    assert data["query"] == "x=1&y=%20"
    assert data["protocol"] == "HTTP/1.1"
    assert data["scheme"] == "http"
    assert data["remote_addr"] == "127.0.0.1"
    assert isinstance(data["remote_port"], int)
    assert data["content_length"] is None and data["content_type"] is None
    assert headers["Server"].startswith("fastserve/")
    assert headers["Date"].endswith(" GMT")
    assert headers["Content-Type"] == "application/json"


def test_absolute_form_target(server: LiveServer) -> None:
    data = _one(
        server, b"GET http://user@example.test:8080/abs?q=1 HTTP/1.1\r\nHost: other\r\n\r\n"
    )
    assert (data["path"], data["query"]) == ("/abs", "q=1")
    headers = data["headers"]
    assert isinstance(headers, dict)
    assert headers["HTTP_HOST"] == "example.test:8080"


def test_options_asterisk(server: LiveServer) -> None:
    data = _one(server, b"OPTIONS * HTTP/1.1\r\nHost: t\r\n\r\n")
    assert (data["method"], data["path"]) == ("OPTIONS", "*")


def test_percent_encoded_slash_and_query(server: LiveServer) -> None:
    data = _one(server, b"GET /a%2Fb/%7Euser?x=%2F&y HTTP/1.1\r\nHost: t\r\n\r\n")
    assert (data["path"], data["query"]) == ("/a/b/~user", "x=%2F&y")


@pytest.mark.parametrize("method", ["get", "FOO", "PROPFIND", "M-SEARCH"])
def test_any_method_token_reaches_the_app(server: LiveServer, method: str) -> None:
    data = _one(server, method.encode() + b" /m HTTP/1.1\r\nHost: t\r\n\r\n")
    assert data["method"] == method


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
