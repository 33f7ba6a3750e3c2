"""Clients and helpers for the server tests (loopback sockets, log capture)."""

from __future__ import annotations

import logging
import socket
import threading
import time
from collections.abc import Callable
from typing import Any

from fastserve.server import BaseWSGIServer


class Running:
    """A server serving in a background thread."""

    def __init__(self, server: BaseWSGIServer) -> None:
        self.server = server
        #: what serve_forever raised (passthrough_errors)
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run)
        self.thread.start()

    def _run(self) -> None:
        try:
            self.server.serve_forever(poll_interval=0.1)
        except BaseException as e:
            self.error = e

    @property
    def port(self) -> int:
        return self.server.port

    def connect(self, timeout: float = 5.0) -> socket.socket:
        s = socket.create_connection(("127.0.0.1", self.port), timeout=timeout)
        return s

    def stop(self) -> None:
        if self.thread.is_alive():
            self.server.shutdown()
            self.thread.join(5)
        self.server.server_close()


class LogCapture(logging.Handler):
    """Collects the formatted messages of the ``werkzeug`` logger."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)

    @property
    def messages(self) -> list[str]:
        return [r.getMessage() for r in self.records]

    def text(self) -> str:
        return "\n".join(self.messages)

    def wait_for(self, fragment: str, timeout: float = 5.0) -> str:
        """The first message containing ``fragment``, waiting for it to be
        logged (error lines are logged after the response went out)."""
        deadline = time.monotonic() + timeout
        while True:
            for message in self.messages:
                if fragment in message:
                    return message
            if time.monotonic() > deadline:
                raise AssertionError(f"no log message contains {fragment!r}: {self.messages}")
            time.sleep(0.01)


def recv_all(sock: socket.socket, timeout: float = 5.0) -> bytes:
    """Everything the server sends until it closes the connection."""
    sock.settimeout(timeout)
    chunks = []
    while True:
        try:
            data = sock.recv(65536)
        except ConnectionResetError:
            break
        if not data:
            break
        chunks.append(data)
    return b"".join(chunks)


class Response:
    """One parsed response read from a raw socket."""

    def __init__(self, status: int, reason: str, headers: list[tuple[str, str]], body: bytes):
        self.status = status
        self.reason = reason
        self.headers = headers
        self.body = body

    def header(self, name: str) -> str | None:
        values = [v for k, v in self.headers if k.lower() == name.lower()]
        return ",".join(values) if values else None


class Reader:
    """Reads responses one after the other from a keep-alive socket."""

    def __init__(self, sock: socket.socket, timeout: float = 5.0) -> None:
        self.sock = sock
        sock.settimeout(timeout)
        self.buf = b""

    def _fill(self) -> bool:
        data = self.sock.recv(65536)
        if not data:
            return False
        self.buf += data
        return True

    def _line(self) -> bytes:
        while b"\r\n" not in self.buf:
            if not self._fill():
                raise EOFError("connection closed")
        line, _, self.buf = self.buf.partition(b"\r\n")
        return line

    def _take(self, n: int) -> bytes:
        while len(self.buf) < n:
            if not self._fill():
                raise EOFError("connection closed")
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def response(self, head_only: bool = False) -> Response:
        while True:
            status_line = self._line().decode("latin-1")
            version, code, *reason = status_line.split(" ", 2)
            headers = []
            while True:
                line = self._line()
                if not line:
                    break
                name, _, value = line.decode("latin-1").partition(":")
                headers.append((name, value.strip()))
            if not code.startswith("1") or code == "101":
                break
        resp = Response(int(code), reason[0] if reason else "", headers, b"")
        if head_only or resp.status in (204, 304):
            return resp
        te = resp.header("Transfer-Encoding")
        cl = resp.header("Content-Length")
        if te and "chunked" in te:
            body = b""
            while True:
                size = int(self._line().split(b";")[0], 16)
                if size == 0:
                    self._line()
                    break
                body += self._take(size)
                self._take(2)
            resp.body = body
        elif cl is not None:
            resp.body = self._take(int(cl))
        else:
            while self._fill():
                pass
            resp.body, self.buf = self.buf, b""
        return resp

    def closed(self) -> bool:
        """True when the server closed the connection (no more bytes)."""
        if self.buf:
            return False
        try:
            return self.sock.recv(1) == b""
        except ConnectionResetError:
            return True


def hello_app(environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"hello " + environ["PATH_INFO"].encode()]
