"""WSGI and Flask apps that the live tests serve (imported by ``serve_live.py``).

``echo`` answers with a JSON description of the request (after reading the
whole body) and records every call, so a test can prove that a refused request
never reached the app: ``GET /calls`` returns the recorded calls and is itself
not recorded, nor is the readiness probe ``/ensure``.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any

StartResponse = Callable[..., Any]
WSGIApp = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]

_calls: list[dict[str, Any]] = []
_calls_lock = threading.Lock()
_released = threading.Event()
_closed: list[str] = []  # paths whose response iterable was closed


class _Tracked:
    """A response iterable that records its ``close()`` (PEP 3333: always called)."""

    def __init__(self, path: str, pieces: Iterator[bytes]) -> None:
        self.path, self.pieces = path, pieces

    def __iter__(self) -> Iterator[bytes]:
        return self.pieces

    def close(self) -> None:
        with _calls_lock:
            _closed.append(self.path)


def _forever() -> Iterator[bytes]:
    while True:
        time.sleep(0.01)
        yield b"tick\n"


def _then_fail() -> Iterator[bytes]:
    yield b"partial"
    raise RuntimeError("failed after the first body byte")


def _json(start_response: StartResponse, data: Any, status: str = "200 OK") -> list[bytes]:
    body = json.dumps(data).encode()
    start_response(
        status, [("Content-Type", "application/json"), ("Content-Length", str(len(body)))]
    )
    return [body]


def _read_body(environ: dict[str, Any]) -> bytes:
    stream = environ["wsgi.input"]
    if environ.get("wsgi.input_terminated"):
        return b"".join(iter(lambda: stream.read(65536), b""))
    length = int(environ.get("CONTENT_LENGTH") or 0)
    parts, remaining = [], length
    while remaining > 0:
        chunk = stream.read(min(remaining, 65536))
        if not chunk:
            break
        parts.append(chunk)
        remaining -= len(chunk)
    return b"".join(parts)


def _stream(count: int, delay: float) -> Iterator[bytes]:
    for i in range(count):
        if delay:
            time.sleep(delay)
        yield f"{i}\n".encode()


def echo(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
    path = environ["PATH_INFO"]
    if path == "/ensure":
        start_response("200 OK", [("Content-Length", "0")])
        return []
    if path == "/calls":
        with _calls_lock:
            return _json(start_response, list(_calls))
    with _calls_lock:
        _calls.append({"method": environ["REQUEST_METHOD"], "path": path})
    if path == "/crash":
        raise RuntimeError("crash requested")
    if path == "/stream":
        start_response("200 OK", [("Content-Type", "text/plain")])
        return _stream(5, 0.0)
    if path == "/noread":
        start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "7")])
        return [b"ignored"]
    if path.startswith("/status/"):
        code = int(path.rsplit("/", 1)[1])
        start_response(f"{code} Custom", [("Content-Length", "0")])
        return []
    if path == "/threads":
        return _json(start_response, {"threads": threading.active_count()})
    if path == "/block":  # holds its thread until /release (or 30 s)
        released = _released.wait(30)
        return _json(start_response, {"released": released})
    if path == "/release":
        _released.set()
        return _json(start_response, {"released": True})
    if path == "/badheader":
        start_response("200 OK", [("X-Bad", "a\r\nInjected: 1"), ("Content-Length", "2")])
        return [b"ok"]
    if path == "/short":  # declares more than it sends
        start_response("200 OK", [("Content-Length", "10")])
        return [b"12345"]
    if path == "/long":  # declares less than it sends
        start_response("200 OK", [("Content-Length", "3")])
        return [b"too", b"long"]
    if path == "/write":
        write = start_response("200 OK", [("Content-Type", "text/plain")])
        write(b"via ")
        write(b"write")
        return [b"+iterable"]
    if path == "/closed":
        with _calls_lock:
            return _json(start_response, list(_closed))
    if path == "/forever":  # streams until the client goes away
        start_response("200 OK", [("Content-Type", "text/plain")])
        return _Tracked(path, _forever())
    if path == "/tracked":
        start_response("200 OK", [("Content-Length", "4")])
        return _Tracked(path, iter([b"done"]))
    if path == "/fail-after-body":  # declared length, error after the first byte
        start_response("200 OK", [("Content-Length", "100")])
        return _Tracked(path, _then_fail())
    if path == "/exc-info":  # replaces its status before anything was sent
        start_response("200 OK", [("Content-Type", "text/plain")])
        try:
            raise ValueError("changed my mind")
        except ValueError:
            start_response("503 Changed Mind", [("Content-Length", "7")], sys.exc_info())
        return [b"retried"]
    if path == "/cookies":
        cookies = [("Set-Cookie", f"c{i}={i}; Path=/") for i in range(3)]
        start_response("200 OK", [*cookies, ("Content-Length", "0")])
        return []
    if path == "/latin1":
        start_response("200 OK", [("X-Latin", "caf\u00e9"), ("Content-Length", "0")])
        return []
    if path == "/readall":  # read() without a size, as many apps do
        data = environ["wsgi.input"].read()
        return _json(start_response, {"body": data.decode("latin-1")})
    if path == "/app-close":  # the app asks for the connection to close
        start_response("200 OK", [("Content-Length", "3"), ("Connection", "close")])
        return [b"bye"]
    if path == "/many-headers":
        headers = [(f"X-Header-{i}", f"value {i}") for i in range(90)]  # http.client takes 100
        start_response("200 OK", [*headers, ("Content-Length", "2")])
        return [b"ok"]
    if path == "/big":  # 4 MiB of "x", or ?mb=N MiB
        size = int(environ["QUERY_STRING"].partition("mb=")[2] or 4) * 1024 * 1024
        piece = b"x" * 65536
        start_response("200 OK", [("Content-Length", str(size))])
        return (piece for _ in range(size // len(piece)))
    body = _read_body(environ)
    return _json(
        start_response,
        {
            "method": environ["REQUEST_METHOD"],
            "path": path,
            "query": environ["QUERY_STRING"],
            "protocol": environ["SERVER_PROTOCOL"],
            "scheme": environ["wsgi.url_scheme"],
            "remote_addr": environ["REMOTE_ADDR"],
            "remote_port": environ["REMOTE_PORT"],
            "content_length": environ.get("CONTENT_LENGTH"),
            "content_type": environ.get("CONTENT_TYPE"),
            "input_terminated": bool(environ.get("wsgi.input_terminated")),
            "headers": {k: v for k, v in environ.items() if k.startswith("HTTP_")},
            "body_length": len(body),
            "body_sha256": hashlib.sha256(body).hexdigest(),
            "body": body[:200].decode("latin-1"),
        },
    )


def make_flask_app() -> Any:
    """A Flask app with the features users hit first."""
    from flask import Flask, Response, abort, jsonify, request, send_file, stream_with_context

    app = Flask("fastserve_live")
    app.config["MAX_CONTENT_LENGTH"] = 64 * 1024

    @app.get("/")
    def index() -> str:
        return "Hello from Flask"

    @app.get("/ensure")
    def ensure() -> str:
        return ""

    @app.post("/json")
    def json_echo() -> Any:
        return jsonify(received=request.get_json(), method=request.method)

    @app.get("/json")
    def json_get() -> Any:
        return jsonify(answer=42, items=[1, 2, 3])

    @app.post("/form")
    def form() -> Any:
        return jsonify(form=request.form.to_dict(), files=sorted(request.files))

    @app.post("/data")
    def data() -> Any:
        body = request.get_data()
        return jsonify(length=len(body), sha256=hashlib.sha256(body).hexdigest())

    @app.get("/stream")
    def stream() -> Response:
        def generate() -> Iterator[str]:
            for i in range(5):
                yield f"line {i}\n"

        return Response(stream_with_context(generate()), mimetype="text/plain")

    @app.get("/error")
    def error() -> str:
        raise RuntimeError("boom from a Flask view")

    @app.get("/teapot")
    def teapot() -> str:
        abort(418)

    @app.get("/file")
    def file() -> Response:
        """A 1 MiB file through send_file: ETag, conditional requests, byte ranges."""
        path = os.path.abspath(f"file-{os.getpid()}.bin")  # cwd: the test's scratch dir
        if not os.path.exists(path):
            with open(path, "wb") as f:
                f.write(bytes(range(256)) * 4096)
        return send_file(path, mimetype="application/octet-stream", conditional=True)

    return app


def make_sock_app() -> Any:
    """A flask-sock echo websocket: proves ``werkzeug.socket`` takeover works."""
    from flask import Flask
    from flask_sock import Sock

    app = Flask("fastserve_live_sock")
    sock = Sock(app)

    @app.get("/ensure")
    def ensure() -> str:
        return ""

    @app.get("/")
    def index() -> str:
        return "plain HTTP still works"

    @sock.route("/echo")
    def echo_ws(ws: Any) -> None:
        while True:
            message = ws.receive()
            if message == "bye":
                ws.close(reason=1000, message="bye")
                return
            ws.send(message)

    return app


APPS: dict[str, Callable[[], WSGIApp]] = {
    "echo": lambda: echo,
    "flask": make_flask_app,
    "sock": make_sock_app,
}
