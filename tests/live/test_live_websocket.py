"""flask-sock over fastserve: the app takes the socket over through ``werkzeug.socket``."""

from __future__ import annotations

import threading
from collections.abc import Callable

import pytest
import requests
import simple_websocket
from live_helpers import LiveServer, insecure_client_context

pytestmark = [pytest.mark.live, pytest.mark.timeout(120)]


def close_client(ws: simple_websocket.Client) -> None:
    """Close a client and wait for its receive thread.

    ``simple_websocket.Client.close()`` closes the socket while its receive thread may still
    be reading it; a connection opened right after can get the same descriptor number and
    lose bytes to that stale thread (seen as ``WRONG_VERSION_NUMBER`` over TLS, against
    werkzeug's server just as against ours). Joining the thread first avoids that client race.
    """
    if ws.connected:
        ws.close()
    ws.thread.join(10)


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
        close_client(ws)
    # the request's access line is written once the websocket route has returned
    log = sock_server.wait_for_log('"GET /echo HTTP/1.1" 200', since=mark)
    assert "Traceback" not in log


def test_http_served_while_websockets_are_open(sock_server: LiveServer) -> None:
    """Open websockets hold their threads; plain requests and other sockets still go through."""
    url = f"ws://{sock_server.host}:{sock_server.port}/echo"
    clients: list[simple_websocket.Client] = []
    try:
        for _ in range(3):
            clients.append(simple_websocket.Client.connect(url))
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
            close_client(ws)


@pytest.mark.filterwarnings("ignore::urllib3.exceptions.InsecureRequestWarning")
def test_echo_over_tls(start_server: Callable[..., LiveServer]) -> None:
    """The taken-over socket is the TLS socket: wss works the same."""
    server = start_server("sock", ssl_context="adhoc")
    ws = simple_websocket.Client.connect(
        f"wss://{server.host}:{server.port}/echo", ssl_context=insecure_client_context()
    )
    try:
        for message in ["secure", "y" * 70_000]:
            ws.send(message)
            assert ws.receive(timeout=10) == message
    finally:
        close_client(ws)
    assert requests.get(f"{server.url}/", verify=False, timeout=10).text == "plain HTTP still works"


def test_many_websockets_then_idle_threads_return(start_server: Callable[..., LiveServer]) -> None:
    """20 websockets at once, each its own thread; all echo; closing them ends their requests."""
    server = start_server("sock")
    url = f"ws://{server.host}:{server.port}/echo"
    clients: list[simple_websocket.Client] = []
    try:
        for _ in range(20):
            clients.append(simple_websocket.Client.connect(url))
        for i, ws in enumerate(clients):
            ws.send(f"n{i}")
        assert [ws.receive(timeout=10) for ws in clients] == [f"n{i}" for i in range(20)]
        for ws in clients:
            ws.send("bye")
        for ws in clients:
            with pytest.raises(simple_websocket.ConnectionClosed):
                ws.receive(timeout=10)
    finally:
        for ws in clients:
            close_client(ws)
    assert requests.get(f"{server.url}/", timeout=10).text == "plain HTTP still works"
