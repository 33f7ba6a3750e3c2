"""One response: ``start_response``, ``write``, the head and the body framing.

:class:`Exchange` is created per request by the connection. The application's
status and headers are only *stored* by ``start_response``; the head is
serialized (by the parser module's ``serialize_response_head``, which refuses
CR/LF/NUL and non-token names, RFC 9110 §5.5) when the first body byte exists
or the body ended empty - that moment is "headers sent": before it an error can
still become a 500, after it the connection is closed instead.

Framing (RFC 9112 §6.3), decided when the head is committed:

1. HEAD, 1xx, 204 and 304 carry no body (RFC 9110 §6.4.1); the application's
   body is consumed and dropped.
2. The application's ``Content-Length`` is used and enforced: a body longer
   than declared is cut and the connection closed, a shorter one closes the
   connection (the client sees the truncation).
3. When the whole body is known (the application returned a list), the server
   adds ``Content-Length`` itself.
4. Else chunked, when both the handler's ``protocol_version`` and the request
   are HTTP/1.1 and the application did not set ``Transfer-Encoding`` itself.
5. Else the body is delimited by closing the connection.

Whenever the connection will be closed after the response the head says
``Connection: close`` (unless the application already did); an HTTP/1.0
client that asked for keep-alive and gets it is told ``Connection: keep-alive``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from email.utils import formatdate
from http import HTTPStatus
from time import time as _time
from typing import Any

from ._body import EMPTY_INPUT
from ._contracts import ExchangeConnection
from ._werkzeug_private import internal as _wz_internal
from .parser import serialize_response_head

__all__ = ["CONTINUE", "Exchange", "date_line", "error_response"]

#: RFC 9110 §15.2.1, sent at most once per request, only to HTTP/1.1 clients
CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"

_FLAG_CLOSE = 1  # the application sent "Connection: close"
_FLAG_TE = 2  # the application sent Transfer-Encoding

# framing of the response body
_NONE = 0
_LENGTH = 1
_CHUNKED = 2
_CLOSE = 3

#: a whole body (a list response) up to this size goes out in one send with its head
WHOLE_LIMIT = 65536

_date_second = 0
_date_bytes = b""


def date_line() -> bytes:
    """``Date: <IMF-fixdate>\\r\\n`` (RFC 9110 §6.6.1), rebuilt at most once a second."""
    global _date_second, _date_bytes
    now = int(time.time())
    if now != _date_second:
        _date_bytes = b"Date: " + formatdate(now, usegmt=True).encode("ascii") + b"\r\n"
        _date_second = now
    return _date_bytes


def error_response(version: bytes, status: int, reason: str, server_line: bytes) -> bytes:
    """A complete short ``text/plain`` response that refuses a request and
    announces ``Connection: close``."""
    try:
        phrase = HTTPStatus(status).phrase
    except ValueError:
        phrase = "Error"
    body = f"{phrase}: {reason}\n".encode("latin-1", "replace")
    return b"".join(
        (
            version,
            b" %d %s\r\n" % (status, phrase.encode("ascii")),
            server_line,
            date_line(),
            b"Content-Type: text/plain; charset=utf-8\r\n",
            b"Content-Length: %d\r\nConnection: close\r\n\r\n" % len(body),
            body,
        )
    )


class Exchange:
    """The response half of one request (PEP 3333 ``start_response``/``write``).

    :param conn: the connection, which provides ``send``, the status-line
        version, the ``Server`` line, the keep-alive verdict for the request
        and the access-log hook.
    :param head_only: the request method is HEAD.
    :param chunk_ok: chunked framing is allowed (handler and request HTTP/1.1).
    :param keep: the connection may stay open after this response.
    :param http10_keep_alive: an HTTP/1.0 client asked for keep-alive.
    """

    __slots__ = (
        "conn",
        "head_only",
        "chunk_ok",
        "keep",
        "http10_keep_alive",
        "status",
        "headers",
        "head_sent",
        "framing",
        "left",
        "code",
    )

    def __init__(
        self,
        conn: ExchangeConnection,
        head_only: bool,
        chunk_ok: bool,
        keep: bool,
        http10_keep_alive: bool = False,
    ) -> None:
        self.conn = conn
        self.head_only = head_only
        self.chunk_ok = chunk_ok
        self.keep = keep
        self.http10_keep_alive = http10_keep_alive
        self.status: str | None = None
        self.headers: list[tuple[str, str]] | None = None
        #: True once the head went to the client (the first body byte existed)
        self.head_sent = False
        self.framing = _NONE
        #: body bytes still owed under Content-Length framing
        self.left = 0
        self.code = 0

    def start_response(
        self,
        status: str,
        headers: list[tuple[str, str]],
        exc_info: Any = None,
    ) -> Callable[[bytes], None]:
        """PEP 3333 ``start_response``."""
        if exc_info:
            try:
                if self.head_sent:
                    raise exc_info[1].with_traceback(exc_info[2])
            finally:
                exc_info = None
        elif self.status is not None:
            raise AssertionError("Headers already set")
        self.status = status
        self.headers = headers
        return self.write

    def write(self, data: bytes) -> None:
        """PEP 3333 ``write`` callable: sent at once (blocking this thread,
        bounded by the send deadline)."""
        chunk = self.encode(data)
        if chunk:
            self.conn.send(chunk)

    def _commit(self, total: int) -> bytes:
        """Serialize the head; ``total`` is the whole body length when known, else -1."""
        if self.status is None:
            raise AssertionError("write() before start_response")
        conn = self.conn
        head: bytes
        if int(_time()) != _date_second:
            date_line()  # a new second: rebuild the Date line
        headers: Any = self.headers  # set together with status
        head, code, length, flags = serialize_response_head(
            conn.status_version, self.status, headers, conn.server_line + _date_bytes
        )
        self.code = code
        keep = self.keep and not flags & _FLAG_CLOSE and not conn.server._closing
        extra = b""
        if self.head_only or code < 200 or code == 204 or code == 304:
            framing = _NONE
            if code == 101:  # the connection now speaks another protocol
                keep = False
                flags |= _FLAG_CLOSE
        elif length >= 0:
            framing = _LENGTH
            self.left = length
            if total >= 0 and total != length:
                keep = False  # the client must not wait for the missing bytes
                self._mismatch(length, total)
        elif flags & _FLAG_TE:
            framing = _CLOSE
        elif total >= 0:
            framing = _LENGTH
            self.left = total
            extra = b"Content-Length: %d\r\n" % total
        elif self.chunk_ok:
            framing = _CHUNKED
            extra = b"Transfer-Encoding: chunked\r\n"
        else:
            framing = _CLOSE
        self.framing = framing
        if keep and framing == _CLOSE:
            keep = False
        elif keep and conn.reader is not EMPTY_INPUT and not conn.body_allows_keep_alive():
            keep = False
        self.keep = keep
        if not keep:
            if not flags & _FLAG_CLOSE:
                extra += b"Connection: close\r\n"
        elif self.http10_keep_alive:
            extra += b"Connection: keep-alive\r\n"
        self.head_sent = True
        # the access line, when the status is known (werkzeug logs it then)
        if not conn.log_checked or _wz_internal._logger.isEnabledFor(20):  # type: ignore[union-attr]
            conn._bind_handler()
            conn._call_hook("log_request", code)
        return head + extra + b"\r\n"

    def _mismatch(self, declared: int, sent: int) -> None:
        """Log that the body does not match the application's Content-Length
        (``sent`` -1: longer); the connection is closed after the response."""
        conn = self.conn
        conn._bind_handler()
        if sent < 0:
            message = "The application sent more than its Content-Length %d"
            args: tuple[int, ...] = (declared,)
        else:
            message = "The application sent %d bytes of its Content-Length %d"
            args = (sent, declared)
        conn._call_hook("log_error", message + "; the connection is closed", *args)

    def encode(self, data: bytes) -> bytes:
        """The bytes to send for one piece of the body: framed, with the head
        before the first piece; ``b""`` when there is nothing to send."""
        if self.status is None:
            raise AssertionError("write() before start_response")
        if type(data) is not bytes and not isinstance(data, (bytes, bytearray)):
            raise AssertionError("applications must write bytes")
        if not data:
            return b""
        if not self.head_sent:
            head = self._commit(-1)
            if self.framing == _NONE:
                return head
            return head + self._frame(data)
        if self.framing != _NONE:
            return self._frame(data)
        return b""

    def _frame(self, data: bytes) -> bytes:
        framing = self.framing
        if framing == _CHUNKED:
            return b"%x\r\n%s\r\n" % (len(data), data)
        if framing == _LENGTH:
            left = self.left
            if len(data) > left:
                self.keep = False  # the app sent more than it declared
                self._mismatch(self.left_declared(), -1)
                self.framing = _NONE  # the rest is dropped
                data = data[:left]
            self.left = left - len(data)
        return data

    def left_declared(self) -> int:
        """The Content-Length the application declared (from the head)."""
        headers: Any = self.headers
        for name, value in headers:
            if name.lower() == "content-length":
                try:
                    return int(value)
                except ValueError:
                    break
        return -1

    def send_whole(self, body: bytes) -> None:
        """Send a body that is known completely (the application returned a
        list) as far as the socket takes it now (the connection keeps the rest)."""
        if self.status is None:
            raise AssertionError("write() before start_response")
        if type(body) is not bytes and not isinstance(body, (bytes, bytearray)):
            raise AssertionError("applications must write bytes")
        size = len(body)
        head = self._commit(size)
        framing = self.framing
        conn = self.conn
        if framing == _NONE or not size:
            conn.push(head)
            return
        if framing == _LENGTH:
            left = self.left
            if size > left:
                body = body[:left]
            self.left = 0
        elif framing == _CHUNKED:
            body = b"%x\r\n%s\r\n0\r\n\r\n" % (size, body)
        if size < WHOLE_LIMIT:
            conn.push(head + body)
        else:
            conn.push(head)
            conn.push(body)

    def commit_length(self, total: int) -> bytes:
        """The head of a body of ``total`` bytes whose pieces follow through
        :meth:`encode` (a large list response)."""
        return self._commit(total)

    def encode_end(self) -> bytes:
        """The application's iterable is exhausted: what is left to send (the
        head of an empty body, the last chunk)."""
        if not self.head_sent:
            end = self._commit(0)
        elif self.framing == _CHUNKED:
            end = b"0\r\n\r\n"
        else:
            end = b""
        if self.framing == _LENGTH and self.left:
            self.keep = False  # fewer bytes than the declared Content-Length
            self._mismatch(self.left_declared(), self.left_declared() - self.left)
        return end
