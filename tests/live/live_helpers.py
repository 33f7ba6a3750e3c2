"""Helpers of the live tests: the server subprocess wrapper and small raw-socket clients.

Kept out of ``conftest.py`` so test modules can import them by a unique module name
(several ``conftest`` modules exist in this test tree).
"""

from __future__ import annotations

import http.client
import itertools
import json
import os
import socket
import ssl
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import ephemeral_port_reserve

SERVE = Path(__file__).with_name("serve_live.py")

#: module -> parser name it imported; patched to the implementation under test in-process
PARSER_NAMES = {
    "fastserve.connection": "RequestParser",
    "fastserve._body": "ChunkedDecoder",
    "fastserve._response": "serialize_response_head",
}
READY_TIMEOUT = 30.0
_serial = itertools.count()


class UnixHTTPConnection(http.client.HTTPConnection):
    """``http.client`` over the unix socket at ``path`` (Host header: ``localhost``)."""

    def __init__(self, path: str, timeout: float = 10) -> None:
        super().__init__("localhost", timeout=timeout)
        self.unix_path = path

    def connect(self) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(self.timeout)
        self.sock.connect(self.unix_path)


def insecure_client_context() -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


def _free_ipv6_port(host: str) -> int:
    with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


class LiveServer:
    """A server subprocess and helpers to talk to it."""

    def __init__(self, app: str, impl: str, workdir: Path, **options: Any) -> None:
        self.app, self.impl, self.options = app, impl, dict(options)
        self.options.setdefault("hostname", "127.0.0.1")
        self.options.setdefault("threaded", True)
        host = self.options["hostname"]
        self.unix_path: str | None = None
        if host.startswith("unix://"):
            self.unix_path = host[len("unix://") :]
            self.options["port"] = 0
        elif ":" in host:  # IPv6: ephemeral_port_reserve only resolves IPv4 names
            self.options.setdefault("port", _free_ipv6_port(host))
        else:
            self.options.setdefault("port", ephemeral_port_reserve.reserve(host))
        self.host, self.port = host, int(self.options["port"])
        self.tls = bool(self.options.get("ssl_context"))
        self.scheme = "https" if self.tls else "http"
        url_host = f"[{host}]" if ":" in host and not self.unix_path else host
        self.url = f"{self.scheme}://{url_host}:{self.port}"
        # unique: unix-socket servers all have port 0
        self.log_path = workdir / f"{app}-{impl}-{self.port}-{next(_serial)}.log"
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        if impl == "py":
            env["FASTSERVE_NO_EXTENSIONS"] = "1"
        else:
            env.pop("FASTSERVE_NO_EXTENSIONS", None)
        self._log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(
            [sys.executable, str(SERVE), app, json.dumps(self.options)],
            env=env,
            cwd=workdir,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        try:
            self._wait_ready()
        except BaseException:
            self.stop()
            raise

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + READY_TIMEOUT
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited with {self.proc.returncode}:\n{self.log()}")
            try:
                status, _, _ = self.request("/ensure", timeout=2)
                if status == 200:
                    break
            except (ConnectionError, FileNotFoundError, TimeoutError, ssl.SSLError, OSError):
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"server not ready after {READY_TIMEOUT}s:\n{self.log()}")
            time.sleep(0.05)
        reported = self.log().splitlines()[0]
        assert reported == f"PARSER_IMPL={self.impl}", f"server loaded {reported!r}"

    def log(self, since: int = 0) -> str:
        """The server's output; ``since`` = a :meth:`log_mark` from earlier."""
        return self.log_path.read_bytes()[since:].decode(errors="replace")

    def log_mark(self) -> int:
        """The current end of the log, for ``log(since=...)`` (module-scoped servers are shared)."""
        return self.log_path.stat().st_size

    def wait_for_log(self, *texts: str, since: int = 0, timeout: float = 20) -> str:
        """The log (from ``since``, a :meth:`log_mark`) once it contains every one of
        ``texts``: some lines are written after the client has its response. Fails after
        ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        while True:
            log = self.log(since)
            if all(t in log for t in texts):
                return log
            if time.monotonic() > deadline:
                raise AssertionError(f"not logged within {timeout} s: {texts!r}\n{log}")
            time.sleep(0.05)

    def final_log(self, since: int = 0) -> str:
        """Stop the server and return its log (from ``since``): nothing is written after
        this, so an absence (no traceback) holds for everything the server did."""
        self.stop()
        return self.log(since)

    def stop(self) -> None:
        """SIGTERM (a graceful stop), then SIGKILL if it is still running after 10 s."""
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        self._log.close()

    # --- clients -------------------------------------------------------------------------

    def connect(self, timeout: float = 10) -> http.client.HTTPConnection:
        """A new ``http.client`` connection (not yet connected)."""
        if self.unix_path:
            return UnixHTTPConnection(self.unix_path, timeout=timeout)
        if self.tls:
            return http.client.HTTPSConnection(
                self.host, self.port, timeout=timeout, context=insecure_client_context()
            )
        return http.client.HTTPConnection(self.host, self.port, timeout=timeout)

    def request(
        self, path: str, method: str = "GET", body: bytes | None = None,
        headers: dict[str, str] | None = None, timeout: float = 10,
    ) -> tuple[int, http.client.HTTPMessage, bytes]:  # fmt: skip
        """One request on a fresh connection: ``(status, headers, body)``."""
        conn = self.connect(timeout=timeout)
        try:
            conn.request(method, path, body=body, headers=headers or {})
            response = conn.getresponse()
            return response.status, response.headers, response.read()
        finally:
            conn.close()

    def json(self, path: str, **kwargs: Any) -> Any:
        status, _, body = self.request(path, **kwargs)
        assert status == 200, (status, body)
        return json.loads(body)

    def calls(self) -> list[dict[str, Any]]:
        """Requests the ``echo`` app has seen so far."""
        result: list[dict[str, Any]] = self.json("/calls")
        return result

    def wait_closed(self, path: str, timeout: float = 20) -> None:
        """Wait until the ``echo`` app's response iterable for ``path`` has been closed."""
        wait_until(lambda: path in self.json("/closed"), f"{path}'s iterable closed", timeout)

    def raw_socket(self, timeout: float = 10) -> socket.socket:
        """A connected plain socket (TCP or unix) to the server."""
        if self.unix_path:
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            sock.settimeout(timeout)
            sock.connect(self.unix_path)
            return sock
        return socket.create_connection((self.host, self.port), timeout=timeout)


def serve_in_thread(server: Any) -> threading.Thread:
    """``server.serve_forever()`` in a new thread of the test process."""
    t = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1})
    t.start()
    return t


def wait_until(condition: Callable[[], object], what: str, timeout: float = 20.0) -> None:
    """Poll ``condition`` until it is true; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"not reached within {timeout} s: {what}")
        time.sleep(0.02)


def recv_until_closed(sock: socket.socket, limit: int = 16 * 1024 * 1024) -> bytes:
    """Everything the server sends until it closes the connection (bounded)."""
    parts, size = [], 0
    while size < limit:
        chunk = sock.recv(65536)
        if not chunk:
            break
        parts.append(chunk)
        size += len(chunk)
    return b"".join(parts)


def read_response(sock: socket.socket, buf: bytearray) -> tuple[bytes, dict[str, str], bytes]:
    """Read one Content-Length- or chunked-framed response from ``sock``.

    ``buf`` carries bytes already received past the previous response.
    Returns ``(status_line, headers with lower-case names, body)``.
    """

    def fill() -> None:
        chunk = sock.recv(65536)
        if not chunk:
            raise EOFError(f"connection closed; buffered {bytes(buf)!r}")
        buf.extend(chunk)

    while b"\r\n\r\n" not in buf:
        fill()
    head, _, rest = bytes(buf).partition(b"\r\n\r\n")
    del buf[: len(head) + 4]
    status_line, *lines = head.split(b"\r\n")
    headers = {}
    for line in lines:
        name, _, value = line.decode("latin-1").partition(":")
        headers[name.strip().lower()] = value.strip()
    if "content-length" in headers:
        size = int(headers["content-length"])
        while len(buf) < size:
            fill()
        body = bytes(buf[:size])
        del buf[:size]
        return status_line, headers, body
    if headers.get("transfer-encoding") == "chunked":
        body = bytearray()
        while True:
            while b"\r\n" not in buf:
                fill()
            size_line, _, _ = bytes(buf).partition(b"\r\n")
            del buf[: len(size_line) + 2]
            size = int(size_line.split(b";")[0], 16)
            while len(buf) < size + 2:
                fill()
            body += buf[:size]
            del buf[: size + 2]
            if size == 0:
                return status_line, headers, bytes(body)
    raise AssertionError(f"response without framing: {head!r}")
