"""The WSGI environ and the request-handler hooks, on one connection driven
over a socket pair (``conn_driver``; the peer address is ``conn_driver.PEER``,
the server's ``FakeServer.server_address``)."""

from __future__ import annotations

import io
import json
import socket
import sys
from typing import Any

import pytest
import werkzeug.serving
from conn_driver import CLOSE, LINGER, PARK, PEER, get, log_lines, post, split_responses
from server_helpers import LogCapture, hello_app

from fastserve import __version__
from fastserve.connection import HTTPConnection
from fastserve.serving import WSGIRequestHandler


def dump_app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
    out = {k: v for k, v in environ.items() if isinstance(v, (str, int, bool, tuple, type(None)))}
    out["input_type"] = type(environ["wsgi.input"]).__name__
    out["errors_is_stderr"] = environ["wsgi.errors"] is sys.stderr
    out["socket_ok"] = isinstance(environ["werkzeug.socket"], socket.socket)
    start_response("200 OK", [("Content-Type", "application/json")])
    return [json.dumps(out).encode()]


def environ_of(drv: Any, raw: bytes) -> dict[str, Any]:
    (resp,) = split_responses(drv.exchange(raw))
    result: dict[str, Any] = json.loads(resp.body)
    return result


def test_environ_values(drive: Any) -> None:
    drv = drive(dump_app)
    env = environ_of(
        drv, b"GET /a%20b/c?x=1&y=%41#frag HTTP/1.1\r\nHost: example:80\r\nX-Y: z\r\n\r\n"
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
    assert env["REMOTE_ADDR"] == PEER[0]
    assert env["REMOTE_PORT"] == PEER[1]
    assert env["SERVER_NAME"] == "127.0.0.1"
    assert env["SERVER_PORT"] == "8080"
    assert "CONTENT_TYPE" not in env and "CONTENT_LENGTH" not in env
    assert "wsgi.input_terminated" not in env
    assert "werkzeug.server.shutdown" not in env


def test_each_request_gets_its_own_environ(drive: Any) -> None:
    seen: list[dict[str, Any]] = []

    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        seen.append(environ)
        environ["app.scratch"] = environ["PATH_INFO"]
        start_response("200 OK", [])
        return [b""]

    drv = drive(app)
    drv.exchange(get("/a", "X-Only-A: 1") + get("/b"))
    assert [e["PATH_INFO"] for e in seen] == ["/a", "/b"]
    assert seen[0] is not seen[1]
    assert "HTTP_X_ONLY_A" not in seen[1] and seen[1]["app.scratch"] == "/b"
    assert seen[0]["werkzeug.socket"] is seen[1]["werkzeug.socket"] is drv.sock


def test_environ_on_the_plain_server_is_single_threaded(drive: Any) -> None:
    drv = drive(dump_app, threaded=False)
    data = drv.exchange(get())
    env = json.loads(split_responses(data, eof=True)[0].body)
    assert env["wsgi.multithread"] is False and env["wsgi.multiprocess"] is False


def test_body_entries(drive: Any) -> None:
    drv = drive(dump_app)
    head = b"POST / HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
    env = environ_of(drv, head + b"Content-Length: 2\r\n\r\n{}")
    assert env["CONTENT_TYPE"] == "application/json"
    assert env["CONTENT_LENGTH"] == "2"
    assert env["input_type"] == "ContentLengthReader"
    env = environ_of(
        drv, b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"
    )
    assert env["wsgi.input_terminated"] is True
    assert env["HTTP_TRANSFER_ENCODING"] == "chunked"
    assert env["input_type"] == "ChunkedReader"


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


def test_handler_subclass_hooks_are_called(drive: Any, logs: LogCapture) -> None:
    CustomHandler.log_calls = []

    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        start_response("200 OK", [])
        keys = [environ["custom.key"], environ["custom.header"], environ["REMOTE_ADDR"]]
        return [json.dumps(keys).encode()]

    drv = drive(app, handler=CustomHandler)
    (resp,) = split_responses(drv.exchange(get("/p?q", "X-Token: t1")))
    assert json.loads(resp.body) == ["yes", "t1", "10.9.8.7"]
    assert CustomHandler.log_calls == [("GET", "/p?q", 200)]
    assert logs.messages[0].startswith("10.9.8.7 - - [")
    assert log_lines(logs) == ['"GET /p?q HTTP/1.1" 200 -']


class RequestLoggingHandler(WSGIRequestHandler):
    """Overrides only ``log_request`` (werkzeug's ``make_environ``)."""

    log_calls: list[tuple[Any, ...]] = []

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        self.log_calls.append(
            (self.command, self.path, self.request_version, self.headers.get("X-Token"), code)
        )


def test_hooks_see_each_request_on_a_keep_alive_connection(drive: Any) -> None:
    # the handler's per-request attributes are bound when a hook runs, not per request
    RequestLoggingHandler.log_calls = []
    drv = drive(hello_app, handler=RequestLoggingHandler)
    drv.exchange(get("/a", "X-Token: one"))
    drv.exchange(get("/b?c", "X-Token: two", method="HEAD"))
    drv.exchange(get("/c", "Connection: keep-alive", version="HTTP/1.0"))
    assert drv.state == PARK
    assert RequestLoggingHandler.log_calls == [
        ("GET", "/a", "HTTP/1.1", "one", 200),
        ("HEAD", "/b?c", "HTTP/1.1", "two", 200),
        ("GET", "/c", "HTTP/1.0", None, 200),
    ]


def test_werkzeug_handler_subclass_runs_the_stdlib_way(drive: Any) -> None:
    class WerkzeugHandler(werkzeug.serving.WSGIRequestHandler):
        protocol_version = "HTTP/1.1"

        def make_environ(self) -> dict[str, Any]:
            environ = super().make_environ()
            environ["from.werkzeug"] = True
            return environ

    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        start_response("200 OK", [])
        return [b"werkzeug handler: %r" % environ["from.werkzeug"]]

    drv = drive(app, handler=WerkzeugHandler)
    data = drv.exchange(get())
    assert drv.states_named() == ["CLOSE"]  # werkzeug's handler always closes
    assert data.startswith(b"HTTP/1.1 200 OK")
    assert b"Connection: close" in data
    assert data.endswith(b"\r\n\r\n16\r\nwerkzeug handler: True\r\n0\r\n\r\n")  # werkzeug chunks


def test_subclass_overriding_the_stdlib_cycle_is_honoured(drive: Any) -> None:
    class Handler(WSGIRequestHandler):
        def send_header(self, keyword: str, value: str) -> None:
            super().send_header(keyword, value.upper() if keyword == "X-Case" else value)

    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        start_response("200 OK", [("X-Case", "lower")])
        return [b"ok"]

    drv = drive(app, handler=Handler)
    data = drv.exchange(get())
    assert drv.state == CLOSE
    assert b"\r\nX-Case: LOWER\r\n" in data


def test_connection_dropped_hook_gets_the_error_and_environ(drive: Any) -> None:
    calls: list[tuple[BaseException, Any]] = []

    class Handler(WSGIRequestHandler):
        def connection_dropped(self, error: BaseException, environ: Any = None) -> None:
            calls.append((error, environ))

    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        raise ConnectionResetError("peer went away")

    drv = drive(app, handler=Handler)
    assert drv.exchange(get("/gone")) == b""  # no 500: the connection is closed
    assert drv.state == CLOSE and drv.client_sees_eof()
    assert len(calls) == 1
    assert isinstance(calls[0][0], ConnectionResetError)
    assert calls[0][1]["PATH_INFO"] == "/gone"


def test_client_gone_mid_response_costs_one_log_line(drive: Any, logs: LogCapture) -> None:
    def app(environ: dict[str, Any], start_response: Any) -> Any:
        start_response("200 OK", [])
        drv.client.close()  # the client goes away while the app streams
        for _ in range(100):
            yield b"x" * 65536

    drv = drive(app)
    drv.send(get("/stream"))
    assert drv.run() == CLOSE
    lines = log_lines(logs)
    assert lines[0] == '"GET /stream HTTP/1.1" 200 -'
    assert len(lines) == 2
    assert lines[1].startswith("Client disconnected while sending the response: ")


def test_raising_log_request_is_logged_once_and_the_response_arrives(
    drive: Any, logs: LogCapture
) -> None:
    class Handler(WSGIRequestHandler):
        def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
            if self.path == "/boom":
                raise RuntimeError("log_request exploded")
            super().log_request(code, size)

    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        body = environ["PATH_INFO"].encode()
        start_response("200 OK", [("Content-Length", str(len(body)))])
        return [body]

    drv = drive(app, handler=Handler)
    data = drv.exchange(get("/boom") + get("/after"))
    assert [r.body for r in split_responses(data)] == [b"/boom", b"/after"]
    assert drv.state == PARK
    lines = log_lines(logs)
    assert len(lines) == 2
    assert lines[0].startswith("Error in the request handler's log_request():\nTraceback")
    assert "RuntimeError: log_request exploded" in lines[0]
    assert lines[1] == '"GET /after HTTP/1.1" 200 -'


def test_upgrade_request_is_never_kept_alive(drive: Any) -> None:
    drv = drive(hello_app)
    data = drv.exchange(get("/ws", "Connection: Upgrade", "Upgrade: websocket"))
    (resp,) = split_responses(data)
    assert resp.header("Connection") == "close"
    assert drv.state == LINGER  # half-closed: a websocket peer may still be sending


def test_app_taking_the_socket_over_is_forgotten(drive: Any, logs: LogCapture) -> None:
    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        start_response("200 OK", [])
        sock = environ["werkzeug.socket"]
        sock.sendall(b"raw bytes from the app")
        sock.close()
        return []

    drv = drive(app)
    drv.send(get("/ws", "Connection: Upgrade", "Upgrade: websocket"))
    drv.run()
    assert drv.states_named() == ["GONE"] and drv.gone
    assert drv.read_to_eof() == b"raw bytes from the app"
    assert log_lines(logs) == ['"GET /ws HTTP/1.1" 200 -']  # and no traceback


def test_post_with_an_app_that_ignores_the_environ_keys(drive: Any) -> None:
    drv = drive(hello_app)
    (resp,) = split_responses(drv.exchange(post("/p", b"abc", "Content-Type: text/plain")))
    assert resp.body == b"hello /p"


def test_each_request_on_a_connection_gets_its_own_environ(drive: Any) -> None:
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

    drv = drive(app)
    for path in ("/one", "/two"):
        (resp,) = split_responses(drv.exchange(get(path)))
        assert resp.status == 200
    first, second = seen
    assert second["PATH_INFO"] == "/two" and "app.key" not in second
    assert second["REMOTE_ADDR"] == first["REMOTE_ADDR"] == PEER[0]
    assert second["SERVER_NAME"] == first["SERVER_NAME"] == "127.0.0.1"
    assert second["werkzeug.socket"] is first["werkzeug.socket"]
    varying = ("PATH_INFO", "REQUEST_URI", "RAW_URI")
    assert {k: v for k, v in first.items() if k not in varying} == {
        k: v for k, v in second.items() if k not in varying
    }


def test_wsgi_errors_is_the_stderr_of_the_request(drive: Any, monkeypatch: Any) -> None:
    """werkzeug's make_environ reads ``sys.stderr`` per request; so does fastserve, on a
    keep-alive connection too (the connection's other entries are set once)."""
    seen: list[Any] = []

    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        seen.append((environ["wsgi.errors"], sys.stderr))
        start_response("200 OK", [("Content-Length", "0")])
        return []

    drv = drive(app)
    assert split_responses(drv.exchange(get()))[0].status == 200
    swapped = io.StringIO()
    monkeypatch.setattr(sys, "stderr", swapped)
    assert split_responses(drv.exchange(get()))[0].status == 200
    assert seen[0][0] is seen[0][1] and seen[0][0] is not swapped
    assert seen[1][0] is swapped and seen[1][1] is swapped


class VersionHandler(WSGIRequestHandler):
    def version_string(self) -> str:
        return f"Custom/{self.client_address[1]}"


class SysVersionHandler(WSGIRequestHandler):
    sys_version = "Interp/9"


class ServerVersionHandler(WSGIRequestHandler):
    server_version = "Plain/2"


@pytest.mark.parametrize(
    ("handler", "expected"),
    [
        (None, f"fastserve/{__version__} Python/{sys.version.split()[0]}"),
        (VersionHandler, f"Custom/{PEER[1]}"),
        (SysVersionHandler, f"fastserve/{__version__} Interp/9"),
        (ServerVersionHandler, f"Plain/2 Python/{sys.version.split()[0]}"),
    ],
)
def test_server_header_is_the_handlers_version_string(
    drive: Any, handler: Any, expected: str
) -> None:
    """The Server field is ``version_string()`` as werkzeug sends it, whichever of its
    parts a handler class overrides (the stock one's line is kept per server version)."""
    for _ in range(2):  # a second connection of the class gets the same line
        drv = drive(hello_app, handler=handler)
        (resp,) = split_responses(drv.exchange(get()))
        assert resp.header("Server") == expected


def test_server_header_follows_the_servers_version(drive: Any) -> None:
    """Two servers with different ``_server_version`` each get their own Server line."""
    first = drive(hello_app)
    second = drive(hello_app)
    second.server._server_version = "Renamed/3"
    second.conn = HTTPConnection(second.server, second.sock, PEER)
    assert split_responses(first.exchange(get()))[0].header("Server").startswith("fastserve/")
    (resp,) = split_responses(second.exchange(get()))
    assert resp.header("Server") == f"Renamed/3 Python/{sys.version.split()[0]}"
