"""What the server class sets up for its connections: TCP_NODELAY on accepted
sockets, the sticky ``protocol_version`` of the handler class. The environ
and the handler hooks are tested without a listener in
``test_conn_environ.py``."""

from __future__ import annotations

import errno
import os
import socket
from typing import Any

import pytest
from server_helpers import Reader, Running, hello_app

from fastserve._engine import Engine
from fastserve.server import make_server
from fastserve.serving import WSGIRequestHandler

pytestmark = pytest.mark.live


def test_accepted_tcp_connections_have_nodelay() -> None:
    # set per connection, or inherited from the listening socket (Linux)
    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        sock = environ["werkzeug.socket"]
        start_response("200 OK", [])
        return [b"%d" % sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)]

    server = make_server("127.0.0.1", 0, app, threaded=True)
    # connections queued before the server serves (the reloader hands a
    # listening socket over) and connections made later
    early = [socket.create_connection(("127.0.0.1", server.port), timeout=5) for _ in range(3)]
    for s in early:
        s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    running = Running(server)
    try:
        for s in early:
            with s:
                assert Reader(s).response().body == b"1"
        for _ in range(3):
            with running.connect() as s:
                s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
                assert Reader(s).response().body == b"1"
    finally:
        running.stop()


def test_sticky_protocol_version_on_the_handler_class(serve: Any) -> None:
    class Handler(WSGIRequestHandler):
        pass

    assert Handler.protocol_version == "HTTP/1.0"
    serve(hello_app, threaded=True, handler=Handler)
    assert vars(Handler)["protocol_version"] == "HTTP/1.1"


def test_a_connection_that_cannot_be_set_up_is_closed_and_reported(serve: Any) -> None:
    """The handler's ``address_string()`` (called when the connection is set up)
    raising: that connection is closed and handed to the server's
    ``handle_error``; the next ones are served."""
    failures = []

    class Handler(WSGIRequestHandler):
        def address_string(self) -> str:
            if not failures:
                failures.append(self.client_address)
                raise RuntimeError("no address")
            return "10.0.0.1"

    running = serve(hello_app, handler=Handler)
    reported: list[Any] = []
    running.server.handle_error = lambda request, addr: reported.append((request, addr))
    with running.connect() as s:
        s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        try:
            data = s.recv(1024)
        except ConnectionResetError:  # closed with the request unread
            data = b""
        assert data == b""  # closed without a response
    assert [addr for _, addr in reported] == failures
    assert reported[0][0].fileno() == -1  # its socket is closed
    for _ in range(2):
        with running.connect() as s:
            s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            assert Reader(s).response().status == 200


def test_a_descriptor_that_is_not_a_socket_is_closed_not_leaked() -> None:
    """``Engine._socket`` on what accept() returned: when no socket object can
    be made of it, the descriptor is closed (and no connection is set up)."""
    srv = make_server("127.0.0.1", 0, hello_app, threaded=True)
    engine = Engine(srv, 0.1)
    read_end, write_end = os.pipe()
    try:
        assert engine._new_connection(read_end, ("127.0.0.1", 1), False) is None
        with pytest.raises(OSError) as info:
            os.fstat(read_end)
        assert info.value.errno == errno.EBADF
        assert engine.conns == {}
    finally:
        os.close(write_end)
        engine.close()
        srv.server_close()
