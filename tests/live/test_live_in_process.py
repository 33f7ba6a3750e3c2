"""``make_server`` in a thread of the test process, as pytest live-server fixtures and
OAuth callback helpers embed it: it serves, and ``shutdown()`` + ``server_close()`` leave
no socket open.

The parser is switched in-process (``in_process_server`` and ``parser_used`` in
``conftest.py``), so these tests run against both implementations too. (Timeouts and
limits set as class attributes, in-process as well: ``test_live_keep_alive.py``,
``test_live_slow_peers.py``, ``test_live_request_bodies.py``.)
"""

from __future__ import annotations

import gc
import http.client
import json
import socket
import warnings
from collections.abc import Callable
from typing import Any

import pytest
from live_apps import echo
from live_helpers import PARSER_NAMES, recv_until_closed, serve_in_thread

from fastserve import serving

pytestmark = [pytest.mark.live, pytest.mark.timeout(120)]


def _post_chunked(conn: http.client.HTTPConnection, path: str) -> Any:
    conn.request("POST", path, body=iter([b"a", b"bc"]), encode_chunked=True)
    response = conn.getresponse()
    assert response.status == 200
    return json.loads(response.read())


def test_make_server_in_a_thread(
    in_process_server: Callable[..., Any], parser_used: list[str]
) -> None:
    server = in_process_server(serving.make_server("127.0.0.1", 0, echo, threaded=True))
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    try:
        first = _post_chunked(conn, "/in-process/1")
        second = _post_chunked(conn, "/in-process/2")
    finally:
        conn.close()
    assert first["remote_port"] == second["remote_port"]
    assert second["body"] == "abc" and second["input_terminated"] is True
    assert set(parser_used) == set(PARSER_NAMES.values())


def test_server_close_leaves_no_open_socket(parser_used: list[str]) -> None:
    """shutdown() + server_close() close the listener and every parked client connection."""
    server = serving.make_server("127.0.0.1", 0, echo, threaded=True)
    thread = serve_in_thread(server)
    clients: list[socket.socket] = []
    stopped = False
    try:
        for i in range(3):
            sock = socket.create_connection(("127.0.0.1", server.port), timeout=10)
            clients.append(sock)
            sock.sendall(b"GET /parked/%d HTTP/1.1\r\nHost: t\r\n\r\n" % i)
            assert sock.recv(65536).startswith(b"HTTP/1.1 200 OK")
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", ResourceWarning)
            server.shutdown()
            server.server_close()
            stopped = True
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
        if not stopped:
            server.shutdown()
            server.server_close()
            thread.join(10)
    assert "RequestParser" in parser_used
