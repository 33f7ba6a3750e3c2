"""flask-sock over fastserve: the app takes the socket over through ``werkzeug.socket``."""

from __future__ import annotations

import threading
from collections.abc import Callable

import pytest
import requests
import simple_websocket
from conftest import LiveServer

pytestmark = [pytest.mark.live, pytest.mark.timeout(120)]


@pytest.fixture(scope="module")
def sock_server(start_server: Callable[..., LiveServer]) -> LiveServer:
    return start_server("sock")


def test_echo(sock_server: LiveServer) -> None:
    mark = sock_server.log_mark()
    ws = simple_websocket.Client.connect(f"ws://{sock_server.host}:{sock_server.port}/echo")
    try:
        for message in ["hello", "wörld", "x" * 100_000]:
            ws.send(message)
            assert ws.receive(timeout=10) == message
        ws.send(b"\x00\x01binary")
        assert ws.receive(timeout=10) == b"\x00\x01binary"
        ws.send("bye")
        with pytest.raises(simple_websocket.ConnectionClosed) as closed:
            ws.receive(timeout=10)
        assert (closed.value.reason, closed.value.message) == (1000, "bye")
    finally:
        if ws.connected:
            ws.close()
    assert "Traceback" not in sock_server.log(since=mark)


def test_http_served_while_websockets_are_open(sock_server: LiveServer) -> None:
    """Open websockets hold their threads; plain requests and other sockets still go through."""
    url = f"ws://{sock_server.host}:{sock_server.port}/echo"
    clients = [simple_websocket.Client.connect(url) for _ in range(3)]
    try:
        with requests.Session() as session:
            for _ in range(3):
                assert (
                    session.get(f"{sock_server.url}/", timeout=10).text == "plain HTTP still works"
                )
        results: dict[int, str] = {}

        def talk(i: int) -> None:
            clients[i].send(f"client {i}")
            results[i] = clients[i].receive(timeout=10)

        threads = [threading.Thread(target=talk, args=(i,)) for i in range(3)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(15)
        assert results == {i: f"client {i}" for i in range(3)}
    finally:
        for ws in clients:
            ws.close()
