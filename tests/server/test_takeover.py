"""An application that takes the socket over through ``environ["werkzeug.socket"]``
(flask-sock / simple-websocket) keeps it, with its thread, and it is never reused."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from server_helpers import Reader

flask = pytest.importorskip("flask")
flask_sock = pytest.importorskip("flask_sock")
simple_websocket = pytest.importorskip("simple_websocket")

pytestmark = pytest.mark.live


def make_app() -> Any:
    app = flask.Flask(__name__)
    sock = flask_sock.Sock(app)

    @sock.route("/echo")
    def echo(ws: Any) -> None:
        while True:
            data = ws.receive()
            if data == "bye":
                return
            ws.send(f"echo: {data}")

    @app.route("/plain")
    def plain() -> str:
        return "plain"

    return app


def test_flask_sock_echo(serve: Any, logs: Any) -> None:
    srv = serve(make_app())
    ws = simple_websocket.Client.connect(f"ws://127.0.0.1:{srv.port}/echo")
    client_port = ws.sock.getsockname()[1]
    try:
        for word in ("one", "two", "three"):
            ws.send(word)
            assert ws.receive(timeout=5) == f"echo: {word}"
        # other connections are served while the websocket holds its thread
        with srv.connect() as s:
            s.sendall(b"GET /plain HTTP/1.1\r\nHost: x\r\n\r\n")
            assert Reader(s).response().body == b"plain"
        ws.send("bye")
        # the server ends the session: the client sees the close frame
        for _ in range(250):
            if not ws.connected:
                break
            threading.Event().wait(0.02)
        assert not ws.connected
    finally:
        if ws.connected:
            ws.close()
    engine = srv.server._engine
    # the taken-over socket left the engine (closed, never parked for reuse)
    for _ in range(200):
        if not any(c.addr[1] == client_port for c in engine.conns.values()):
            break
        threading.Event().wait(0.02)
    assert not any(c.addr[1] == client_port for c in engine.conns.values())
    assert "Traceback" not in logs.text()


def test_raw_socket_takeover_without_raising(serve: Any) -> None:
    """An app that writes its own bytes and closes the socket: nothing else is sent."""

    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        sock = environ["werkzeug.socket"]
        sock.sendall(b"RAW PROTOCOL\n")
        sock.close()
        return []

    srv = serve(app)
    with srv.connect() as s:
        s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        s.settimeout(5)
        data = b""
        while True:
            chunk = s.recv(100)
            if not chunk:
                break
            data += chunk
    assert data == b"RAW PROTOCOL\n"
