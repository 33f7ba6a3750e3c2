"""One client connection: bytes in, parser, application, bytes out.

Runtime flow of a connection (the engine in :mod:`fastserve.server` owns the
poller and the threads; this module owns everything between the socket and
the application)::

    engine accepts the socket -> HTTPConnection(server, sock, addr, settings)
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
(``MSG_DONTWAIT``) when the poller said readable, and waits with ``poll`` until
the body's deadline while the application reads the body.

:class:`HTTPConnection` is built in layers, each a module that imports only the
ones below it: :mod:`fastserve._transport` (socket I/O and its deadlines),
:mod:`fastserve._reporting` (refusals, expiries, application errors, handler
hooks), :mod:`fastserve._body_feed` (bodies received in the poller), and this
module (the request cycle). Timeouts and limits come from the engine's
:class:`~fastserve._settings.Settings`, read when ``serve_forever()`` started.
"""

from __future__ import annotations

import itertools
import socket
import sys
import time
import traceback
from collections import deque
from collections.abc import Callable
from typing import Any

from werkzeug import serving as _wz_serving
from werkzeug.exceptions import ClientDisconnected

from . import _logging, _response
from ._body import EMPTY_INPUT, ChunkedReader, ContentLengthReader
from ._body_feed import BodyFeeding
from ._contracts import ConnectionServer
from ._environ import connection_environ
from ._handler import WSGIRequestHandler, handler_traits, server_line
from ._response import Exchange
from ._sendqueue import queued_bytes
from ._settings import Settings
from ._tls import connection_dropped_errors
from ._transport import (
    _MSG_DONTWAIT,
    _RECV_SIZE,
    CLOSE,
    DEFER,
    GONE,
    LINGER,
    PARK,
    WRITE,
    _TakenOver,
)
from ._werkzeug_private import internal as _wz_internal
from .errors import BodyTooLargeError, HTTPParseError
from .parser import PARSER_IMPL, RequestParser

__all__ = [
    "CLOSE",
    "DEFER",
    "GONE",
    "HTTPConnection",
    "LINGER",
    "PARK",
    "WRITE",
    "WSGIRequestHandler",
    "connection_dropped_errors",
    "handler_traits",
]


# the client went away (a short request body counts, as werkzeug's LimitedStream says)
_dropped_errors: tuple[type[BaseException], ...] = (
    *connection_dropped_errors,
    ClientDisconnected,
)

# A list response up to this size is joined and sent with its head in one
# send; a larger one goes out piece by piece as the socket drains, so a client
# that does not read costs the list (the application's objects), not a copy.
JOIN_LIMIT = 65536


class HTTPConnection(BodyFeeding):
    """One accepted client socket, driven by the engine (see the module docstring).

    :param server: the server that accepted it.
    :param sock: the connected socket (plain; TLS is set up on first readiness).
    :param addr: the peer address as ``accept()`` returned it.
    :param settings: the timeouts and limits (the engine's); by default read
        from ``server`` now.
    """

    __slots__ = (
        "addr",
        "handler",
        "compat",
        "custom_environ",
        "parser",
        "base_env",
        "status_version",
        "proto11",
        "server_line",
        "tls_pending",
        "log_checked",
    )

    def __init__(
        self,
        server: ConnectionServer,
        sock: socket.socket,
        addr: Any,
        settings: Settings | None = None,
    ) -> None:
        self.init_state(server, sock, EMPTY_INPUT, deque())
        self.settings = Settings.from_server(server) if settings is None else settings
        self.addr = addr
        cls: Any = server.RequestHandlerClass
        traits = handler_traits(cls)
        self.compat = traits.compat
        self.custom_environ = traits.make_environ
        self.handler: Any = None
        self.parser: Any = None
        self.base_env: dict[str, Any] = {}
        self.tls_pending = server.ssl_context is not None
        self.is_tls = False
        self.poller: Any = None
        self.continue_sent = False
        self.linger_bytes = 0
        self.log_checked = False
        #: plain TCP/unix socket on our own request cycle (the fast path in on_readable)
        self.plain = not self.compat and not self.tls_pending
        self.preread = False
        self.body_start = 0.0
        self.body_received = 0
        self.stalled_since = 0.0
        self.stalled_sent = 0
        self.stalled_queued: int | None = None
        if not self.compat:
            self._new_handler(cls, server, sock, addr)

    def _new_handler(
        self, cls: Any, server: ConnectionServer, sock: socket.socket, addr: Any
    ) -> None:
        """The connection's hook object (its ``__init__``, the stdlib request
        cycle, is not run) and what the connection takes from its class."""
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
        self.server_line = server_line(handler)
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
            if _fast_path_for is not None and not self.custom_environ:
                self.fast = _fast_path_for(self)

    def _start_tls(self) -> bool:
        """The TLS handshake (bounded by ``request_head_timeout``); False on failure."""
        server = self.server
        self.tls_pending = False
        context: Any = server.ssl_context
        try:
            sock = context.wrap_socket(self.sock, server_side=True, do_handshake_on_connect=False)
            self.sock = sock
            sock.settimeout(self.settings.request_head_timeout)
            sock.do_handshake()
            sock.settimeout(self.settings.send_timeout)
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
        fast = self.fast
        if fast is not None:
            return fast(self, buf)  # type: ignore[no-any-return]
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

    def _serve(self, n: int) -> int:
        """Serve the request whose head is ``self.buf[:n]``: its body first
        when it is small and still arriving (received in the poller, PARK with
        :attr:`waiting`), then the application."""
        settings = self.settings
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
                reader: Any = ChunkedReader(self, buf[n:], settings.max_content_length)
            except HTTPParseError as e:
                return self._refuse(e.status, e.reason, True)
            small = len(buf) - n < settings.preread_limit
        else:
            limit = settings.max_content_length
            if limit is not None and length > limit:
                self.buf = b""
                return self._refuse(413, BodyTooLargeError.default_reason, True)
            end = n + length
            reader = ContentLengthReader(self, buf[n:end], length)
            self.buf = buf[end:]
            small = length <= settings.preread_limit
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
        return self._answer(self.server.app(self.env, exchange.start_response))

    def _answer(self, result: Any) -> int:
        """Send what the application returned (the fast path's fallback too)."""
        exchange: Any = self.exchange
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

    def _run_compat(self) -> int:
        """Run a stdlib-style handler class on this connection, then close it."""
        server = self.server
        try:
            server.RequestHandlerClass(self.sock, self.addr, server)
        except Exception:
            server.handle_error(self.sock, self.addr)
        return CLOSE


def _list_size(pieces: list[Any]) -> int:
    """The body length of a list response; -1 when a piece is not bytes (the
    join then raises as it always did, before anything was sent)."""
    total = 0
    for piece in pieces:
        if type(piece) is not bytes:
            return -1
        total += len(piece)
    return total


# The compiled request cycle (``_fastpath.pxi``), wired to this module and _response.py.
_fast_path_for: Callable[[HTTPConnection], Any] | None = None
if PARSER_IMPL == "c":  # pragma: no cover - depends on the build
    from . import _parser

    _fast_path_for = _parser.fast_path_for
    _parser.configure_fast_path(
        exchange=Exchange,
        empty_input=EMPTY_INPUT,
        date_line=_response.date_line,
        queued_bytes=queued_bytes,
        wz_internal=_wz_internal,
        monotonic=time.monotonic,
        parse_error=HTTPParseError,
        states=(PARK, CLOSE, LINGER, GONE, WRITE, DEFER),
        framing_length=_response._LENGTH,
        flag_close=_response._FLAG_CLOSE,
        flag_te=_response._FLAG_TE,
        join_limit=JOIN_LIMIT,
        whole_limit=_response.WHOLE_LIMIT,
        msg_dontwait=_MSG_DONTWAIT,
        chain=itertools.chain,
    )
