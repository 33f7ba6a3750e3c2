"""The bundled load generator, for machines without wrk.

``python -m fastserve._bench.loadgen --port P --connections C --duration S``
prints one JSON object (:meth:`LoadResult.to_json`). It runs in its own
process, so that its CPU time can be measured apart from the benchmark's
(see ``drivers.py``), and several can run side by side.

One thread and one selector loop drive ``C`` connections to 127.0.0.1. Each
connection sends a request, reads the whole response - delimited by
``Content-Length``, by chunked framing or by the close of the connection
(RFC 9112 §6.3) - and sends the next request on the same connection unless
the request or the response said ``Connection: close`` or the response was
HTTP/1.0 without keep-alive (RFC 9112 §9.3); then it opens a new one. A
latency runs from the request's first byte to the response's last, as wrk
measures it.

Counted as errors, by kind: ``connect`` (refused or failed), ``read`` (reset,
or closed before the response was complete), ``timeout`` (no complete
response within ``--timeout``), ``status`` (a response with status >= 400, as
wrk counts "Non-2xx or 3xx responses"; it still counts as a request). A
connection that failed to connect is retried after 10 ms, so a refusing
server is not hammered in a busy loop.
"""

from __future__ import annotations

import argparse
import errno
import json
import math
import selectors
import socket
import sys
import time
from dataclasses import dataclass, field
from typing import Final

__all__ = ["Histogram", "LoadResult", "build_request", "run_load"]

HOST: Final = "127.0.0.1"
MAX_HEAD: Final = 65536
RETRY_DELAY: Final = 0.01
#: a histogram bucket is 2% wide: quantiles are good to about 1%
_STEP: Final = math.log(1.02)

_CONNECTING, _SENDING, _READING = 0, 1, 2


@dataclass
class Histogram:
    """Latencies in log-spaced buckets: mergeable across processes, quantiles to ~1%."""

    counts: dict[int, int] = field(default_factory=dict)

    def add(self, seconds: float) -> None:
        bucket = int(math.log(max(seconds, 1e-6) * 1e6) / _STEP)
        self.counts[bucket] = self.counts.get(bucket, 0) + 1

    def merge(self, other: Histogram) -> None:
        for bucket, n in other.counts.items():
            self.counts[bucket] = self.counts.get(bucket, 0) + n

    def quantile(self, q: float) -> float:
        """The ``q`` quantile in seconds (the middle of its bucket); NaN when empty."""
        total = sum(self.counts.values())
        if not total:
            return math.nan
        rank, seen = q * total, 0
        for bucket in sorted(self.counts):
            seen += self.counts[bucket]
            if seen >= rank:
                return math.exp((bucket + 0.5) * _STEP) / 1e6
        return math.exp((max(self.counts) + 0.5) * _STEP) / 1e6


@dataclass
class LoadResult:
    """What one run of the load generator counted."""

    requests: int
    errors: dict[str, int]
    elapsed: float
    latency: Histogram

    def to_json(self) -> str:
        return json.dumps(
            {
                "requests": self.requests,
                "errors": self.errors,
                "elapsed": self.elapsed,
                "latency": {str(k): v for k, v in self.latency.counts.items()},
            }
        )

    @classmethod
    def from_json(cls, text: str) -> LoadResult:
        data = json.loads(text)
        hist = Histogram({int(k): int(v) for k, v in data["latency"].items()})
        return cls(int(data["requests"]), dict(data["errors"]), float(data["elapsed"]), hist)


def build_request(port: int, path: str = "/", *, close: bool = False, body_size: int = 0) -> bytes:
    """A GET (or, with ``body_size``, a POST of that many bytes) for 127.0.0.1:``port``."""
    lines = [f"{'POST' if body_size else 'GET'} {path} HTTP/1.1", f"Host: {HOST}:{port}"]
    if close:
        lines.append("Connection: close")
    if body_size:
        lines += ["Content-Type: application/octet-stream", f"Content-Length: {body_size}"]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("ascii") + b"x" * body_size


def _chunked_end(buf: bytearray, pos: int) -> int | None:
    """Where a chunked body starting at ``pos`` ends (after its trailers), or None if incomplete."""
    while True:
        eol = buf.find(b"\r\n", pos)
        if eol < 0:
            return None
        size = int(bytes(buf[pos:eol]).split(b";", 1)[0].strip() or b"0", 16)
        if size == 0:
            # trailer section: field lines up to an empty line (RFC 9112 §7.1.2)
            end = buf.find(b"\r\n\r\n", eol)
            if buf[eol : eol + 4] == b"\r\n\r\n":
                return eol + 4
            return None if end < 0 else end + 4
        pos = eol + 2 + size + 2
        if pos > len(buf):
            return None


class _Conn:
    __slots__ = ("sock", "state", "sent", "buf", "started", "body_start", "length", "chunked",
                 "keep", "status")  # fmt: skip

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.state = _CONNECTING
        self.sent = 0
        self.buf = bytearray()
        self.started = 0.0
        self.body_start = -1  # where the body starts once the head is parsed
        self.length: int | None = None
        self.chunked = False
        self.keep = False
        self.status = 0


class _Load:
    def __init__(self, port: int, request: bytes, close: bool, timeout: float) -> None:
        self.addr = (HOST, port)
        self.request = memoryview(request)
        self.close_mode = close
        self.timeout = timeout
        self.sel = selectors.DefaultSelector()
        self.conns: set[_Conn] = set()
        self.retry: list[float] = []  # when to open the connections that failed
        self.requests = 0
        self.errors = {"connect": 0, "read": 0, "timeout": 0, "status": 0}
        self.latency = Histogram()
        self.now = time.perf_counter()

    def run(self, connections: int, duration: float) -> LoadResult:
        start = self.now = time.perf_counter()
        deadline = start + duration
        for _ in range(connections):
            self._open()
        next_sweep = start + 0.1
        while self.now < deadline:
            for key, _ in self.sel.select(min(0.05, deadline - self.now)):
                self.now = time.perf_counter()
                self._ready(key.data)
            self.now = time.perf_counter()
            if self.retry and self.retry[0] <= self.now:
                due = [t for t in self.retry if t <= self.now]
                self.retry = [t for t in self.retry if t > self.now]
                for _ in due:
                    self._open()
            if self.now >= next_sweep:
                next_sweep = self.now + 0.1
                for conn in [c for c in self.conns if self.now - c.started > self.timeout]:
                    self._fail(conn, "timeout")
        elapsed = time.perf_counter() - start
        for conn in list(self.conns):
            self._drop(conn)
        self.sel.close()
        return LoadResult(self.requests, self.errors, elapsed, self.latency)

    def _open(self) -> None:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setblocking(False)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        conn = _Conn(sock)
        conn.started = self.now
        self.conns.add(conn)
        err = sock.connect_ex(self.addr)
        if err not in (0, errno.EINPROGRESS):
            self._fail(conn, "connect")
            return
        self.sel.register(sock, selectors.EVENT_WRITE, conn)

    def _drop(self, conn: _Conn) -> None:
        self.conns.discard(conn)
        try:
            self.sel.unregister(conn.sock)
        except (KeyError, ValueError):
            pass
        conn.sock.close()

    def _fail(self, conn: _Conn, kind: str) -> None:
        self.errors[kind] += 1
        self._drop(conn)
        if kind == "connect":
            self.retry.append(self.now + RETRY_DELAY)
        else:
            self._open()

    def _ready(self, conn: _Conn) -> None:
        if conn.state == _CONNECTING:
            if conn.sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR):
                self._fail(conn, "connect")
            else:
                self._start(conn)
        elif conn.state == _SENDING:
            self._send(conn)
        else:
            self._read(conn)

    def _start(self, conn: _Conn) -> None:
        conn.started = self.now
        conn.sent = 0
        conn.buf.clear()
        conn.body_start = -1
        self._send(conn, first=True)

    def _send(self, conn: _Conn, first: bool = False) -> None:
        try:
            conn.sent += conn.sock.send(self.request[conn.sent :])
        except BlockingIOError:
            pass
        except OSError:
            self._fail(conn, "read")
            return
        state = _READING if conn.sent == len(self.request) else _SENDING
        if state != conn.state or first:
            conn.state = state
            events = selectors.EVENT_READ if state == _READING else selectors.EVENT_WRITE
            self.sel.modify(conn.sock, events, conn)

    def _read(self, conn: _Conn) -> None:
        try:
            data = conn.sock.recv(262144)
        except BlockingIOError:
            return
        except OSError:
            self._fail(conn, "read")
            return
        if not data:
            if conn.body_start >= 0 and conn.length is None and not conn.chunked:
                self._done(conn)  # a close-delimited body ends here
            else:
                self._fail(conn, "read")
            return
        buf = conn.buf
        buf += data
        if conn.body_start < 0:
            end = buf.find(b"\r\n\r\n")
            if end < 0:
                if len(buf) > MAX_HEAD:
                    self._fail(conn, "read")
                return
            try:
                self._parse_head(conn, bytes(buf[:end]))
            except ValueError:  # a Content-Length that is not a number
                self._fail(conn, "read")
                return
            conn.body_start = end + 4
        if conn.chunked:
            try:
                complete = _chunked_end(buf, conn.body_start) is not None
            except ValueError:  # a chunk size that is not hex
                self._fail(conn, "read")
                return
            if complete:
                self._done(conn)
        elif conn.length is not None and len(buf) - conn.body_start >= conn.length:
            self._done(conn)

    def _parse_head(self, conn: _Conn, head: bytes) -> None:
        status_line, _, fields = head.partition(b"\r\n")
        parts = status_line.split(b" ", 2)
        conn.status = int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else 0
        conn.length, conn.chunked = None, False
        connection = b""
        for line in fields.lower().split(b"\r\n"):
            name, _, value = line.partition(b":")
            if name == b"content-length":
                conn.length = int(value)
            elif name == b"transfer-encoding":
                conn.chunked = value.strip().endswith(b"chunked")
            elif name == b"connection":
                connection = value
        if conn.status in (204, 304) or 100 <= conn.status < 200:
            conn.length = 0
        persistent = parts[0] == b"HTTP/1.1" or b"keep-alive" in connection
        delimited = conn.chunked or conn.length is not None
        conn.keep = not self.close_mode and persistent and b"close" not in connection and delimited

    def _done(self, conn: _Conn) -> None:
        self.requests += 1
        self.latency.add(self.now - conn.started)
        if conn.status >= 400 or conn.status == 0:
            self.errors["status"] += 1
        if conn.keep:
            self._start(conn)
        else:
            self._drop(conn)
            self._open()


def run_load(
    port: int, request: bytes, connections: int, duration: float, *, close: bool = False,
    timeout: float = 10.0,
) -> LoadResult:  # fmt: skip
    """Drive 127.0.0.1:``port`` with ``connections`` connections for ``duration`` seconds.

    :param request: the bytes of one request (see :func:`build_request`).
    :param close: the request asks for ``Connection: close``: never reuse a connection.
    :param timeout: a response not complete this long after its request is an error.
    """
    return _Load(port, request, close, timeout).run(connections, duration)


def main(argv: list[str] | None = None) -> None:
    """Command line: run once, print the result as JSON."""
    parser = argparse.ArgumentParser(prog="python -m fastserve._bench.loadgen")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--path", default="/")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--duration", type=float, default=2.0)
    parser.add_argument("--close", action="store_true", help="send Connection: close")
    parser.add_argument("--body-size", type=int, default=0, help="POST a body this large")
    parser.add_argument("--timeout", type=float, default=10.0)
    args = parser.parse_args(argv)
    request = build_request(args.port, args.path, close=args.close, body_size=args.body_size)
    result = run_load(
        args.port, request, args.connections, args.duration, close=args.close,
        timeout=args.timeout,
    )  # fmt: skip
    sys.stdout.write(result.to_json() + "\n")


if __name__ == "__main__":
    main()
