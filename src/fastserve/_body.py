r"""``wsgi.input`` readers: request bodies that never read past their end.

A keep-alive connection carries the next request right after this one's body,
so every reader knows exactly where its body ends (RFC 9112 §6.3) and never
takes a byte beyond it:

- :class:`ContentLengthReader` - the body is ``Content-Length`` bytes; it asks
  the socket for at most what is still missing.
- :class:`ChunkedReader` - ``Transfer-Encoding: chunked`` decoded by the
  parser's :class:`~fastserve.parser.ChunkedDecoder`, which stops at the end of
  the chunked message; bytes received beyond it are handed back to the
  connection as the start of the next request (``leftover``).
- :data:`EMPTY_INPUT` - a request without a body (reads return ``b""`` instead
  of blocking on the socket as werkzeug's bare ``rfile`` does).

The socket side is the connection's business: a reader calls
``conn.recv_body(n)`` (blocking, bounded by the connection's whole-body
deadline, may return fewer bytes, ``b""`` at EOF) and, the first time it needs
bytes from the wire, ``conn.send_continue()`` (which answers ``Expect:
100-continue`` once). The connection may also :meth:`feed` a reader bytes it
received without blocking - a small body before the application runs, the
unread rest of a body after the response (drained in the poller, then
:meth:`discard`\ ed) - and asks it how much is left (:meth:`wire_left`).

A body that ends before its end (the client closed the connection) or that
does not arrive in time makes ``read`` raise
:class:`werkzeug.exceptions.ClientDisconnected` (:class:`RequestBodyTimeout`
for the deadline), which is what werkzeug's ``LimitedStream`` raises for a
short body: ``Request.get_data()``/``form`` see the same exception under both
servers.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Protocol

from werkzeug.exceptions import ClientDisconnected

from .errors import BodyTooLargeError
from .parser import ChunkedDecoder

__all__ = [
    "BodySource",
    "ChunkedReader",
    "ContentLengthReader",
    "EMPTY_INPUT",
    "EmptyInput",
    "RequestBodyTimeout",
]

#: most bytes asked from the socket in one recv() while reading a body
_RECV_SIZE = 256 * 1024


class RequestBodyTimeout(ClientDisconnected):
    """The request body did not arrive at the minimum rate
    (``body_timeout`` / ``body_min_rate`` of the server)."""

    description = "The request body did not arrive in time."


class BodySource(Protocol):
    """What a reader needs from its connection."""

    def recv_body(self, n: int) -> bytes: ...
    def send_continue(self) -> None: ...


class _Reader:
    """Shared file-like surface (PEP 3333 ``wsgi.input``: read, readline,
    readlines, iteration; plus ``readinto`` for werkzeug's ``LimitedStream``)."""

    __slots__ = ()

    def read(self, size: int | None = -1) -> bytes:  # pragma: no cover - abstract
        raise NotImplementedError

    def _peek_line(self, limit: int) -> int:  # pragma: no cover - abstract
        raise NotImplementedError

    def readable(self) -> bool:
        return True

    def readinto(self, b: bytearray | memoryview) -> int:
        data = self.read(len(b))
        n = len(data)
        b[:n] = data
        return n

    def readline(self, size: int | None = -1) -> bytes:
        limit = -1 if size is None or size < 0 else size
        n = self._peek_line(limit)
        return self.read(n) if n else b""

    def readlines(self, hint: int | None = -1) -> list[bytes]:
        lines: list[bytes] = []
        total = 0
        while True:
            line = self.readline()
            if not line:
                return lines
            lines.append(line)
            total += len(line)
            if hint is not None and 0 < hint <= total:
                return lines

    def __iter__(self) -> Iterator[bytes]:
        while True:
            line = self.readline()
            if not line:
                return
            yield line

    def close(self) -> None:
        pass


class EmptyInput(_Reader):
    """``wsgi.input`` of a request without a body."""

    __slots__ = ()

    def read(self, size: int | None = -1) -> bytes:
        return b""

    def _peek_line(self, limit: int) -> int:
        return 0

    def wire_left(self) -> int:
        return 0

    def unread(self) -> bool:
        return False


EMPTY_INPUT = EmptyInput()


class ContentLengthReader(_Reader):
    """A body of exactly ``length`` bytes (RFC 9112 §6.2).

    :param conn: the connection (:class:`BodySource`).
    :param data: body bytes already received with the head (at most ``length``).
    :param length: the request's Content-Length.
    """

    __slots__ = ("_conn", "_buf", "_pos", "_left", "eof")

    def __init__(self, conn: BodySource, data: bytes, length: int) -> None:
        self._conn = conn
        self._buf = data
        self._pos = 0
        #: body bytes not yet received from the socket
        self._left = length - len(data)
        #: the client closed the connection before the body ended
        self.eof = False

    def _recv(self, n: int) -> bytes:
        conn = self._conn
        conn.send_continue()
        data = conn.recv_body(min(n, self._left, _RECV_SIZE))
        if not data:
            self.eof = True
            self._left = 0
            raise ClientDisconnected()
        self._left -= len(data)
        return data

    def feed(self, data: bytes) -> bytes:
        """Take body bytes received by the connection; return what is
        beyond the body (the start of the next request)."""
        take = min(len(data), self._left)
        if take:
            rest = self._buf[self._pos :] if self._pos else self._buf
            self._buf = rest + data[:take] if rest else data[:take]
            self._pos = 0
            self._left -= take
        return data[take:]

    def discard(self) -> None:
        """Forget the body bytes received and not read (draining)."""
        self._buf = b""
        self._pos = 0

    def read(self, size: int | None = -1) -> bytes:
        buf = self._buf
        pos = self._pos
        avail = len(buf) - pos
        if size is None or size < 0:
            parts = [buf[pos:]] if avail else []
            self._buf = b""
            self._pos = 0
            while self._left > 0:
                parts.append(self._recv(self._left))
            return b"".join(parts)
        if size <= avail:
            self._pos = pos + size
            return buf[pos : pos + size]
        # size bytes or the rest of the body, as werkzeug's buffered socket
        # file gives them: apps read CONTENT_LENGTH bytes with one read()
        parts = [buf[pos:]] if avail else []
        self._buf = b""
        self._pos = 0
        want = size - avail
        while want > 0 and self._left > 0:
            data = self._recv(want)
            parts.append(data)
            want -= len(data)
        return b"".join(parts) if len(parts) != 1 else parts[0]

    def _peek_line(self, limit: int) -> int:
        # Make the buffer hold a whole line (or ``limit`` bytes, or the rest of
        # the body) and return its length; ``read`` then takes it.
        while True:
            buf = self._buf
            pos = self._pos
            end = buf.find(b"\n", pos)
            if end >= 0:
                n = end + 1 - pos
                return n if limit < 0 else min(n, limit)
            avail = len(buf) - pos
            if (0 <= limit <= avail) or self._left <= 0:
                return avail if limit < 0 else min(avail, limit)
            data = self._recv(_RECV_SIZE)
            self._buf = buf[pos:] + data
            self._pos = 0

    def wire_left(self) -> int:
        """Body bytes the client has yet to send (0 when all arrived)."""
        return self._left

    def unread(self) -> bool:
        """Whether part of the body was not read by the application."""
        return self._left > 0 or self._pos < len(self._buf)


class ChunkedReader(_Reader):
    """A ``Transfer-Encoding: chunked`` body (RFC 9112 §7.1).

    :param conn: the connection (:class:`BodySource`).
    :param data: bytes received after the head (may include pipelined requests).
    :param max_length: refuse a decoded body longer than this (413).
    """

    __slots__ = ("_conn", "_dec", "_raw", "_buf", "_total", "_max", "done", "eof", "leftover")

    def __init__(self, conn: BodySource, data: bytes, max_length: int | None = None) -> None:
        self._conn = conn
        self._dec = ChunkedDecoder()
        #: received bytes the decoder has not consumed yet
        self._raw = b""
        #: decoded body bytes not yet read by the application
        self._buf = bytearray()
        self._total = 0
        self._max = max_length
        #: the last chunk and the trailer section have been received
        self.done = False
        #: the client closed the connection before the body ended
        self.eof = False
        #: bytes received after the end of the chunked message
        self.leftover = b""
        if data:
            self._feed(data)

    def _feed(self, data: bytes) -> None:
        raw = self._raw + data if self._raw else data
        out, used = self._dec.decode(raw)
        if out:
            self._total += len(out)
            if self._max is not None and self._total > self._max:
                raise BodyTooLargeError()
            self._buf += out
        if self._dec.done:
            self.done = True
            self.leftover = raw[used:]
            self._raw = b""
        else:
            self._raw = raw[used:] if used else raw

    def _fill(self) -> bool:
        """Receive more of the body.

        :raises werkzeug.exceptions.ClientDisconnected: the connection ended
            before the last chunk (what werkzeug's ``LimitedStream`` raises for
            a short Content-Length body).
        """
        conn = self._conn
        conn.send_continue()
        data = conn.recv_body(_RECV_SIZE)
        if not data:
            self.eof = True
            self.done = True
            raise ClientDisconnected()
        self._feed(data)
        return True

    def read(self, size: int | None = -1) -> bytes:
        buf = self._buf
        if size is None or size < 0:
            while not self.done:
                self._fill()
            out = bytes(buf)
            buf.clear()
            return out
        while len(buf) < size and not self.done:
            self._fill()  # size bytes or the rest of the body, as werkzeug's DechunkedInput
        out = bytes(buf[:size])
        del buf[:size]
        return out

    def _peek_line(self, limit: int) -> int:
        while True:
            buf = self._buf
            end = buf.find(b"\n")
            if end >= 0:
                return end + 1 if limit < 0 else min(end + 1, limit)
            if (0 <= limit <= len(buf)) or self.done:
                return len(buf) if limit < 0 else min(len(buf), limit)
            self._fill()

    def wire_left(self) -> int:
        """-1 while the end of the chunked message has not been received, else 0."""
        return 0 if self.done else -1

    def unread(self) -> bool:
        return not self.done or bool(self._buf)

    def feed(self, data: bytes) -> bytes:
        """Take bytes received by the connection (decoded into the body;
        what follows the chunked message stays in :attr:`leftover`)."""
        self._feed(data)
        return b""

    def discard(self) -> None:
        """Forget the decoded bytes not read (draining)."""
        self._buf.clear()
