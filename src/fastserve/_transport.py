"""The socket side of a connection: bytes out and in, with deadlines.

:class:`Transport` is the base of :class:`fastserve.connection.HTTPConnection`
(its state lives in the connection's ``__slots__``). Sending never blocks the
poller thread for a response the application returns (:meth:`Transport.push`
keeps what the socket does not take, and the engine waits for writability);
:meth:`Transport.send` blocks, bounded by the send deadline (``send_timeout``
plus a second per ``send_min_rate`` bytes taken). Receiving reads what is
there (``MSG_DONTWAIT``), or waits until the body's deadline while the
application reads ``wsgi.input``.
"""

from __future__ import annotations

import select
import socket
import ssl
import time
from collections import deque
from typing import Any, NoReturn, cast

from ._body import RequestBodyTimeout
from ._contracts import ConnectionServer
from ._response import CONTINUE
from ._sendqueue import queued_bytes
from ._settings import Settings
from ._state import ConnectionState

__all__ = ["CLOSE", "DEFER", "GONE", "LINGER", "PARK", "WRITE", "Transport"]


# what on_readable() tells the engine
PARK = 0  # wait for the socket to be readable again
CLOSE = 1  # unregister and close the socket
LINGER = 2  # half-close, discard input for a while, then close
GONE = 3  # the application took the socket over: forget it, do not touch it
WRITE = 4  # a response waits for the socket to drain: poll it for writability
# the complete response waits in the fast path until the engine flushes its send
# batch (conn.fast.flush(conn), which returns one of the states above)
DEFER = 5

_RECV_SIZE = 65536
# Windows has neither: recv() there is preceded by a zero-timeout select() instead
_MSG_DONTWAIT = getattr(socket, "MSG_DONTWAIT", 0)
_HAS_POLL = hasattr(select, "poll")


class _TakenOver(Exception):
    """The application closed ``environ["werkzeug.socket"]`` itself (flask-sock
    does after a websocket session): nothing more is sent, the socket is not ours."""


class Transport(ConnectionState):
    """Socket I/O of one connection (see the module docstring)."""

    __slots__ = (
        "settings",
        "plain",
        "is_tls",
        "poller",
        "continue_sent",
        "linger_bytes",
        "body_start",
        "body_received",
        "stalled_since",
        "stalled_sent",
        "stalled_queued",
        "preread",
    )

    server: ConnectionServer
    #: the timeouts and limits (read when serving started)
    settings: Settings
    #: the socket (an ``ssl.SSLSocket`` after the TLS handshake)
    sock: Any
    fd: int
    plain: bool
    is_tls: bool
    poller: Any
    buf: bytes
    deadline: float
    expect: bool
    continue_sent: bool
    send_failed: bool
    linger_bytes: int
    writing: bool
    body_start: float
    body_received: int
    out: deque[Any]
    stalled_since: float
    stalled_sent: int
    stalled_queued: int | None
    #: the body reader being fed in the poller (see :mod:`fastserve._body_feed`)
    feeding: Any
    preread: bool
    waiting: bool

    # -- socket side: sending --------------------------------------------------------

    def push(self, data: Any) -> None:
        """Send ``data`` as far as the socket takes it now; keep the rest in
        :attr:`out` (the caller then stops pulling the application's iterator
        and the engine waits for the socket to drain). Nothing is sent for
        empty ``data`` (the end of a Content-Length body, an empty piece)."""
        if not data:
            return
        out = self.out
        if out:
            out.append(data)
            return
        if not self.plain or not _MSG_DONTWAIT:
            self.send(data)  # TLS, Windows: blocking, bounded by the send deadline
            return
        try:
            sent = self.sock.send(data, _MSG_DONTWAIT)
        except BlockingIOError:
            sent = 0
        except OSError:
            self.send_failure()
        if sent < len(data):
            out.append(memoryview(data)[sent:])
            self.stalled_since = time.monotonic()
            self.stalled_sent = 0
            self.stalled_queued = queued_bytes(self.sock)
            self.deadline = self.stalled_since + self.settings.send_timeout

    def _flush(self) -> bool:
        """Send what :attr:`out` holds without blocking; True when it is empty.
        Progress moves the deadline (``send_min_rate`` after ``send_timeout``)."""
        out = self.out
        sock = self.sock
        sent_now = 0
        while out:
            data = out[0]
            try:
                sent = sock.send(data, _MSG_DONTWAIT)
            except BlockingIOError:
                break
            except OSError:
                self.send_failure()
            sent_now += sent
            if sent < len(data):
                out[0] = data[sent:]
                break
            out.popleft()
        if out:
            settings = self.settings
            self.stalled_sent += sent_now
            self.deadline = (
                self.stalled_since
                + settings.send_timeout
                + self.stalled_sent / settings.send_min_rate
            )
            return False
        return True

    def still_sending(self, now: float) -> bool:
        """The deadline of a waiting response passed: True (and a later
        deadline) when the client nevertheless took bytes out of the kernel's
        send queue at ``send_min_rate`` - the socket stays unwritable until a
        large kernel buffer has half drained, so this thread's own sends
        undercount a slow but steady reader."""
        start = self.stalled_queued
        if not self.writing or start is None:
            return False
        queued = queued_bytes(self.sock)
        if queued is None:
            return False
        settings = self.settings
        delivered = start + self.stalled_sent - queued
        self.deadline = (
            self.stalled_since + settings.send_timeout + delivered / settings.send_min_rate
        )
        return self.deadline > now

    def send(self, data: bytes) -> None:
        """Send all of ``data``, blocking this thread until the socket took it
        (PEP 3333 ``write()``, ``100 Continue``, error responses), bounded by the
        send deadline: :class:`TimeoutError` when the client stops reading."""
        if self.out:
            self.out.append(data)
            data = b"".join(bytes(d) for d in self.out)
            self.out.clear()
        sock = self.sock
        try:
            if not self.plain or not _MSG_DONTWAIT:
                if self.is_tls:
                    sock.settimeout(self.settings.send_timeout)
                sock.sendall(data)
                return
            view = memoryview(data)
            total = len(data)
            done = 0
            stalled = 0.0
            settings = self.settings
            while done < total:
                try:
                    sent = sock.send(view[done:], _MSG_DONTWAIT)
                except BlockingIOError:
                    sent = 0
                if sent:
                    done += sent
                    continue
                now = time.monotonic()
                if not stalled:
                    stalled = now
                    base = done
                limit = stalled + settings.send_timeout + (done - base) / settings.send_min_rate
                if now >= limit or not _wait_for(self.fd, select.POLLOUT, limit - now):
                    raise TimeoutError("timed out sending the response")
        except OSError:
            self.send_failure()

    def send_failure(self) -> NoReturn:
        """Called in the ``except OSError`` block of a send on :attr:`sock`:
        re-raise that error, or :class:`_TakenOver` when the application
        closed the socket it took over."""
        if self.sock.fileno() < 0:
            raise _TakenOver() from None
        self.send_failed = True
        raise  # noqa: PLE0704 - the error being handled by the caller

    def send_continue(self) -> None:
        """Answer ``Expect: 100-continue`` (once, HTTP/1.1 clients only); the
        body's deadline starts now (the client waited for this)."""
        if self.expect and not self.continue_sent:
            self.continue_sent = True
            self.send(CONTINUE)
            self.body_start = time.monotonic()

    # -- socket side: receiving ------------------------------------------------------

    def recv_body(self, n: int) -> bytes:
        """Receive up to ``n`` body bytes for the application, waiting at most
        until the body's deadline: ``body_timeout`` after the head, extended by
        one second per ``body_min_rate`` bytes received.

        :raises RequestBodyTimeout: the deadline passed.
        """
        sock: socket.socket = self.sock
        if _MSG_DONTWAIT and not self.is_tls:
            try:
                data = sock.recv(n, _MSG_DONTWAIT)
                self.body_received += len(data)
                return data
            except BlockingIOError:
                pass
        while True:
            left = self._body_deadline() - time.monotonic()
            if left <= 0:
                raise RequestBodyTimeout()
            if self.is_tls:
                if cast(ssl.SSLSocket, sock).pending():
                    break
                sock.settimeout(left)
            if self._wait_readable(left):
                break
        try:
            data = sock.recv(n)
        except (TimeoutError, ssl.SSLWantReadError):
            raise RequestBodyTimeout() from None
        self.body_received += len(data)
        return data

    def _wait_readable(self, timeout: float) -> bool:
        if not _HAS_POLL:  # Windows
            return bool(select.select([self.fd], [], [], timeout)[0])
        poller = self.poller
        if poller is None:
            poller = self.poller = select.poll()
            poller.register(self.fd, select.POLLIN)
        return bool(poller.poll(timeout * 1000.0))

    def _recv_nowait(self) -> bytes | None:
        """What the socket has now: bytes, ``b""`` at EOF, None when nothing."""
        sock: socket.socket = self.sock
        if self.is_tls:
            if not self.sock.pending() and not self._wait_readable(0):
                return None
            try:
                data = sock.recv(_RECV_SIZE)
                while (
                    data and cast(ssl.SSLSocket, sock).pending()
                ):  # decrypted bytes epoll cannot see
                    data += sock.recv(_RECV_SIZE)
                return data
            except ssl.SSLWantReadError:
                return None
        if not _MSG_DONTWAIT and not self._wait_readable(0):  # Windows: no MSG_DONTWAIT
            return None
        try:
            return sock.recv(_RECV_SIZE, _MSG_DONTWAIT)
        except BlockingIOError:
            return None

    def start_linger(self) -> None:
        """Half-close: our response is complete, the client may still be sending."""
        self.linger_bytes = 0
        try:
            self.sock.shutdown(socket.SHUT_WR)
        except OSError:
            pass

    def _recv_or_state(self) -> bytes | int:
        """What the socket has now, or PARK (nothing yet) / CLOSE (EOF, error)."""
        try:
            data = self._recv_nowait()
        except OSError:
            return CLOSE
        if data is None:
            return PARK
        return data if data else CLOSE

    def linger_read(self) -> int:
        """Discard what arrived while lingering: PARK, or CLOSE at EOF / limit."""
        data = self._recv_or_state()
        if isinstance(data, int):
            return data
        self.linger_bytes += len(data)
        return CLOSE if self.linger_bytes > self.settings.linger_limit else PARK

    def _body_deadline(self) -> float:
        """When the request body must be complete: ``body_timeout`` after the
        head (or the ``100 Continue``), plus a second per ``body_min_rate``
        bytes received (Apache ``mod_reqtimeout``'s ``MinRate``)."""
        settings = self.settings
        return self.body_start + settings.body_timeout + self.body_received / settings.body_min_rate


def _wait_for(fd: int, events: int, timeout: float) -> bool:
    """Whether ``fd`` becomes ready for ``events`` within ``timeout`` seconds."""
    poller = select.poll()
    poller.register(fd, events)
    return bool(poller.poll(max(0.0, timeout) * 1000.0))
