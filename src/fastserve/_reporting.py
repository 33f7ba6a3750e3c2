"""What a connection says when something goes wrong, and the hooks it says it through.

:class:`Reporting` sits between the socket side (:mod:`fastserve._transport`)
and the request cycle (:mod:`fastserve.connection`): a request refused before
the application (status, ``code %d, message %s`` and the access line), a
deadline that passed while parked (408, or a log line for a response the
client did not read), an application that raised (a 500 page when nothing was
sent yet, ``Error on request:`` and the traceback). werkzeug's hooks run
through :meth:`Reporting._call_hook`, after :meth:`Reporting._bind_handler`
gave the handler the current request.
"""

from __future__ import annotations

import traceback
from typing import Any

from werkzeug.exceptions import InternalServerError

from ._body import EMPTY_INPUT
from ._response import Exchange, error_response
from ._transport import _MSG_DONTWAIT, CLOSE, LINGER, Transport
from .errors import HTTPParseError

__all__ = ["Reporting"]


class Reporting(Transport):
    """Refusals, expiries and application errors (see the module docstring)."""

    __slots__ = ()

    handler: Any
    parser: Any
    env: dict[str, Any] | None
    exchange: Exchange | None
    status_version: bytes
    server_line: bytes
    reader: Any

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
        self._log_refusal(408, reason[0].upper() + reason[1:], self.preread)
        response = error_response(self.status_version, 408, reason, self.server_line)
        try:
            if self.is_tls:  # no MSG_DONTWAIT on TLS sockets: a short bound instead
                self.sock.settimeout(0.2)
                self.sock.sendall(response)
            else:
                self.sock.send(response, _MSG_DONTWAIT)
        except (OSError, ValueError):
            pass

    def _refuse(self, status: int, reason: str, after_head: bool = False) -> int:
        """Answer a request that is refused before the application sees it
        (``after_head``: its head was parsed, its body is refused)."""
        self._log_refusal(status, reason, after_head)
        try:
            self.send(error_response(self.status_version, status, reason, self.server_line))
        except OSError:
            return CLOSE
        return LINGER

    def _log_refusal(self, status: int, reason: str, after_head: bool = False) -> None:
        """The error and access lines of a refusal, werkzeug's way: from the
        request line (the parsed request's when ``after_head``, else the first
        line of what was received)."""
        handler = self.handler
        if after_head:  # the buffer holds what follows the head by now
            parser = self.parser
            line = f"{parser.method} {parser.environ.get('RAW_URI', '')} {parser.version}"
        else:
            buf = self.buf
            end = buf.find(b"\n")
            line = buf[: end if end >= 0 else min(len(buf), 8190)].decode("latin-1")
        handler.requestline = line.rstrip("\r\n")
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
                self._log_refusal(error.status, error.reason, True)
                try:
                    self.send(
                        error_response(
                            self.status_version, error.status, error.reason, self.server_line
                        )
                    )
                except OSError:
                    return CLOSE
                return LINGER
            fallback = Exchange(exchange.conn, exchange.head_only, exchange.chunk_ok, False)
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
