"""``make_server`` in a thread of the test process (how pytest live-server fixtures and OAuth
callback helpers use it), with the timeouts and limits that are class attributes.

The parser implementation is switched in-process: the fixture points the server modules'
parser names at ``fastserve._parser`` or ``fastserve._parser_py`` (via the ``parser_impl``
fixture) and counts their use, so a refactor that moves those names fails loudly instead of
silently testing one implementation twice.
"""

from __future__ import annotations

import gc
import http.client
import importlib
import json
import socket
import threading
import warnings
from collections.abc import Callable, Iterator
from types import ModuleType
from typing import Any

import pytest
from live_apps import echo
from live_helpers import recv_until_closed

from fastserve import serving

pytestmark = [pytest.mark.live, pytest.mark.timeout(120)]

#: module -> parser name it imported; patched to the implementation under test
PARSER_NAMES = {
    "fastserve.connection": "RequestParser",
    "fastserve._body": "ChunkedDecoder",
    "fastserve._response": "serialize_response_head",
}


@pytest.fixture
def parser_used(parser_impl: ModuleType, monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """Route the server's parser calls to ``parser_impl``; yields the names that were called."""
    used: list[str] = []
    for module_name, name in PARSER_NAMES.items():
        module = importlib.import_module(module_name)
        assert hasattr(module, name), f"{module_name}.{name} moved: update PARSER_NAMES"
        target = getattr(parser_impl, name)

        def counting(*args: Any, _target: Any = target, _name: str = name, **kw: Any) -> Any:
            used.append(_name)
            return _target(*args, **kw)

        monkeypatch.setattr(module, name, counting)
    yield used


def _serve(server: serving.BaseWSGIServer) -> threading.Thread:
    t = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1})
    t.start()
    return t


@pytest.fixture
def run_server(parser_used: list[str]) -> Iterator[Callable[..., serving.BaseWSGIServer]]:
    """Start a server in a thread; shut down and closed (and the thread joined) at teardown."""
    started: list[tuple[serving.BaseWSGIServer, threading.Thread]] = []

    def run(server: serving.BaseWSGIServer) -> serving.BaseWSGIServer:
        started.append((server, _serve(server)))
        return server

    yield run
    for server, thread in started:
        server.shutdown()
        server.server_close()
        thread.join(10)
        assert not thread.is_alive()


def _post_chunked(port: int, path: str, conn: http.client.HTTPConnection | None = None) -> Any:
    own = conn is None
    conn = conn or http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request("POST", path, body=iter([b"a", b"bc"]), encode_chunked=True)
        response = conn.getresponse()
        assert response.status == 200
        return json.loads(response.read())
    finally:
        if own:
            conn.close()


def test_make_server_in_a_thread(run_server: Callable[..., Any], parser_used: list[str]) -> None:
    server = run_server(serving.make_server("127.0.0.1", 0, echo, threaded=True))
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    try:
        first = _post_chunked(server.port, "/in-process/1", conn)
        second = _post_chunked(server.port, "/in-process/2", conn)
    finally:
        conn.close()
    assert first["remote_port"] == second["remote_port"]
    assert second["body"] == "abc" and second["input_terminated"] is True
    assert set(parser_used) == set(PARSER_NAMES.values())


def test_server_close_leaves_no_open_socket(parser_used: list[str]) -> None:
    """shutdown() + server_close() close the listener and every parked client connection."""
    server = serving.make_server("127.0.0.1", 0, echo, threaded=True)
    thread = _serve(server)
    clients = [socket.create_connection(("127.0.0.1", server.port), timeout=10) for _ in range(3)]
    try:
        for i, sock in enumerate(clients):
            sock.sendall(b"GET /parked/%d HTTP/1.1\r\nHost: t\r\n\r\n" % i)
            assert sock.recv(65536).startswith(b"HTTP/1.1 200 OK")
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", ResourceWarning)
            server.shutdown()
            server.server_close()
            thread.join(10)
            gc.collect()
        assert [str(w.message) for w in caught if w.category is ResourceWarning] == []
        for sock in clients:  # the server closed them: EOF, not a hang
            assert recv_until_closed(sock) == b""
        with pytest.raises(OSError):
            socket.create_connection(("127.0.0.1", server.port), timeout=2).close()
    finally:
        for sock in clients:
            sock.close()
    assert "RequestParser" in parser_used


class _QuickTimeouts(serving.ThreadedWSGIServer):
    request_head_timeout = 0.5
    keep_alive_timeout = 0.5


def test_incomplete_head_gets_408(run_server: Callable[..., Any]) -> None:
    server = run_server(_QuickTimeouts("127.0.0.1", 0, echo))
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(b"GET /slow HTTP/1.1\r\nHost: t\r\n")  # never finished
        response = recv_until_closed(sock)
    assert response.startswith(b"HTTP/1.1 408 Request Timeout\r\n")
    assert b"\r\nConnection: close\r\n" in response


def test_idle_keep_alive_connection_is_closed(run_server: Callable[..., Any]) -> None:
    server = run_server(_QuickTimeouts("127.0.0.1", 0, echo))
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(b"GET /then-idle HTTP/1.1\r\nHost: t\r\n\r\n")
        response = recv_until_closed(sock)  # the response, then EOF once idle too long
    assert response.startswith(b"HTTP/1.1 200 OK\r\n")
    assert response.endswith(b"}")


class _SmallBodies(serving.ThreadedWSGIServer):
    max_content_length = 1000


def test_max_content_length_refuses_before_the_app(run_server: Callable[..., Any]) -> None:
    calls: list[str] = []

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
        calls.append(environ["PATH_INFO"])
        return echo(environ, start_response)

    server = run_server(_SmallBodies("127.0.0.1", 0, app))
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(b"POST /too-big HTTP/1.1\r\nHost: t\r\nContent-Length: 5000\r\n\r\n")
        sock.sendall(b"x" * 5000)
        response = recv_until_closed(sock)
    assert response.startswith(b"HTTP/1.1 413 ")
    assert calls == []
