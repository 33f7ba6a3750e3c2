"""The per-request Python work of one keep-alive request, with and without the fast path.

Builds an ``HTTPConnection`` on an accepted loopback socket, replaces its socket
by a stub whose ``send()`` takes everything, and serves the same 4-field head
through ``HTTPConnection._process`` again and again; the fast path
(``_fastpath.pxi``) and the Python path (``conn.fast = None``) alternate, so the
two figures come from the same minutes of a shared machine. Prints the median and
the minimum of the rounds in microseconds per request, and their ratio.

Usage::

    python bench/bench_stub_cycle.py            # hello world (a list response)
    python bench/bench_stub_cycle.py flask      # a one-route Flask app
"""

from __future__ import annotations

import gc
import logging
import socket
import statistics
import sys
import time
from typing import Any

from fastserve import make_server
from fastserve.connection import HTTPConnection

REQUEST = b"GET / HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nUser-Agent: wrk\r\nAccept: */*\r\n\r\n"


def hello(environ: dict[str, Any], start_response: Any) -> list[bytes]:
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "13")])
    return [b"Hello, World!"]


def flask_app() -> Any:
    from flask import Flask

    app = Flask("bench")

    @app.route("/")
    def index() -> str:
        return "Hello, World!"

    return app


class StubSocket:
    """The accepted socket, except that ``send()`` takes everything at once."""

    def __init__(self, real: socket.socket) -> None:
        self.real = real

    def send(self, data: bytes, flags: int = 0) -> int:
        return len(data)

    def fileno(self) -> int:
        return self.real.fileno()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.real, name)


def main(argv: list[str]) -> int:
    flask = bool(argv) and argv[0] == "flask"
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    server = make_server("127.0.0.1", 0, flask_app() if flask else hello, threaded=True)
    client = socket.create_connection(server.server_address[:2])
    sock, addr = server.socket.accept()
    conn = HTTPConnection(server, sock, addr)
    conn.sock = StubSocket(sock)
    fast = conn.fast
    count = 10_000 if flask else 50_000
    process = conn._process
    for _ in range(1000):
        process(REQUEST)
    gc.freeze()
    rounds: dict[str, list[float]] = {"fast path": [], "python path": []}
    for _ in range(9):
        for name, times in rounds.items():
            conn.fast = fast if name == "fast path" else None
            start = time.perf_counter()
            for _ in range(count):
                process(REQUEST)
            times.append((time.perf_counter() - start) / count * 1e6)
    for name, times in rounds.items():
        print(f"{name:12} median {statistics.median(times):7.3f}  min {min(times):7.3f} us/request")
    if fast is None:
        print("no fast path (pure-Python parser): both rows are the Python path")
    else:
        ratio = statistics.median(rounds["fast path"]) / statistics.median(rounds["python path"])
        print(f"fast / python (medians): {ratio:.2f}")
    client.close()
    sock.close()
    server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
