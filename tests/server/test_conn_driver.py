"""The socket-pair driver itself: its fake server has what the connection
reads, with the real server classes' defaults, and its response splitter
tells complete responses from cut ones."""

from __future__ import annotations

import dataclasses
import typing
from typing import Any

import pytest
from conn_driver import LIMITS, FakeServer, split_responses

from fastserve._contracts import ConnectionServer, EnvironServer
from fastserve._settings import Settings
from fastserve.server import BaseWSGIServer, ThreadedWSGIServer


def _declared(protocol: type) -> set[str]:
    return set(typing.get_type_hints(protocol)) - {"socket"}


@pytest.mark.parametrize("threaded", [True, False])
def test_fake_server_has_what_the_connection_reads(threaded: bool) -> None:
    server = FakeServer(lambda environ, start_response: [], threaded=threaded)
    for name in _declared(ConnectionServer) | _declared(EnvironServer):
        assert hasattr(server, name), name
    for name in ("handle_error", "log"):
        assert callable(getattr(server, name))


@pytest.mark.parametrize("real", [ThreadedWSGIServer, BaseWSGIServer])
def test_fake_server_limits_are_the_real_defaults(real: Any) -> None:
    server = FakeServer(None, threaded=real is ThreadedWSGIServer)
    # each one a setting the connection reads (Settings.from_server takes it from the server)
    assert set(LIMITS) <= {field.name for field in dataclasses.fields(Settings)}
    for name in LIMITS:
        assert getattr(server, name) == getattr(real, name), name
    assert server.multithread is real.multithread
    with pytest.raises(TypeError, match="not a server limit"):
        FakeServer(None, keep_alive=1)


def test_split_responses() -> None:
    data = (
        b"HTTP/1.1 100 Continue\r\n\r\n"
        b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2;x=1\r\nab\r\n1\r\nc\r\n0\r\n\r\n"
        b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n"  # HEAD: no body
        b"HTTP/1.1 304 Not Modified\r\nContent-Length: 5\r\n\r\n"
    )
    responses = split_responses(data, methods=["GET", "GET", "HEAD", "GET"])
    assert [(r.status, r.body, r.complete) for r in responses] == [
        (100, b"", True),
        (200, b"ok", True),
        (200, b"abc", True),
        (200, b"", True),
        (304, b"", True),
    ]


@pytest.mark.parametrize(
    "data",
    [
        b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nabc",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nabc",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1\r\na\r\n",
        b"HTTP/1.1 200 OK\r\n\r\nclose-delimited",
        b"HTTP/1.1 200 OK\r\nContent-",
    ],
)
def test_split_responses_refuses_a_cut_response_before_eof(data: bytes) -> None:
    with pytest.raises(ValueError):
        split_responses(data)


def test_split_responses_at_eof_marks_a_cut_response() -> None:
    (cut,) = split_responses(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nabc", eof=True)
    assert (cut.body, cut.complete) == (b"abc", False)
    (closed,) = split_responses(b"HTTP/1.0 200 OK\r\n\r\nto the end", eof=True)
    assert (closed.body, closed.complete) == (b"to the end", True)
