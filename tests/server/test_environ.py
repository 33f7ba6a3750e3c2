"""The WSGI environ and the request-handler hooks on the default path."""

from __future__ import annotations

import io
import json
import socket
import sys
from typing import Any

import pytest
import werkzeug.serving
from server_helpers import Reader, Running, hello_app, recv_all

from fastserve import __version__
from fastserve.server import make_server
from fastserve.serving import WSGIRequestHandler

pytestmark = pytest.mark.live


def dump_app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
    out = {k: v for k, v in environ.items() if isinstance(v, (str, int, bool, tuple, type(None)))}
    out["input_type"] = type(environ["wsgi.input"]).__name__
    out["errors_is_stderr"] = environ["wsgi.errors"] is sys.stderr
    out["socket_ok"] = isinstance(environ["werkzeug.socket"], socket.socket)
    start_response("200 OK", [("Content-Type", "application/json")])
    return [json.dumps(out).encode()]


def environ_of(srv: Any, raw: bytes) -> dict[str, Any]:
    with srv.connect() as s:
        s.sendall(raw)
        return json.loads(Reader(s).response().body)


def test_environ_values(serve: Any) -> None:
    srv = serve(dump_app)
    env = environ_of(
        srv, b"GET /a%20b/c?x=1&y=%41#frag HTTP/1.1\r\nHost: example:80\r\nX-Y: z\r\n\r\n"
    )
    assert env["wsgi.version"] == [1, 0]
    assert env["wsgi.url_scheme"] == "http"
    assert env["wsgi.multithread"] is True
    assert env["wsgi.multiprocess"] is False
    assert env["wsgi.run_once"] is False
    assert env["errors_is_stderr"] and env["socket_ok"]
    assert env["SERVER_SOFTWARE"] == f"fastserve/{__version__}"
    assert env["REQUEST_METHOD"] == "GET"
    assert env["SCRIPT_NAME"] == ""
    assert env["PATH_INFO"] == "/a b/c"
    assert env["QUERY_STRING"] == "x=1&y=%41"
    assert env["REQUEST_URI"] == env["RAW_URI"] == "/a%20b/c?x=1&y=%41#frag"
    assert env["SERVER_PROTOCOL"] == "HTTP/1.1"
    assert env["HTTP_HOST"] == "example:80"
    assert env["HTTP_X_Y"] == "z"
    assert env["REMOTE_ADDR"] == "127.0.0.1"
    assert isinstance(env["REMOTE_PORT"], int) and env["REMOTE_PORT"] > 0
    assert env["SERVER_NAME"] == "127.0.0.1"
    assert env["SERVER_PORT"] == str(srv.port)
    assert "CONTENT_TYPE" not in env and "CONTENT_LENGTH" not in env
    assert "wsgi.input_terminated" not in env
    assert "werkzeug.server.shutdown" not in env


def test_environ_on_the_plain_server_is_single_threaded(serve: Any) -> None:
    srv = serve(dump_app, threaded=False)
    with srv.connect() as s:
        s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        env = json.loads(recv_all(s).partition(b"\r\n\r\n")[2])
    assert env["wsgi.multithread"] is False and env["wsgi.multiprocess"] is False


def test_each_request_on_a_connection_gets_its_own_environ(serve: Any) -> None:
    """The connection's entries come from the parser's template (set_base): what the
    application does to one request's environ does not reach the next one."""
    seen: list[dict[str, Any]] = []

    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        seen.append(dict(environ))
        del environ["REMOTE_ADDR"]
        environ["SERVER_NAME"] = "changed"
        environ["app.key"] = True
        start_response("200 OK", [("Content-Length", "0")])
        return []

    srv = serve(app)
    with srv.connect() as s:
        reader = Reader(s)
        for path in (b"/one", b"/two"):
            s.sendall(b"GET " + path + b" HTTP/1.1\r\nHost: x\r\n\r\n")
            assert reader.response().status == 200
    first, second = seen
    assert second["PATH_INFO"] == "/two" and "app.key" not in second
    assert second["REMOTE_ADDR"] == first["REMOTE_ADDR"] == "127.0.0.1"
    assert second["SERVER_NAME"] == first["SERVER_NAME"] == "127.0.0.1"
    assert second["werkzeug.socket"] is first["werkzeug.socket"]
    assert {k: v for k, v in first.items() if k not in ("PATH_INFO", "REQUEST_URI", "RAW_URI")} == {
        k: v for k, v in second.items() if k not in ("PATH_INFO", "REQUEST_URI", "RAW_URI")
    }


def test_wsgi_errors_is_the_stderr_of_the_request(
    serve: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """werkzeug's make_environ reads ``sys.stderr`` per request; so does fastserve, on a
    keep-alive connection too (the connection's other entries are set once)."""
    seen: list[Any] = []

    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        seen.append((environ["wsgi.errors"], sys.stderr))
        start_response("200 OK", [("Content-Length", "0")])
        return []

    srv = serve(app)
    with srv.connect() as s:
        reader = Reader(s)
        s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        assert reader.response().status == 200
        swapped = io.StringIO()
        monkeypatch.setattr(sys, "stderr", swapped)
        s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        assert reader.response().status == 200
    assert seen[0][0] is seen[0][1] and seen[0][0] is not swapped
    assert seen[1][0] is swapped and seen[1][1] is swapped


def test_body_entries(serve: Any) -> None:
    srv = serve(dump_app)
    head = b"POST / HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
    env = environ_of(srv, head + b"Content-Length: 2\r\n\r\n{}")
    assert env["CONTENT_TYPE"] == "application/json"
    assert env["CONTENT_LENGTH"] == "2"
    assert env["input_type"] == "ContentLengthReader"
    env = environ_of(
        srv, b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"
    )
    assert env["wsgi.input_terminated"] is True
    assert env["HTTP_TRANSFER_ENCODING"] == "chunked"


def test_wsgi_input_file_api(serve: Any) -> None:
    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        stream = environ["wsgi.input"]
        first = stream.readline()
        rest = stream.readlines()
        again = stream.read()
        start_response("200 OK", [])
        return [json.dumps([first.decode(), [x.decode() for x in rest], again.decode()]).encode()]

    srv = serve(app)
    body = b"line1\nline2\nline3"
    with srv.connect() as s:
        s.sendall(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))
        assert json.loads(Reader(s).response().body) == ["line1\n", ["line2\n", "line3"], ""]


class CustomHandler(WSGIRequestHandler):
    log_calls: list[tuple[Any, ...]] = []

    def make_environ(self) -> dict[str, Any]:
        environ = super().make_environ()
        environ["custom.key"] = "yes"
        environ["custom.header"] = self.headers.get("X-Token")
        return environ

    def address_string(self) -> str:
        return "10.9.8.7"

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        self.log_calls.append((self.command, self.path, code))
        super().log_request(code, size)


def test_handler_subclass_hooks_are_called(serve: Any, logs: Any) -> None:
    CustomHandler.log_calls = []

    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        start_response("200 OK", [])
        return [
            json.dumps(
                [environ["custom.key"], environ["custom.header"], environ["REMOTE_ADDR"]]
            ).encode()
        ]

    srv = serve(app, handler=CustomHandler)
    with srv.connect() as s:
        s.sendall(b"GET /p?q HTTP/1.1\r\nHost: x\r\nX-Token: t1\r\n\r\n")
        assert json.loads(Reader(s).response().body) == ["yes", "t1", "10.9.8.7"]
    assert CustomHandler.log_calls == [("GET", "/p?q", 200)]
    assert logs.wait_for('"GET /p?q HTTP/1.1" 200 -').startswith("10.9.8.7 - - [")


class RequestLoggingHandler(WSGIRequestHandler):
    """Overrides only ``log_request`` (werkzeug's ``make_environ``)."""

    log_calls: list[tuple[Any, ...]] = []

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        self.log_calls.append(
            (self.command, self.path, self.request_version, self.headers.get("X-Token"), code)
        )


def test_hooks_see_each_request_on_a_keep_alive_connection(serve: Any) -> None:
    # the handler's per-request attributes are bound when a hook runs, not per request
    RequestLoggingHandler.log_calls = []
    srv = serve(hello_app, handler=RequestLoggingHandler)
    with srv.connect() as s:
        reader = Reader(s)
        s.sendall(b"GET /a HTTP/1.1\r\nHost: x\r\nX-Token: one\r\n\r\n")
        assert reader.response().status == 200
        s.sendall(b"HEAD /b?c HTTP/1.1\r\nHost: x\r\nX-Token: two\r\n\r\n")
        assert reader.response(head_only=True).status == 200
        s.sendall(b"GET /c HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
        assert reader.response().status == 200
    assert RequestLoggingHandler.log_calls == [
        ("GET", "/a", "HTTP/1.1", "one", 200),
        ("HEAD", "/b?c", "HTTP/1.1", "two", 200),
        ("GET", "/c", "HTTP/1.0", None, 200),
    ]


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
    serve(dump_app, threaded=True, handler=Handler)
    assert vars(Handler)["protocol_version"] == "HTTP/1.1"


def test_werkzeug_handler_subclass_runs_the_stdlib_way(serve: Any) -> None:
    class WerkzeugHandler(werkzeug.serving.WSGIRequestHandler):
        protocol_version = "HTTP/1.1"

        def make_environ(self) -> dict[str, Any]:
            environ = super().make_environ()
            environ["from.werkzeug"] = True
            return environ

    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        start_response("200 OK", [])
        return [b"werkzeug handler: %r" % environ["from.werkzeug"]]

    srv = serve(app, handler=WerkzeugHandler)
    with srv.connect() as s:
        s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        data = recv_all(s)
    assert data.startswith(b"HTTP/1.1 200 OK")
    assert b"Connection: close" in data  # werkzeug's handler always closes
    assert b"\r\nwerkzeug handler: True\r\n0\r\n\r\n" in data  # werkzeug chunks it


def test_subclass_overriding_the_stdlib_cycle_is_honoured(serve: Any) -> None:
    class Handler(WSGIRequestHandler):
        def send_header(self, keyword: str, value: str) -> None:
            super().send_header(keyword, value.upper() if keyword == "X-Case" else value)

    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        start_response("200 OK", [("X-Case", "lower")])
        return [b"ok"]

    srv = serve(app, handler=Handler)
    with srv.connect() as s:
        s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        data = recv_all(s)
    assert b"X-Case: LOWER" in data


def test_connection_dropped_hook_gets_the_error_and_environ(serve: Any) -> None:
    calls: list[tuple[BaseException, Any]] = []

    class Handler(WSGIRequestHandler):
        def connection_dropped(self, error: BaseException, environ: Any = None) -> None:
            calls.append((error, environ))

    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        raise ConnectionResetError("peer went away")

    srv = serve(app, handler=Handler)
    with srv.connect() as s:
        s.sendall(b"GET /gone HTTP/1.1\r\nHost: x\r\n\r\n")
        assert recv_all(s) == b""  # no 500: the connection is closed
    assert len(calls) == 1
    assert isinstance(calls[0][0], ConnectionResetError)
    assert calls[0][1]["PATH_INFO"] == "/gone"
