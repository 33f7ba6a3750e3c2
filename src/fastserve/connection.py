"""One client connection: bytes in, parser, application, bytes out.

Runtime flow of a connection (the engine in :mod:`fastserve.server` owns the
poller and the threads; this module owns everything between the socket and
the application)::

    engine accepts the socket -> HTTPConnection(server, sock, addr)
        handler = request_handler.__new__()     # one hook object per connection,
                                                # its __init__ (stdlib handle()) is not run
        base_env = connection_environ(...)      # per-connection environ entries, once,
        parser.set_base(base_env)               # the template of every request's environ
    engine: socket readable -> conn.on_readable()
        [TLS: handshake once, bounded by request_head_timeout]
        recv what is there (never blocks)
        loop while bytes are buffered:
            n = parser.parse(buf)               # 0: head incomplete -> PARK (deadline)
                                                # HTTPParseError -> _refuse(): status,
                                                # "code %d, message %s" + access line, LINGER
            _serve(n):
                environ = parser.environ (base_env's entries in it) | wsgi.errors
                          | wsgi.input reader (_body.py)
                handler.make_environ() only when a subclass overrides it
                app(environ, exchange.start_response)
                    list result  -> exchange.send_whole(): head + body, one send
                    other        -> exchange.send() per piece, exchange.finish()
                    iterable.close() always
                errors: dropped client -> connection_dropped() (+ a log line when
                        our send failed), CLOSE; other -> 500 page if nothing was
                        sent, "Error on request:" + traceback, CLOSE
                unread body -> drain (bounded in bytes and time) or LINGER
            keep-alive? continue with the pipelined bytes, else CLOSE / LINGER
        return PARK / CLOSE / LINGER / GONE to the engine
    engine: PARK -> poller (idle deadline keep_alive_timeout, or the head deadline
            request_head_timeout when a partial head is buffered: 408 on expiry)
            LINGER -> shutdown(SHUT_WR), discard what the client still sends for
            linger_timeout, then close (the client reads our response instead of
            a reset)

A handler class that is not ours (a subclass of werkzeug's handler) or that
overrides the stdlib request cycle (``handle``, ``handle_one_request``,
``parse_request``, ``run_wsgi``, ``send_header``, ...) runs the compatibility
path instead: the stdlib way, ``handler_class(sock, addr, server)``, on the
connection, which is then closed (werkzeug's handler always closes).

Sockets stay in blocking mode (what an application that takes over
``environ["werkzeug.socket"]`` expects); the connection reads without blocking
(``MSG_DONTWAIT``) when the poller said readable, and waits with ``poll`` and
``read_timeout`` while the application reads the body.
"""

from __future__ import annotations

import select
import socket
import ssl
import sys
import time
import traceback
from collections import deque
from collections.abc import Callable
from typing import Any, NoReturn, cast

from werkzeug import serving as _wz_serving
from werkzeug.exceptions import ClientDisconnected, InternalServerError

from . import _logging
from ._body import EMPTY_INPUT, ChunkedReader, ContentLengthReader, RequestBodyTimeout
from ._contracts import ConnectionServer
from ._environ import connection_environ, headers_from_environ
from ._response import CONTINUE, Exchange, error_response
from ._sendqueue import queued_bytes
from ._tls import connection_dropped_errors
from .errors import BodyTooLargeError, HTTPParseError
from .parser import RequestParser

__all__ = ["HTTPConnection", "WSGIRequestHandler", "connection_dropped_errors"]


# the client went away (a short request body counts, as werkzeug's LimitedStream says)
_dropped_errors: tuple[type[BaseException], ...] = (
    *connection_dropped_errors,
    ClientDisconnected,
)

# what on_readable() tells the engine
PARK = 0  # wait for the socket to be readable again
CLOSE = 1  # unregister and close the socket
LINGER = 2  # half-close, discard input for a while, then close
GONE = 3  # the application took the socket over: forget it, do not touch it
WRITE = 4  # a response waits for the socket to drain: poll it for writability

_RECV_SIZE = 65536
# Windows has neither: recv() there is preceded by a zero-timeout select() instead
_MSG_DONTWAIT = getattr(socket, "MSG_DONTWAIT", 0)
# A list response up to this size is joined and sent with its head in one
# send; a larger one goes out piece by piece as the socket drains, so a client
# that does not read costs the list (the application's objects), not a copy.
JOIN_LIMIT = 65536
_HAS_POLL = hasattr(select, "poll")


class _TakenOver(Exception):
    """The application closed ``environ["werkzeug.socket"]`` itself (flask-sock
    does after a websocket session): nothing more is sent, the socket is not ours."""


class WSGIRequestHandler(_wz_serving.WSGIRequestHandler):
    """werkzeug's request handler, as a hook object.

    fastserve does not run the stdlib request cycle on its default path; one
    instance per connection carries werkzeug's overridable hooks, which the
    connection calls: :meth:`make_environ` (subclasses call ``super()`` and add
    keys), :meth:`log_request`, ``log``, ``log_error``, ``log_message``,
    ``address_string``, ``port_integer``, ``connection_dropped``,
    ``version_string``. The attributes werkzeug's hooks read are set per
    connection (``server``, ``connection``, ``client_address``) and, for the
    current request, just before a hook runs (``environ``, ``command``,
    ``path``, ``request_version``; ``requestline`` for a refused request), not
    on every request; ``headers`` is built from the environ when a hook reads it.

    A subclass that overrides the stdlib cycle itself (``handle``,
    ``parse_request``, ``run_wsgi``, ``send_header``, ``do_GET``...) is run the
    stdlib way, as werkzeug runs it.
    """

    #: the environ built by the connection for the current request
    _fs_environ: dict[str, Any] | None = None

    def make_environ(self) -> dict[str, Any]:
        """The WSGI environ of the current request."""
        env = self._fs_environ
        if env is None:  # the stdlib cycle (compatibility path)
            return super().make_environ()
        return env

    @property
    def headers(self) -> Any:
        """The request's header fields as an :class:`http.client.HTTPMessage`."""
        cached = self.__dict__.get("_fs_headers")
        env = self._fs_environ
        if env is not None and (cached is None or cached[0] is not env):
            cached = (env, headers_from_environ(env))
            self.__dict__["_fs_headers"] = cached
        return None if cached is None else cached[1]

    @headers.setter
    def headers(self, value: Any) -> None:
        self.__dict__["_fs_headers"] = (None, value)

    #: set per connection: whether :func:`._logging.log_access` may build the
    #: access line (no hook it inlines is overridden); never on the compatibility path
    _fs_fast_log = False

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        """The access log line (werkzeug's format and colours)."""
        if self._fs_fast_log:
            if _logging.log_access(self, code, size):
                return  # logged, or nobody would see it
        elif type(self).log is _wz_serving.WSGIRequestHandler.log and not _logging.info_enabled():
            return  # nobody would see it: skip the formatting
        # After a refused request "path" is unset and werkzeug logs the request line.
        super().log_request(code, size)


# Hooks whose override means "run the stdlib request cycle" (compatibility path).
_STDLIB_CYCLE = frozenset(
    {
        "__init__",
        "setup",
        "handle",
        "handle_one_request",
        "finish",
        "parse_request",
        "run_wsgi",
        "send_response",
        "send_response_only",
        "send_header",
        "end_headers",
        "flush_headers",
    }
)


class _Traits:
    """What a handler class needs from the connection (computed once per class)."""

    __slots__ = ("compat", "make_environ")

    def __init__(self, cls: Any) -> None:
        self.compat = not issubclass(cls, WSGIRequestHandler) or any(
            name in _STDLIB_CYCLE or name.startswith("do_")
            for klass in cls.__mro__[: cls.__mro__.index(WSGIRequestHandler)]
            for name in vars(klass)
        )
        self.make_environ = (
            not self.compat and cls.make_environ is not WSGIRequestHandler.make_environ
        )


_traits_cache: dict[type, _Traits] = {}


def handler_traits(cls: type) -> _Traits:
    """The (cached) :class:`_Traits` of a handler class."""
    traits = _traits_cache.get(cls)
    if traits is None:
        traits = _traits_cache[cls] = _Traits(cls)
    return traits


class HTTPConnection:
    """One accepted client socket, driven by the engine (see the module docstring).

    :param server: the server that accepted it.
    :param sock: the connected socket (plain; TLS is set up on first readiness).
    :param addr: the peer address as ``accept()`` returned it.
    """

    __slots__ = (
        "server",
        "sock",
        "fd",
        "addr",
        "handler",
        "compat",
        "custom_environ",
        "parser",
        "buf",
        "base_env",
        "status_version",
        "proto11",
        "server_line",
        "tls_pending",
        "is_tls",
        "poller",
        "parked",
        "deadline",
        "head_started",
        "reader",
        "expect",
        "continue_sent",
        "send_failed",
        "linger_bytes",
        "lingering",
        "disabled",
        "events",
        "log_checked",
        "plain",
        "env",
        "exchange",
        "waiting",
        "writing",
        "feeding",
        "preread",
        "body_start",
        "body_received",
        "out",
        "stalled_since",
        "stalled_sent",
        "stalled_queued",
        "resp_iter",
        "resp_result",
    )

    def __init__(self, server: ConnectionServer, sock: socket.socket, addr: Any) -> None:
        self.server = server
        #: the socket (an ``ssl.SSLSocket`` after the TLS handshake)
        self.sock: Any = sock
        self.fd = sock.fileno()
        self.addr = addr
        cls: Any = server.RequestHandlerClass
        traits = handler_traits(cls)
        self.compat = traits.compat
        self.custom_environ = traits.make_environ
        self.handler: Any = None
        self.parser: Any = None
        self.buf = b""
        self.base_env: dict[str, Any] = {}
        self.tls_pending = server.ssl_context is not None
        self.is_tls = False
        self.poller: Any = None
        #: waiting in the engine's poller (not owned by a thread)
        self.parked = False
        #: when the engine gives up on the parked connection (monotonic clock)
        self.deadline = 0.0
        self.head_started = 0.0
        self.reader: Any = EMPTY_INPUT
        self.expect = False
        self.continue_sent = False
        self.send_failed = False
        self.linger_bytes = 0
        #: half-closed after the last response; input is only discarded
        self.lingering = False
        #: taken out of the poller while a non-leader thread serves it
        self.disabled = False
        #: what the engine polls it for (READ, or WRITE_READY while a response waits)
        self.events = 1
        self.log_checked = False
        #: plain TCP/unix socket on our own request cycle (the fast path in on_readable)
        self.plain = not self.compat and not self.tls_pending
        #: the environ of the request being served (hooks read it through _bind_handler)
        self.env: dict[str, Any] | None = None
        self.exchange: Exchange | None = None
        #: parked with a deadline of its own: a body arriving, a drain, a stalled response
        self.waiting = False
        #: a response waits for the socket to drain (:attr:`out`)
        self.writing = False
        #: the body reader being fed in the poller (before the app, or a drain after it)
        self.feeding: Any = None
        self.preread = False
        self.body_start = 0.0
        self.body_received = 0
        #: response bytes accepted from the application and not yet sent: at most
        #: the head plus the last piece the application yielded (the iterator is
        #: pulled again only once this is empty)
        self.out: deque[Any] = deque()
        self.stalled_since = 0.0
        self.stalled_sent = 0
        self.stalled_queued: int | None = None
        #: the application's iterator (and iterable, for close()) while a response waits
        self.resp_iter: Any = None
        self.resp_result: Any = None
        if not self.compat:
            handler = cls.__new__(cls)
            handler.server = server
            handler.request = handler.connection = sock
            handler.client_address = addr
            handler.close_connection = False
            handler.environ = None  # werkzeug's address_string() tests it
            self.handler = handler
            version = cls.protocol_version
            self.status_version = version.encode("ascii")
            self.proto11 = version >= "HTTP/1.1"
            self.server_line = b"Server: " + handler.version_string().encode("latin-1") + b"\r\n"
            self.parser = RequestParser()
            # The access line may be skipped when INFO is off, unless a subclass
            # logs elsewhere (overrides log/log_request).
            _logging.get_logger()
            self.log_checked = (
                cls.log is _wz_serving.WSGIRequestHandler.log
                and cls.log_request is WSGIRequestHandler.log_request
            )
            handler._fs_fast_log = _logging.fast_access_log(cls)
            if not self.tls_pending:
                self.base_env = connection_environ(handler, server, sock)
                self.parser.set_base(self.base_env)

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
            self.deadline = self.stalled_since + self.server.send_timeout

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
            server = self.server
            self.stalled_sent += sent_now
            self.deadline = (
                self.stalled_since + server.send_timeout + self.stalled_sent / server.send_min_rate
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
        server = self.server
        delivered = start + self.stalled_sent - queued
        self.deadline = self.stalled_since + server.send_timeout + delivered / server.send_min_rate
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
                    sock.settimeout(self.server.send_timeout)
                sock.sendall(data)
                return
            view = memoryview(data)
            total = len(data)
            done = 0
            stalled = 0.0
            server = self.server
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
                limit = stalled + server.send_timeout + (done - base) / server.send_min_rate
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

    def _start_tls(self) -> bool:
        """The TLS handshake (bounded by ``request_head_timeout``); False on failure."""
        server = self.server
        self.tls_pending = False
        context: Any = server.ssl_context
        try:
            sock = context.wrap_socket(self.sock, server_side=True, do_handshake_on_connect=False)
            self.sock = sock
            sock.settimeout(server.request_head_timeout)
            sock.do_handshake()
            sock.settimeout(server.send_timeout)
        except (OSError, ValueError):
            return False  # werkzeug drops failed handshakes silently
        self.is_tls = True
        if self.handler is not None:
            self.handler.request = self.handler.connection = sock
            self.base_env = connection_environ(self.handler, server, sock)
            self.parser.set_base(self.base_env)
        return True

    def close(self) -> None:
        """Close the socket (the engine has unregistered it); a response cut
        short still gets its iterable's ``close()``."""
        if self.resp_result is not None:
            self._close_result()
        sock = self.sock
        self.parked = False
        try:
            if not self.compat or self.is_tls:
                sock.close()
                return
            try:  # socketserver's shutdown_request()
                sock.shutdown(socket.SHUT_WR)
            except OSError:
                pass
            sock.close()
        except OSError:
            pass

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
        return CLOSE if self.linger_bytes > self.server.linger_limit else PARK

    def expire(self) -> None:
        """The deadline passed while parked: 408 for a partial head or a body
        that did not arrive in time, a log line for a response the client did
        not read; the engine then closes the connection."""
        if self.handler is None:
            return
        if self.writing:
            self._call_hook(
                "log_error", "Client did not read the response in time; closing the connection"
            )
            return
        if self.feeding is not None and not self.preread:
            return  # a drain: the response is complete, nothing to say
        if self.preread:
            reason = "request body not received in time"
        elif self.buf:
            reason = "request head not complete in time"
        else:
            return
        self._log_refusal(408, reason[0].upper() + reason[1:])
        response = error_response(self.status_version, 408, reason, self.server_line)
        try:
            if self.is_tls:  # no MSG_DONTWAIT on TLS sockets: a short bound instead
                self.sock.settimeout(0.2)
                self.sock.sendall(response)
            else:
                self.sock.send(response, _MSG_DONTWAIT)
        except (OSError, ValueError):
            pass

    # -- the request cycle -------------------------------------------------------------

    def on_readable(self) -> int:
        """Serve what the socket has: every complete request, in order."""
        if self.plain:
            try:
                data = self.sock.recv(_RECV_SIZE, _MSG_DONTWAIT)
            except BlockingIOError:
                return PARK
            except OSError:
                return CLOSE
        else:
            if self.tls_pending and not self._start_tls():
                return CLOSE
            if self.compat:
                return self._run_compat()
            try:
                data = self._recv_nowait()
            except OSError:
                return CLOSE
            if data is None:
                return PARK
        if not data:
            return CLOSE
        if self.feeding is not None:
            return self._feed(data)
        return self._process(self.buf + data if self.buf else data)

    def _process(self, buf: bytes) -> int:
        """Parse and serve the requests in ``buf`` until one waits or the
        buffer holds no complete head."""
        parser = self.parser
        while True:
            try:
                n = parser.parse(buf)
            except HTTPParseError as e:
                self.buf = buf
                return self._refuse(e.status, e.reason)
            if not n:
                self.buf = buf
                if not self.head_started:
                    self.head_started = time.monotonic()
                return PARK
            self.buf = buf
            self.head_started = 0.0
            state = self._serve(n)
            if state != PARK or self.waiting:
                return state
            buf = self.buf
            if not buf:
                return PARK

    def _refuse(self, status: int, reason: str) -> int:
        """Answer a request that is refused before the application sees it."""
        self._log_refusal(status, reason)
        try:
            self.send(error_response(self.status_version, status, reason, self.server_line))
        except OSError:
            return CLOSE
        return LINGER

    def _log_refusal(self, status: int, reason: str) -> None:
        handler = self.handler
        buf = self.buf
        end = buf.find(b"\n")
        line = buf[: end if end >= 0 else min(len(buf), 8190)]
        handler.requestline = line.decode("latin-1").rstrip("\r\n")
        for name in ("path", "command", "request_version"):
            handler.__dict__.pop(name, None)
        handler.environ = None
        handler._fs_environ = None
        self._call_hook("log_error", "code %d, message %s", status, reason)
        self._call_hook("log_request", status)

    def _call_hook(self, name: str, *args: Any) -> None:
        """Run a handler hook whose failure must not cost the response: an
        exception is logged (once, with its traceback) and swallowed."""
        try:
            getattr(self.handler, name)(*args)
        except Exception:
            self.server.log(
                "error",
                f"Error in the request handler's {name}():\n{traceback.format_exc()}",
            )

    def _serve(self, n: int) -> int:
        """Serve the request whose head is ``self.buf[:n]``: its body first
        when it is small and still arriving (received in the poller, PARK with
        :attr:`waiting`), then the application."""
        server = self.server
        parser = self.parser
        buf = self.buf
        length = parser.content_length
        if not length:  # no body (a chunked request has -1)
            self.buf = buf[n:] if n < len(buf) else b""
            return self._run(EMPTY_INPUT)
        self.expect = parser.expect_continue and parser.version == "HTTP/1.1"
        self.continue_sent = False
        self.body_received = 0
        self.body_start = time.monotonic()
        if length < 0:
            self.buf = b""
            try:
                reader: Any = ChunkedReader(self, buf[n:], server.max_content_length)
            except HTTPParseError as e:
                return self._refuse(e.status, e.reason)
            small = len(buf) - n < server.preread_limit
        else:
            limit = server.max_content_length
            if limit is not None and length > limit:
                self.buf = b""
                return self._refuse(413, BodyTooLargeError.default_reason)
            end = n + length
            reader = ContentLengthReader(self, buf[n:end], length)
            self.buf = buf[end:]
            small = length <= server.preread_limit
        if small and not self.expect and reader.wire_left() != 0:
            # the rest of a small body is received without blocking; what has
            # not arrived yet arrives while the connection waits in the
            # poller: a client trickling it holds no thread
            self.body_received = len(buf) - n
            self._start_feeding(reader, True)
            while True:
                data = self._recv_or_state()
                if isinstance(data, int):
                    return data
                done = self._absorb(data)
                if done is True:
                    break
                if done is not None:
                    return done
        return self._run(reader)

    def _start_feeding(self, reader: Any, preread: bool) -> None:
        server = self.server
        self.feeding = reader
        self.preread = preread
        self.waiting = True
        if preread:
            self.deadline = self._body_deadline()
        else:
            self.body_received = 0
            self.deadline = time.monotonic() + server.drain_timeout

    def _body_deadline(self) -> float:
        """When the request body must be complete: ``body_timeout`` after the
        head (or the ``100 Continue``), plus a second per ``body_min_rate``
        bytes received (Apache ``mod_reqtimeout``'s ``MinRate``)."""
        server = self.server
        return self.body_start + server.body_timeout + self.body_received / server.body_min_rate

    def _feed(self, data: bytes) -> int:
        """Bytes for the body being received in the poller (a small body
        before the application runs, or an unread body being drained)."""
        reader = self.feeding
        done = self._absorb(data)
        if done is None:
            return PARK
        if done is not True:
            return done
        if reader is not self.reader:  # a body received before the application
            state = self._run(reader)
        else:  # a drain
            if type(reader) is ChunkedReader:
                self.buf = reader.leftover
            state = PARK
        if state != PARK or self.waiting or not self.buf:
            return state
        return self._process(self.buf)

    def _absorb(self, data: bytes) -> bool | int | None:
        """Give ``data`` to the reader being fed: True when feeding is over,
        None when it needs more, or the connection's fate (a bad chunk, a
        drain over its limit)."""
        reader = self.feeding
        server = self.server
        preread = self.preread
        try:
            extra = reader.feed(data)
        except HTTPParseError as e:
            self._stop_feeding()
            return self._refuse(e.status, e.reason) if preread else CLOSE
        if extra:
            self.buf = self.buf + extra if self.buf else extra
        self.body_received += len(data) - len(extra)
        if preread:
            if reader.wire_left() != 0 and self.body_received <= server.preread_limit:
                self.deadline = self._body_deadline()
                return None
            # complete, or a chunked body that turned out large: the
            # application reads the rest itself
        else:
            reader.discard()
            if reader.wire_left() != 0:
                return None if self.body_received <= server.drain_limit else LINGER
        self._stop_feeding()
        return True

    def _stop_feeding(self) -> None:
        self.feeding = None
        self.preread = False
        self.waiting = False

    def _run(self, reader: Any) -> int:
        """Run the application for the parsed request with body ``reader``."""
        server = self.server
        parser = self.parser
        env = parser.environ  # holds base_env's entries already (set_base)
        env["wsgi.errors"] = sys.stderr  # werkzeug reads sys.stderr per request
        version = parser.version
        req11 = version == "HTTP/1.1"
        if reader is EMPTY_INPUT:
            self.expect = False
        elif type(reader) is ChunkedReader:
            env["wsgi.input_terminated"] = True
        env["wsgi.input"] = self.reader = reader
        method = parser.method
        if self.custom_environ:
            self._bind_handler(env, method, version)
            env = self.handler.make_environ()
        self.env = env
        # An Upgrade request (websocket) may hand the socket to the application
        # (``werkzeug.socket``): such a connection is never reused.
        proto11 = self.proto11
        keep = proto11 and parser.keep_alive and not server._closing and "HTTP_UPGRADE" not in env
        self.exchange = Exchange(
            self, method == "HEAD", proto11 and req11, keep, keep and not req11
        )
        self.send_failed = False
        return self._guarded(self._start_app)

    def _guarded(self, step: Callable[[], int]) -> int:
        """Run one step of the response (the application, or resuming it once
        the socket drained) and turn what it raises into the connection's fate."""
        try:
            return step()
        except _TakenOver:
            self._close_result()
            return GONE
        except _dropped_errors as e:
            self._close_result()
            env = self.env
            self._bind_handler(env)
            self._call_hook("connection_dropped", e, env)
            if self.send_failed:
                self._call_hook(
                    "log_error", "Client disconnected while sending the response: %s", e
                )
            return CLOSE
        except Exception as e:
            self._close_result()
            if self.server.passthrough_errors:
                raise
            return self._app_failed(e)

    def _start_app(self) -> int:
        exchange: Any = self.exchange
        result = self.server.app(self.env, exchange.start_response)
        if type(result) is list:  # nothing to close
            if exchange.head_sent:  # the application used write()
                for data in result:
                    self.push(exchange.encode(data))
                self.push(exchange.encode_end())
            elif len(result) == 1:
                exchange.send_whole(result[0])
            else:
                total = _list_size(result)
                if total > JOIN_LIMIT:  # pieces go out as the socket takes them
                    self.push(exchange.commit_length(total))
                    self.resp_iter = iter(result)
                    return self._pump()
                exchange.send_whole(b"".join(result))
            if self.out:
                return self._wait_for_socket()
            return self._after_response()
        self.resp_result = result
        self.resp_iter = iter(result)
        return self._pump()

    def _pump(self) -> int:
        """Pull the application's iterator while the socket takes what it
        yields; WRITE when the socket is full (pulled again once it drains)."""
        exchange: Any = self.exchange
        it = self.resp_iter
        if it is not None:
            push = self.push
            encode = exchange.encode
            out = self.out
            for data in it:
                push(encode(data))
                if out:
                    return self._wait_for_socket()
            self.resp_iter = None
            self.push(exchange.encode_end())
            if out:
                return self._wait_for_socket()
        result = self.resp_result
        if result is not None:
            self.resp_result = None
            close = getattr(result, "close", None)
            if close is not None:
                close()
        return self._after_response()

    def _wait_for_socket(self) -> int:
        self.writing = True
        self.waiting = True
        return WRITE

    def on_writable(self) -> int:
        """The socket of a waiting response drained: send on, pull the
        application's iterator again, then serve what the client pipelined."""
        state = self._guarded(self._resume)
        if state != PARK or self.waiting or not self.buf:
            return state
        return self._process(self.buf)

    def _resume(self) -> int:
        if not self._flush():
            return WRITE
        self.writing = False
        self.waiting = False
        return self._pump()

    def _close_result(self) -> None:
        """``close()`` the application's iterable after an error or a cut
        connection (its errors are logged, not raised)."""
        self.resp_iter = None
        self.out.clear()
        self.writing = False
        self.waiting = False
        result = self.resp_result
        if result is None:
            return
        self.resp_result = None
        close = getattr(result, "close", None)
        if close is not None:
            try:
                close()
            except Exception:
                self.server.log("error", f"Error closing the response:\n{traceback.format_exc()}")

    def _after_response(self) -> int:
        """The response is complete: keep the connection (draining the unread
        body in the poller first) or close it."""
        if self.sock.fileno() < 0:
            return GONE  # the application closed the socket it took over
        exchange: Any = self.exchange
        keep = exchange.keep
        reader = self.reader
        if reader is not EMPTY_INPUT:
            if reader.eof:
                return CLOSE  # the client closed before the end of its body
            if keep and reader.unread():
                return self._drain(reader)
            if keep and type(reader) is ChunkedReader:
                self.buf = reader.leftover
            if not keep and reader.wire_left() != 0:
                return LINGER
        if not keep:
            # half-close when the client may still be sending (pipelined
            # requests, a websocket peer's close frame): no reset for it
            env: Any = self.env
            return LINGER if self.buf or "HTTP_UPGRADE" in env else CLOSE
        return PARK

    def _drain(self, reader: Any) -> int:
        """Discard the unread rest of the body; the part still on the wire is
        received in the poller (``drain_limit`` bytes within ``drain_timeout``)."""
        if self.expect and not self.continue_sent and reader.wire_left() != 0:
            return LINGER  # the client waits for 100 before sending the body
        reader.discard()
        if reader.wire_left() == 0:
            if type(reader) is ChunkedReader:
                self.buf = reader.leftover
            return PARK
        self._start_feeding(reader, False)
        data = self._recv_or_state()
        if isinstance(data, int):
            return data
        return self._feed(data)

    def _bind_handler(
        self, env: dict[str, Any] | None = None, method: str | None = None, version: str = ""
    ) -> None:
        """Give the handler the current request (werkzeug's hooks read
        ``command``, ``path``, ``request_version``, ``environ``, ``headers``).
        Done only when a hook is about to run, not per request."""
        handler = self.handler
        if env is None:
            env = self.env
            if env is None:
                return
        if method is None:
            method = env.get("REQUEST_METHOD")
            version = env.get("SERVER_PROTOCOL", "")
        handler.command = method
        handler.path = env.get("REQUEST_URI")
        handler.request_version = version
        handler.environ = env
        handler._fs_environ = env

    def _send_response_now(self, app: Any, exchange: Exchange) -> None:
        """Run a small WSGI app (an error page) and send its response, blocking."""
        result = app(self.env, exchange.start_response)
        try:
            for data in result:
                self.send(exchange.encode(data))
            self.send(exchange.encode_end())
        finally:
            close = getattr(result, "close", None)
            if close is not None:
                close()

    def _app_failed(self, error: Exception) -> int:
        """The application raised: a 500 page (or the parse error's status) when
        nothing was sent yet, a log line, and the connection closes."""
        exchange: Any = self.exchange
        if not exchange.head_sent:
            if isinstance(error, HTTPParseError):
                self._log_refusal(error.status, error.reason)
                try:
                    self.send(
                        error_response(
                            self.status_version, error.status, error.reason, self.server_line
                        )
                    )
                except OSError:
                    return CLOSE
                return LINGER
            fallback = Exchange(self, exchange.head_only, exchange.chunk_ok, False)
            try:
                self._send_response_now(InternalServerError(), fallback)
            except Exception:
                pass
        from werkzeug.debug.tbtools import DebugTraceback

        msg = DebugTraceback(error).render_traceback_text()
        self.server.log("error", f"Error on request:\n{msg}")
        if self.reader is not EMPTY_INPUT and self.reader.wire_left() != 0:
            return LINGER
        return CLOSE

    def body_allows_keep_alive(self) -> bool:
        """At head time: can the rest of the request body be drained afterwards?"""
        reader = self.reader
        if reader is EMPTY_INPUT:
            return True
        left: int = reader.wire_left()
        if left == 0:
            return True
        if self.expect and not self.continue_sent:
            return False
        return left <= self.server.drain_limit

    def _run_compat(self) -> int:
        """Run a stdlib-style handler class on this connection, then close it."""
        server = self.server
        try:
            server.RequestHandlerClass(self.sock, self.addr, server)
        except Exception:
            server.handle_error(self.sock, self.addr)
        return CLOSE


def _wait_for(fd: int, events: int, timeout: float) -> bool:
    """Whether ``fd`` becomes ready for ``events`` within ``timeout`` seconds."""
    poller = select.poll()
    poller.register(fd, events)
    return bool(poller.poll(max(0.0, timeout) * 1000.0))


def _list_size(pieces: list[Any]) -> int:
    """The body length of a list response; -1 when a piece is not bytes (the
    join then raises as it always did, before anything was sent)."""
    total = 0
    for piece in pieces:
        if type(piece) is not bytes:
            return -1
        total += len(piece)
    return total
