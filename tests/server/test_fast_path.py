"""The compiled request cycle (``_fastpath.pxi``) against its Python twin.

Every scenario - an application, the bytes a client sent, the server's settings -
runs twice over a ``socket.socketpair()``: once through ``HTTPConnection._process``
with the fast path, once with it disabled (``conn.fast = None``, the Python path
that defines the behaviour). The bytes on the wire, the states returned, the
connection's state afterwards and the log lines must be identical. With the
pure-Python parser (the ``py`` run, ``FASTSERVE_NO_EXTENSIONS``) there is no fast
path and the test checks only that.
"""

from __future__ import annotations

import logging
import re
import socket
from collections.abc import Callable, Iterator
from types import ModuleType
from typing import Any

import pytest
from server_helpers import LogCapture

from fastserve.connection import DEFER, PARK, WRITE, HTTPConnection, WSGIRequestHandler
from fastserve.server import make_server

App = Callable[[dict[str, Any], Any], Any]

HELLO = b"Hello, World!"
GET = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"


def app_for(status: str = "200 OK", headers: Any = None, body: Any = None) -> App:
    """An application returning ``body`` (a list by default) with ``status``/``headers``."""

    def app(environ: dict[str, Any], start_response: Any) -> Any:
        hs = [("Content-Type", "text/plain")] if headers is None else list(headers)
        start_response(status, hs)
        return [HELLO] if body is None else body

    return app


def sized(status: str = "200 OK", length: int = len(HELLO), pieces: Any = None) -> App:
    return app_for(status, [("Content-Length", str(length))], pieces)


def raising_before(environ: dict[str, Any], start_response: Any) -> Any:
    raise RuntimeError("boom before start_response")


def raising_after(environ: dict[str, Any], start_response: Any) -> Any:
    start_response("200 OK", [])
    raise ValueError("boom after start_response")


def twice(environ: dict[str, Any], start_response: Any) -> Any:
    start_response("200 OK", [])
    start_response("200 OK", [])
    return [HELLO]


def with_exc_info(environ: dict[str, Any], start_response: Any) -> Any:
    start_response("200 OK", [])
    try:
        raise KeyError("x")
    except KeyError:
        import sys

        start_response("500 Oops", [("Content-Length", "3")], sys.exc_info())
    return [b"bad"]


def writer(environ: dict[str, Any], start_response: Any) -> Any:
    write = start_response("200 OK", [("Content-Length", "10")])
    write(b"01234")
    return [b"56789"]


def generator(environ: dict[str, Any], start_response: Any) -> Any:
    start_response("200 OK", [])
    yield b"a"
    yield b"bc"


def lazy_generator(environ: dict[str, Any], start_response: Any) -> Any:
    def gen() -> Iterator[bytes]:
        start_response("200 OK", [("Content-Length", "2")])
        yield b"ok"

    return gen()


class Closing:
    """A non-list iterable with ``close()`` and a declared Content-Length (Flask)."""

    def __init__(self, environ: dict[str, Any], start_response: Any) -> None:
        start_response("200 OK", [("Content-Length", "5")])

    def __iter__(self) -> Iterator[bytes]:
        yield b"hello"

    def close(self) -> None:
        pass


def iterable_for(length: int | None, pieces: list[Any], fail: str = "") -> App:
    """An application returning a non-list iterable (``close()`` included), Content-Length
    ``length`` (None: none), that fails at ``fail`` ("iter", "first", "second", "close")."""

    class Body:
        def __init__(self, environ: dict[str, Any], start_response: Any) -> None:
            headers = [] if length is None else [("Content-Length", str(length))]
            start_response("200 OK", headers)

        def __iter__(self) -> Iterator[Any]:
            if fail == "iter":
                raise RuntimeError("iter failed")
            return self.pieces()

        def pieces(self) -> Iterator[Any]:
            if fail == "first":
                raise RuntimeError("first piece failed")
            for n, piece in enumerate(pieces):
                yield piece
                if n == 0 and fail == "second":
                    raise RuntimeError("second piece failed")

        def close(self) -> None:
            if fail == "close":
                raise RuntimeError("close failed")

    return Body


def echo_environ(environ: dict[str, Any], start_response: Any) -> Any:
    keys = sorted(k for k in environ if k.isupper() and k not in VARYING)
    body = "\n".join(f"{k}={environ[k]}" for k in keys).encode("latin-1", "replace")
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [body]


def reads_body(environ: dict[str, Any], start_response: Any) -> Any:
    data = environ["wsgi.input"].read()
    start_response("200 OK", [])
    return [data]


def takes_socket(environ: dict[str, Any], start_response: Any) -> Any:
    environ["werkzeug.socket"].close()
    start_response("200 OK", [])
    return [HELLO]


def bad_header(environ: dict[str, Any], start_response: Any) -> Any:
    start_response("200 OK", [("X-Bad", "a\r\nb")])
    return [HELLO]


def bytes_status(environ: dict[str, Any], start_response: Any) -> Any:
    start_response(b"200 OK", [])
    return [HELLO]


def str_body(environ: dict[str, Any], start_response: Any) -> Any:
    start_response("200 OK", [])
    return ["text"]


REQUESTS: dict[str, bytes] = {
    "get": GET,
    "head": b"HEAD / HTTP/1.1\r\nHost: x\r\n\r\n",
    "client close": b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    "1.0": b"GET / HTTP/1.0\r\nHost: x\r\n\r\n",
    "1.0 keep-alive": b"GET / HTTP/1.0\r\nHost: x\r\nConnection: keep-alive\r\n\r\n",
    "pipelined": GET + b"GET /two?q=1 HTTP/1.1\r\nHost: x\r\n\r\n" + GET,
    "pipelined 1.0": b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n" + GET,
    "pipelined then partial": GET + b"GET /partial HTTP/1.1\r\nHo",
    "partial": b"GET / HTTP/1.1\r\nHost",
    "post": b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc" + GET,
    "post, body missing": b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\na",
    "chunked": b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
    b"3\r\nabc\r\n0\r\n\r\n" + GET,
    "upgrade": b"GET / HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n",
    "bad": GET + b"GET /x HTTP/1.1\r\nHost: x\r\nBad Name: y\r\n\r\n",
    "many fields": b"GET /f HTTP/1.1\r\n"
    + b"".join(b"X-F%d: %d\r\n" % (i, i) for i in range(30))
    + b"\r\n",
}

APPS: dict[str, App] = {
    "hello": sized(),
    "no length": app_for(),
    "length short": sized(length=20),
    "length long": sized(length=5),
    "pieces": app_for(body=[b"a", b"bc", b"", b"def"]),
    "pieces sized": sized(length=6, pieces=[b"a", b"bc", b"", b"def"]),
    "empty body": app_for(body=[b""]),
    "empty list": app_for(body=[]),
    "large": app_for(body=[b"x" * 70000]),
    "large pieces": app_for(body=[b"x" * 40000, b"y" * 40000]),
    "201": app_for("201 Created"),
    "204": app_for("204 No Content", [], [b""]),
    "304": app_for("304 Not Modified", [], []),
    "404": sized("404 NOT FOUND"),
    "500": app_for("500 INTERNAL SERVER ERROR"),
    "100": app_for("100 Continue", [], []),
    "101": app_for("101 Switching Protocols", [("Upgrade", "x")], []),
    "app close": app_for(headers=[("Connection", "close")]),
    "app close sized": app_for(headers=[("Connection", "Close"), ("Content-Length", "13")]),
    "app keep-alive": app_for(headers=[("Connection", "keep-alive")]),
    "app te": app_for(
        headers=[("Transfer-Encoding", "chunked")], body=[b"5\r\nhello\r\n0\r\n\r\n"]
    ),
    "tuple headers": app_for(headers=(("Content-Type", "text/plain"),)),
    "bytearray": app_for(body=[bytearray(b"ba")]),
    "str body": str_body,
    "bytes status": bytes_status,
    "bad header": bad_header,
    "raising before": raising_before,
    "raising after": raising_after,
    "twice": twice,
    "exc_info": with_exc_info,
    "write": writer,
    "generator": generator,
    "lazy generator": lazy_generator,
    "closing iterable": Closing,
    "iterable exact": iterable_for(5, [b"hello"]),
    "iterable two pieces": iterable_for(5, [b"hel", b"lo"]),
    "iterable empty first": iterable_for(5, [b"", b"hello"]),
    "iterable over": iterable_for(5, [b"hello", b"!"]),
    "iterable over empty": iterable_for(5, [b"hello", b""]),
    "iterable long": iterable_for(9, [b"hello"]),
    "iterable short": iterable_for(3, [b"hello"]),
    "iterable no length": iterable_for(None, [b"hello"]),
    "iterable empty": iterable_for(0, []),
    "iterable str": iterable_for(5, ["hello"]),
    "iterable large": iterable_for(70000, [b"x" * 70000]),
    "iterable fails iter": iterable_for(5, [b"hello"], "iter"),
    "iterable fails first": iterable_for(5, [b"hello"], "first"),
    "iterable fails second": iterable_for(5, [b"hello"], "second"),
    "iterable fails close": iterable_for(5, [b"hello"], "close"),
    "environ": echo_environ,
    "reads body": reads_body,
    "takes socket": takes_socket,
}

# each run has a server (and a port) of its own
VARYING = ("werkzeug.socket", "SERVER_PORT", "wsgi.input")
DATE = re.compile(rb"Date: [^\r]*\r\n")
LOG_DATE = re.compile(r"\[\d\d/\w\w\w/\d{4} \d\d:\d\d:\d\d\] ")


@pytest.fixture
def capture() -> Iterator[LogCapture]:
    logger = logging.getLogger("werkzeug")
    handler = LogCapture()
    old_level = logger.level
    logger.addHandler(handler)
    yield handler
    logger.removeHandler(handler)
    logger.setLevel(old_level)


class OwnLog(WSGIRequestHandler):
    """Overrides ``log_request``: the access line is not skipped when INFO is off."""

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        self.log("info", "own %s %s", code, self.path)


def normalized_log(capture: LogCapture) -> list[str]:
    lines = []
    for message in capture.messages:
        message = LOG_DATE.sub("", message)
        if message.startswith("Error on request"):
            # the traceback's middle frames name the path taken; its end does not
            message = message.splitlines()[0] + " ... " + message.rstrip().splitlines()[-1]
        lines.append(message)
    capture.records.clear()
    return lines


def drain(sock: socket.socket) -> bytes:
    chunks = []
    while True:
        try:
            data = sock.recv(1 << 20, socket.MSG_DONTWAIT)
        except BlockingIOError:
            break
        if not data:
            break
        chunks.append(data)
    return b"".join(chunks)


def flushed(conn: HTTPConnection, state: int) -> int:
    """What the engine does with a DEFER state after its batch: flush() (once)."""
    if state != DEFER:
        return state
    state = conn.fast.flush(conn)
    assert conn.fast.flush(conn) is None  # sent once
    return state


def run(
    app: App,
    request: bytes,
    fast: bool,
    capture: LogCapture,
    *,
    threaded: bool = True,
    closing: bool = False,
    handler: type | None = None,
    full: bool = False,
    passthrough: bool = False,
    defer: bool = False,
) -> tuple[Any, ...]:
    """One scenario: what the client received, the states, the connection, the log.
    ``defer``: the engine's send batch is open (a response the fast path keeps is
    sent by ``flush()``, as the engine does after its batch)."""
    server = make_server(
        "127.0.0.1",
        0,
        app,
        threaded=threaded,
        request_handler=handler,
        passthrough_errors=passthrough,
    )
    if full:
        server.send_timeout = 0.05  # a blocking send (an error page) gives up soon
    ours, client = socket.socketpair()
    try:
        conn = HTTPConnection(server, ours, ("127.0.0.1", 40000))
        had_fast = conn.fast is not None
        if not fast:
            conn.fast = None
        server._closing = closing
        prefill = b""
        if full:  # the kernel takes nothing more: the response waits in conn.out
            ours.setblocking(False)
            try:
                while True:
                    prefill += b"." * ours.send(b"." * 65536)
            except BlockingIOError:
                pass
            ours.setblocking(True)
        states: list[Any] = []
        conn.defer = defer
        try:
            states.append(flushed(conn, conn._process(request)))
        except Exception as e:  # passthrough_errors
            states.append(repr(e))
        received = drain(client)
        while states[-1] == WRITE:
            states.append(flushed(conn, conn.on_writable()))
            received += drain(client)
        assert received[: len(prefill)] == prefill
        received = DATE.sub(b"Date: -\r\n", received[len(prefill) :])
        exchange = conn.exchange
        env = conn.env
        state = (
            conn.buf,
            b"".join(bytes(d) for d in conn.out),
            conn.writing,
            conn.waiting,
            conn.expect,
            conn.send_failed,
            bool(conn.head_started),
            type(conn.reader).__name__,
            None if env is None else {k: v for k, v in env.items() if k not in VARYING},
            None if env is None else type(env["wsgi.input"]).__name__,
            None if states[-1] != WRITE or exchange is None else exchange.keep,
            ours.fileno() < 0,
        )
        return had_fast, received, states, state, normalized_log(capture)
    finally:
        ours.close()
        client.close()
        server.server_close()


def compare(
    capture: LogCapture,
    server_parser: ModuleType,
    app: App,
    request: bytes,
    defer: bool = False,
    **kw: Any,
) -> None:
    had_fast, *fast = run(app, request, True, capture, defer=defer, **kw)
    _, *slow = run(app, request, False, capture, **kw)
    if server_parser.__name__.endswith("_py"):
        assert not had_fast  # the twin has no fast path
    elif kw.get("handler") is None:
        assert had_fast
    assert fast == slow


@pytest.mark.parametrize("defer", [False, True], ids=["now", "batched"])
@pytest.mark.parametrize("request_name", sorted(REQUESTS))
@pytest.mark.parametrize("app_name", sorted(APPS))
def test_same_as_python(
    capture: LogCapture,
    server_parser: ModuleType,
    app_name: str,
    request_name: str,
    defer: bool,
) -> None:
    logging.getLogger("werkzeug").setLevel(logging.INFO)
    compare(capture, server_parser, APPS[app_name], REQUESTS[request_name], defer)


@pytest.mark.parametrize("request_name", ["get", "pipelined", "1.0 keep-alive", "client close"])
@pytest.mark.parametrize(
    "app_name",
    [
        "hello",
        "no length",
        "app close",
        "404",
        "raising after",
        "iterable exact",
        "iterable over",
        "iterable fails close",
    ],
)
@pytest.mark.parametrize(
    "options",
    [
        {"log": False},
        {"threaded": False},
        {"closing": True},
        {"handler": OwnLog, "log": False},
        {"full": True},
        {"full": True, "log": False},
        {"passthrough": True},
        {"defer": True, "closing": True},
        {"defer": True, "full": True},
        {"defer": True, "passthrough": True},
    ],
    ids=lambda o: ",".join(f"{k}={getattr(v, '__name__', v)}" for k, v in o.items()),
)
def test_same_as_python_with(
    capture: LogCapture,
    server_parser: ModuleType,
    app_name: str,
    request_name: str,
    options: dict[str, Any],
) -> None:
    options = dict(options)
    log = options.pop("log", True)
    logging.getLogger("werkzeug").setLevel(logging.INFO if log else logging.WARNING)
    compare(capture, server_parser, APPS[app_name], REQUESTS[request_name], **options)


def test_fast_path_taken(capture: LogCapture, server_parser: ModuleType) -> None:
    """A plain hello-world request never builds the Python Exchange; with the
    pure-Python parser the connection has no fast path at all."""
    server = make_server("127.0.0.1", 0, APPS["hello"], threaded=True)
    ours, client = socket.socketpair()
    try:
        conn = HTTPConnection(server, ours, ("127.0.0.1", 40000))
        if server_parser.__name__.endswith("_py"):
            assert conn.fast is None
            assert conn._process(GET) == 0
            assert drain(client).endswith(HELLO)
            return
        assert conn.fast is not None
        assert conn._process(GET + GET) == 0
        assert conn.exchange is None
        assert drain(client).count(HELLO) == 2
        assert conn._process(REQUESTS["head"]) == 0
        assert conn.exchange is not None  # HEAD: the Python path
        conn.exchange = None
        server.app = APPS["iterable exact"]  # Flask's shape: an iterable with its length
        assert conn._process(GET) == 0
        assert conn.exchange is None
        assert drain(client).endswith(b"\r\n\r\nhello")
    finally:
        ours.close()
        client.close()
        server.server_close()


@pytest.mark.parametrize("app_name", ["hello", "iterable exact", "closing iterable"])
def test_send_batch(capture: LogCapture, server_parser: ModuleType, app_name: str) -> None:
    """With the engine's send batch open, the fast path keeps a complete keep-alive
    response (DEFER) until flush(); not when more requests are pipelined behind it
    or the connection closes. The Python path always sends at once."""
    server = make_server("127.0.0.1", 0, APPS[app_name], threaded=True)
    ours, client = socket.socketpair()
    try:
        conn = HTTPConnection(server, ours, ("127.0.0.1", 40000))
        conn.defer = True
        if server_parser.__name__.endswith("_py"):
            assert conn._process(GET) == PARK
            assert drain(client).startswith(b"HTTP/1.1 200 OK\r\n")
            return
        assert conn._process(GET) == DEFER
        assert drain(client) == b""
        assert conn.fast.flush(conn) == PARK
        first = DATE.sub(b"", drain(client))
        assert first.startswith(b"HTTP/1.1 200 OK\r\n")
        assert conn.fast.flush(conn) is None
        assert conn._process(GET + GET) == DEFER  # the first one went out at once
        assert DATE.sub(b"", drain(client)) == first
        assert conn.fast.flush(conn) == PARK
        assert DATE.sub(b"", drain(client)) == first
        assert conn._process(REQUESTS["client close"]) == 1  # CLOSE: sent at once
        assert b"Connection: close\r\n" in drain(client)
    finally:
        ours.close()
        client.close()
        server.server_close()
