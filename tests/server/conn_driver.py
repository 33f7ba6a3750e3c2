"""Drive one :class:`~fastserve.connection.HTTPConnection` without a listener.

A :class:`FakeServer` satisfies :class:`fastserve._contracts.ConnectionServer`
with the real server classes' limits, a :func:`socket.socketpair` stands in
for an accepted connection, and :class:`Driver` plays the engine the way
:meth:`fastserve._engine.Engine._serve` / ``_settle`` / ``_sweep`` do for one
connection:

==========  ================================================================
state       what the driver (as the engine) does next
==========  ================================================================
PARK        wait until readable, then ``on_readable()`` (or ``linger_read()``
            once lingering); the deadline is the connection's own while it
            ``waiting``, the head deadline while a partial head is buffered,
            else idle (the next sweep starts ``keep_alive_timeout``)
WRITE       wait until writable, then ``on_writable()``
LINGER      ``start_linger()`` (half-close) once, deadline ``linger_timeout``;
            then as PARK, with ``linger_read()``
CLOSE       ``close()``; the client sees EOF
GONE        forget the socket (the application took it over)
==========  ================================================================

The client is the other end of the pair, in the test's thread: it writes,
:meth:`Driver.run` serves what can be served now and returns the state the
connection waits in, the client reads. Nothing waits without a timeout, and
nothing sleeps: deadlines are checked by :meth:`Driver.sweep` at a chosen
clock value (``Driver.expire`` jumps to the connection's deadline). Where the
application itself must wait for the client (``100 Continue`` then the body),
:meth:`Driver.client_thread` plays the client from a thread meanwhile.
"""

from __future__ import annotations

import re
import select
import socket
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

from server_helpers import Response

from fastserve import __version__
from fastserve import connection as _connection
from fastserve._engine import _IDLE
from fastserve._logging import _log
from fastserve.connection import CLOSE, GONE, LINGER, PARK, WRITE, HTTPConnection
from fastserve.server import BaseWSGIServer, ThreadedWSGIServer

__all__ = [
    "CLOSE",
    "GONE",
    "LINGER",
    "PARK",
    "PEER",
    "WRITE",
    "Driver",
    "FakeServer",
    "chunked",
    "get",
    "log_lines",
    "masked",
    "post",
    "recv_until",
    "split_responses",
]

STATE_NAMES = {PARK: "PARK", WRITE: "WRITE", LINGER: "LINGER", CLOSE: "CLOSE", GONE: "GONE"}

#: the peer address an accepted TCP connection would have
PEER = ("127.0.0.1", 54321)

#: what the connection reads of its server besides the app and handler class
LIMITS = (
    "request_head_timeout",
    "keep_alive_timeout",
    "body_timeout",
    "body_min_rate",
    "preread_limit",
    "send_timeout",
    "send_min_rate",
    "max_content_length",
    "drain_limit",
    "drain_timeout",
    "linger_timeout",
    "linger_limit",
)


class FakeServer:
    """A :class:`~fastserve._contracts.ConnectionServer` with the defaults of
    the real server class (``ThreadedWSGIServer``: HTTP/1.1 and keep-alive, or
    ``BaseWSGIServer``: HTTP/1.0); ``limits`` override them by name.

    ``log`` goes to the ``"werkzeug"`` logger as the real server's does (the
    ``logs`` fixture captures it); :meth:`handle_error` records its calls.
    """

    def __init__(
        self,
        app: Any,
        threaded: bool = True,
        handler: type | None = None,
        passthrough_errors: bool = False,
        **limits: Any,
    ) -> None:
        real = ThreadedWSGIServer if threaded else BaseWSGIServer
        unknown = set(limits) - set(LIMITS)
        if unknown:
            raise TypeError(f"not a server limit: {sorted(unknown)}")
        for name in LIMITS:
            setattr(self, name, limits.get(name, getattr(real, name)))
        if handler is None:
            handler = _connection.WSGIRequestHandler
        # the real server's sticky protocol_version (tests/conftest.py undoes it)
        if "protocol_version" not in vars(handler) and real.multithread:
            handler.protocol_version = "HTTP/1.1"
        self.app = app
        self.RequestHandlerClass = handler
        self.passthrough_errors = passthrough_errors
        self.multithread = real.multithread
        self.multiprocess = real.multiprocess
        self.server_address = ("127.0.0.1", 8080)
        # read by werkzeug's handler (server_version), as the real server sets it
        self._server_version = f"fastserve/{__version__}"
        self.ssl_context = None
        self._closing = False
        #: ``(request, client_address)`` of each handle_error() call
        self.errors: list[tuple[Any, Any]] = []

    def handle_error(self, request: Any, client_address: Any) -> None:
        self.errors.append((request, client_address))

    def log(self, type: str, message: str, *args: Any) -> None:
        _log(type, message, *args)


def _ready(fd: int, events: int, timeout: float) -> bool:
    poller = select.poll()
    poller.register(fd, events)
    return bool(poller.poll(max(0.0, timeout) * 1000.0))


class Driver:
    """One connection over a socket pair, served by an engine stand-in.

    :param app: the WSGI application.
    :param server_args: :class:`FakeServer` arguments (``threaded``,
        ``handler``, ``passthrough_errors``, limits by name).
    :param sndbuf: the server socket's send buffer (small: a response the
        client does not read fills it quickly and the connection says WRITE).
    :param socktype: the pair's type; ``SOCK_SEQPACKET`` keeps the server's
        sends apart (see :meth:`sends`).
    """

    def __init__(
        self,
        app: Any,
        sndbuf: int | None = None,
        socktype: int = socket.SOCK_STREAM,
        **server_args: Any,
    ) -> None:
        self.server = FakeServer(app, **server_args)
        self.client, self.sock = socket.socketpair(socket.AF_UNIX, socktype)
        self.client.settimeout(5.0)
        if sndbuf is not None:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, sndbuf)
            self.client.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, sndbuf)
        self.conn = HTTPConnection(self.server, self.sock, PEER)
        #: every state the connection returned, in order
        self.states: list[int] = []
        #: what the engine would poll for: select.POLLIN or select.POLLOUT
        self.events = select.POLLIN
        #: closed by the engine (CLOSE, or an expired deadline) / forgotten (GONE)
        self.closed = False
        self.gone = False
        self._threads: list[threading.Thread] = []
        #: the monotonic clock at the start and the end of the last run()
        self.last_run = (0.0, 0.0)

    # -- the engine's side ----------------------------------------------------------

    @property
    def state(self) -> int | None:
        """The last state the connection returned (None before the first dispatch)."""
        return self.states[-1] if self.states else None

    def ready(self, timeout: float = 0.0) -> bool:
        """Whether the poller would report the connection within ``timeout``."""
        if self.closed or self.gone:
            return False
        return _ready(self.conn.fd, self.events, timeout)

    def step(self) -> int:
        """One dispatch, as ``Engine._serve``, then ``_settle`` the result."""
        conn = self.conn
        assert not (self.closed or self.gone), "the connection is no longer served"
        try:
            if conn.writing:
                state = conn.on_writable()
            elif conn.lingering:
                state = conn.linger_read()
            else:
                state = conn.on_readable()
        except BaseException:  # passthrough_errors: the engine drops it, and raises
            self._close()
            raise
        self.states.append(state)
        self._settle(state)
        return state

    def run(self, max_steps: int = 200, wait: float = 0.0) -> int | None:
        """Serve while the poller would report the connection; return the state
        it then waits in (PARK, WRITE, LINGER) or ended in (CLOSE, GONE).

        :param wait: how long to wait for the first readiness (a client thread
            is still sending); later steps only take what is there now.
        """
        timeout = wait
        start = time.monotonic()
        try:
            for _ in range(max_steps):
                if not self.ready(timeout):
                    return self.state
                timeout = 0.0
                self.step()
        finally:
            self.last_run = (start, time.monotonic())
        raise AssertionError(f"still ready after {max_steps} steps: {self.states_named()}")

    def _settle(self, state: int) -> None:
        conn = self.conn
        server = self.server
        if state in (PARK, LINGER, WRITE):
            if conn.lingering:
                pass
            elif state == LINGER:
                conn.lingering = True
                conn.start_linger()
                conn.deadline = time.monotonic() + server.linger_timeout
            elif conn.waiting:
                pass
            elif conn.buf:
                conn.deadline = conn.head_started + server.request_head_timeout
            else:
                conn.deadline = _IDLE
            self.events = select.POLLOUT if state == WRITE else select.POLLIN
            conn.parked = True
        elif state == CLOSE:
            self._close()
        elif state == GONE:
            self.gone = True
        else:  # pragma: no cover - a new state the driver does not know
            raise AssertionError(f"unknown state {state!r}")

    def _close(self) -> None:
        self.closed = True
        self.conn.close()

    def sweep(self, now: float | None = None) -> bool:
        """The engine's once-a-second sweep at clock value ``now``: an idle
        connection gets its ``keep_alive_timeout`` deadline; one past its
        deadline (and not still being read at ``send_min_rate``) is expired
        (408, a log line...) and closed. :return: whether it was closed."""
        conn = self.conn
        assert conn.parked and not (self.closed or self.gone), self.states_named()
        if now is None:
            now = time.monotonic()
        if conn.deadline == _IDLE:
            conn.deadline = now + self.server.keep_alive_timeout
            return False
        if conn.deadline <= now and not conn.still_sending(now):
            conn.parked = False
            if not conn.lingering:
                conn.expire()
            self._close()
            return True
        return False

    def expire(self) -> None:
        """Let the connection's deadline pass (a sweep just after it)."""
        if self.conn.deadline == _IDLE:
            self.sweep()
        assert self.sweep(self.conn.deadline + 0.001), "not expired at its deadline"

    def deadline_set_in_last_run(self, seconds: float) -> bool:
        """Whether the connection's deadline is ``seconds`` after a moment of
        the last :meth:`run` (however slowly that run went)."""
        start, end = self.last_run
        return start + seconds <= self.conn.deadline <= end + seconds

    def states_named(self) -> list[str]:
        return [STATE_NAMES[s] for s in self.states]

    # -- the client's side ----------------------------------------------------------

    def send(self, data: bytes) -> None:
        """The client sends ``data`` (all of it: the pair's buffers are large)."""
        self.client.sendall(data)

    def exchange(self, data: bytes, max_steps: int = 200) -> bytes:
        """Send ``data``, serve it, return what the client can read now."""
        self.send(data)
        self.run(max_steps)
        return self.read()

    def read(self) -> bytes:
        """What the client can read now, without waiting (``b""`` for none)."""
        chunks = []
        while _ready(self.client.fileno(), select.POLLIN, 0):
            try:
                data = self.client.recv(1 << 20)
            except ConnectionResetError:
                break
            if not data:
                break
            chunks.append(data)
        return b"".join(chunks)

    def sends(self) -> list[bytes]:
        """What the client can read now, one item per send of the server (a
        ``SOCK_SEQPACKET`` pair: each recv is one message)."""
        messages = []
        while _ready(self.client.fileno(), select.POLLIN, 0):
            data = self.client.recv(1 << 20)
            if not data:
                break
            messages.append(data)
        return messages

    def read_while_writing(self, max_rounds: int = 10_000) -> bytes:
        """The client reads while the response waits for it (WRITE): read what
        is there, let the engine resume the connection, until it waits for
        something else; return all that was read."""
        chunks = [self.read()]
        for _ in range(max_rounds):
            if self.state != WRITE or self.closed:
                break
            assert self.ready(5.0), "the socket drained but is not writable"
            self.run()
            chunks.append(self.read())
        else:
            raise AssertionError(f"still writing after {max_rounds} rounds")
        return b"".join(chunks)

    def read_to_eof(self, timeout: float = 5.0) -> bytes:
        """Everything until the server's end is closed (or half-closed)."""
        deadline = time.monotonic() + timeout
        chunks = []
        while True:
            if not _ready(self.client.fileno(), select.POLLIN, deadline - time.monotonic()):
                raise AssertionError(f"no EOF within {timeout} s; got {b''.join(chunks)[:300]!r}")
            data = self.client.recv(1 << 20)
            if not data:
                return b"".join(chunks)
            chunks.append(data)

    def client_sees_eof(self) -> bool:
        """The server closed (or half-closed) its end and nothing is unread."""
        if not _ready(self.client.fileno(), select.POLLIN, 0):
            return False
        return self.client.recv(1, socket.MSG_PEEK) == b""

    def client_thread(self, play: Callable[[socket.socket], None]) -> None:
        """Run ``play(client_socket)`` in a thread while the test serves (the
        application waits for the client meanwhile); joined by :meth:`close`,
        and its exception re-raised there."""
        errors: list[BaseException] = []

        def target() -> None:
            try:
                play(self.client)
            except BaseException as e:  # re-raised in the test's thread
                errors.append(e)

        thread = threading.Thread(target=target, daemon=True)
        thread.errors = errors  # type: ignore[attr-defined]
        thread.start()
        self._threads.append(thread)

    def run_with_clients(self, timeout: float = 10.0) -> int | None:
        """Serve while client threads still play (the connection receives a
        body in the poller meanwhile), then :meth:`run` once more."""
        deadline = time.monotonic() + timeout
        while any(thread.is_alive() for thread in self._threads):
            assert time.monotonic() < deadline, "the client thread did not finish"
            self.run(wait=0.05)
        self.join_clients()
        return self.run()

    def join_clients(self, timeout: float = 10.0) -> None:
        for thread in self._threads:
            thread.join(timeout)
            assert not thread.is_alive(), "the client thread did not finish"
            errors = thread.errors  # type: ignore[attr-defined]
            if errors:
                raise errors[0]
        self._threads.clear()

    def close(self) -> None:
        """Close both ends (as ``server_close`` does for a parked connection)."""
        try:
            self.join_clients()
        finally:
            if not self.closed:
                self.closed = True
                self.conn.close()
            self.sock.close()  # also after GONE: the test owns the socket then
            self.client.close()


def recv_until(sock: socket.socket, end: bytes, timeout: float = 5.0) -> bytes:
    """Read from ``sock`` until the bytes end with ``end`` (a client thread's
    wait for ``100 Continue``)."""
    deadline = time.monotonic() + timeout
    data = b""
    while not data.endswith(end):
        if not _ready(sock.fileno(), select.POLLIN, deadline - time.monotonic()):
            raise AssertionError(f"waited {timeout} s for {end!r}; got {data!r}")
        chunk = sock.recv(1)
        if not chunk:
            raise AssertionError(f"EOF while waiting for {end!r}; got {data!r}")
        data += chunk
    return data


class Parsed(Response):
    """A :class:`~server_helpers.Response` split out of raw bytes."""

    def __init__(
        self,
        status: int,
        reason: str,
        headers: list[tuple[str, str]],
        body: bytes,
        head: bytes,
        complete: bool = True,
    ) -> None:
        super().__init__(status, reason, headers, body)
        #: the status line and header lines, exactly as sent (with the blank line)
        self.head = head
        #: False for a body that ended (EOF) before its framing said
        self.complete = complete

    def __repr__(self) -> str:
        return f"<{self.status} {self.headers} {self.body[:60]!r}>"


def split_responses(data: bytes, methods: Sequence[str] = (), eof: bool = False) -> list[Parsed]:
    """Split what the client received into responses (interim ``1xx`` ones
    included, each its own entry).

    :param methods: the request method of each final response in order (a
        response to HEAD has no body); missing entries count as GET.
    :param eof: ``data`` ends where the server closed: a response without
        framing is close-delimited, a short one is returned with
        ``complete=False``. Without it, trailing bytes that are not a complete
        response are an error.
    """
    responses: list[Parsed] = []
    final = 0
    pos = 0
    while pos < len(data):
        end = data.find(b"\r\n\r\n", pos)
        if end < 0:
            raise ValueError(f"incomplete head at {pos}: {data[pos : pos + 200]!r}")
        head = data[pos : end + 4]
        lines = head[:-4].decode("latin-1").split("\r\n")
        version, code, *reason = lines[0].split(" ", 2)
        assert version in ("HTTP/1.0", "HTTP/1.1"), lines[0]
        headers = []
        for line in lines[1:]:
            name, sep, value = line.partition(":")
            assert sep and name == name.strip(), f"bad field line {line!r}"
            headers.append((name, value.strip()))
        resp = Parsed(int(code), reason[0] if reason else "", headers, b"", head)
        pos = end + 4
        responses.append(resp)
        if 100 <= resp.status < 200 and resp.status != 101:
            continue
        method = methods[final] if final < len(methods) else "GET"
        final += 1
        if method == "HEAD" or resp.status in (101, 204, 304):
            continue
        te = resp.header("Transfer-Encoding")
        length = resp.header("Content-Length")
        if te is not None and "chunked" in te:
            body, pos, resp.complete = _dechunk(data, pos)
            resp.body = body
            if not resp.complete and not eof:
                raise ValueError(f"incomplete chunked body: {data[pos:][:200]!r}")
        elif length is not None:
            size = int(length)
            resp.body = data[pos : pos + size]
            pos += len(resp.body)
            if len(resp.body) < size:
                if not eof:
                    raise ValueError(f"incomplete body: {len(resp.body)} of {size} bytes")
                resp.complete = False
        else:
            if not eof:
                raise ValueError("a close-delimited body, but no EOF")
            resp.body, pos = data[pos:], len(data)
    return responses


def _dechunk(data: bytes, pos: int) -> tuple[bytes, int, bool]:
    body = []
    while True:
        end = data.find(b"\r\n", pos)
        if end < 0:
            return b"".join(body), len(data), False
        size = int(data[pos:end].split(b";")[0], 16)
        pos = end + 2
        if size == 0:
            if data[pos : pos + 2] != b"\r\n":  # no trailers sent by fastserve
                return b"".join(body), len(data), False
            return b"".join(body), pos + 2, True
        piece = data[pos : pos + size]
        body.append(piece)
        if len(piece) < size or data[pos + size : pos + size + 2] != b"\r\n":
            return b"".join(body), len(data), False
        pos += size + 2


def masked(head: bytes) -> bytes:
    """``head`` with the values of ``Server`` and ``Date`` replaced by ``*``."""
    return re.sub(rb"\r\n(Server|Date): [^\r\n]*", rb"\r\n\1: *", head)


_LOG_PREFIX = re.compile(r"^\S+ - - \[[^\]]*\] ")
_ANSI = re.compile(r"\x1b\[[0-9;]*m")


def log_lines(logs: Any) -> list[str]:
    """The captured log messages without werkzeug's ``addr - - [date]`` prefix
    and colours: ``code 400, message ...``, ``"GET / HTTP/1.1" 200 -``."""
    return [_ANSI.sub("", _LOG_PREFIX.sub("", m)) for m in logs.messages]


def get(path: str = "/", *fields: str, method: str = "GET", version: str = "HTTP/1.1") -> bytes:
    """A request head: ``get("/a", "Connection: close")``; ``Host`` is added for 1.1."""
    lines = [f"{method} {path} {version}"]
    if version == "HTTP/1.1" and not any(f.lower().startswith("host:") for f in fields):
        lines.append("Host: x")
    lines.extend(fields)
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def post(path: str, body: bytes, *fields: str, length: int | None = None) -> bytes:
    """A Content-Length request (``length`` overrides the declared length)."""
    declared = len(body) if length is None else length
    return get(path, f"Content-Length: {declared}", *fields, method="POST") + body


def chunked(*pieces: bytes, trailer: bytes = b"") -> bytes:
    """A chunked body of ``pieces`` and its last chunk."""
    return b"".join(b"%x\r\n%s\r\n" % (len(p), p) for p in pieces) + b"0\r\n" + trailer + b"\r\n"
