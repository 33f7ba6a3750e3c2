"""Listening socket, poller loop and werkzeug's server classes.

Runtime flow (cheroot-style)::

    BaseWSGIServer(host, port, app, handler, passthrough_errors, ssl_context, fd)
        werkzeug's construction order: sticky handler.protocol_version, address
        family, stale unix socket unlinked, bind + listen (errors: message on
        stderr, exit 1) or socket.fromfd(WERKZEUG_SERVER_FD), TLS context wraps
        the listening socket (accept() below still returns plain sockets: the
        handshake runs per connection, bounded, never in the accept loop)
    serve_forever()
        non-threaded ........ Engine.lead() in the calling thread
        threaded ............ LeaderFollowers (_workers.py): a leader thread runs
                              Engine.lead(), the calling thread monitors it
        processes=N ......... Prefork (_workers.py): N forked workers, each runs
                              Engine.lead() single-threaded
    Engine.lead()                                   # one thread at a time
        loop: fds = poller.poll(...)                 # level-triggered epoll; a
                                                     # connection stays registered
                                                     # while the leader serves it
            listening socket -> accept up to 64 (TCP_DEFER_ACCEPT: the request is
                                already there): TCP_NODELAY (inherited from the
                                listener on Linux), HTTPConnection, serve at
                                once; registered only when it has to wait
            wake-up pipe     -> shutdown() / server_close()
            connection       -> claim it (parked -> busy), conn.on_readable()
                                (connection.py: parse, app, respond, keep-alive)
                                then settle: PARK re-arms it in the poller with a
                                deadline, LINGER half-closes it, CLOSE closes it,
                                GONE forgets it (the app took the socket over)
            demoted while serving (a slow request, see _workers.py)? the
            monitor disabled this connection in the poller (Engine.demote) so the
            new leader does not see it; it is re-enabled when this thread parks
            it, and this thread returns to the followers (the rest of the batch
            is still readable: level-triggered, the new leader gets it)
            once a second: expire parked connections past their deadline
            (partial head after request_head_timeout -> 408; idle keep-alive
            after keep_alive_timeout, counted from the first sweep that saw it
            idle; lingering after linger_timeout)
    shutdown()      stop flag + wake-up byte; waits for serve_forever to return
    server_close()  closes the listening socket and every parked connection;
                    connections inside a request are closed when it ends

Timeouts and limits are class attributes of the server (subclass or assign to
change them); defaults:

====================  ========  =====================================================
request_head_timeout  10 s      a head not complete this long after its first
                                byte gets 408 and a close (also bounds the TLS
                                handshake)
keep_alive_timeout    75 s      an idle keep-alive connection is closed
read_timeout          60 s      waiting for request body bytes the app reads
max_content_length    None      larger request bodies get 413 (None: no limit)
drain_limit           1 MiB     unread body bytes discarded to keep a connection
drain_timeout         1 s       how long that drain may wait
linger_timeout        2 s       input discarded after a half-close, at most
linger_limit          64 MiB    ... this many bytes
max_threads           1024      threads serving at once (threaded; warning when hit)
promote_after         10 ms     a request this long moves the poller to another thread
====================  ========  =====================================================

Differences from werkzeug, on purpose: real keep-alive and pipelining (werkzeug
closes every connection), strict parsing (bad requests are refused before the
app with a status and a log line), HEAD/1xx/204/304 carry no body, one
``100 Continue`` only to HTTP/1.1 clients when the app reads, chunked responses
only to HTTP/1.1 clients, a disconnect mid-response is logged, ``processes=N``
pre-forks N workers (werkzeug forks per connection), the TLS handshake runs per
connection instead of in ``accept()``.
"""

from __future__ import annotations

import errno
import os
import socket
import sys
import threading
from http.server import HTTPServer
from typing import TYPE_CHECKING, Any

from werkzeug.serving import get_interface_ip, get_sockaddr, select_address_family

from ._compat import can_fork
from ._engine import Engine
from ._logging import _ansi_style, _log
from ._prefork import Prefork
from ._tls import generate_adhoc_ssl_context, load_ssl_context
from ._workers import LeaderFollowers
from .connection import WSGIRequestHandler

if TYPE_CHECKING:
    import ssl

__all__ = [
    "BaseWSGIServer",
    "Engine",
    "ForkingWSGIServer",
    "LISTEN_QUEUE",
    "ThreadedWSGIServer",
    "make_server",
]

LISTEN_QUEUE = 128

try:
    af_unix: Any = socket.AF_UNIX
except AttributeError:  # pragma: no cover - Windows
    af_unix = None


class BaseWSGIServer(HTTPServer):
    """A WSGI server that handles one request at a time (werkzeug's class,
    fastserve's engine).

    Use :func:`make_server` to create a server instance.

    :param host: host name, IP address, or ``unix://path``.
    :param port: port (ignored for unix sockets).
    :param app: the WSGI application.
    :param handler: request handler class, :class:`WSGIRequestHandler` by default.
    :param passthrough_errors: let application errors propagate.
    :param ssl_context: ``SSLContext``, ``(cert, key)`` tuple or ``"adhoc"``.
    :param fd: an already bound and listening socket's descriptor (reloader).
    """

    multithread = False
    multiprocess = False
    request_queue_size = LISTEN_QUEUE
    allow_reuse_address = True

    #: seconds a request head may take after its first byte (then 408, RFC 9110 §15.5.9)
    request_head_timeout: float = 10.0
    #: seconds an idle keep-alive connection stays open
    keep_alive_timeout: float = 75.0
    #: seconds to wait for request body bytes the application asked for
    read_timeout: float = 60.0
    #: largest request body accepted (413 above it, RFC 9110 §15.5.14); None = no limit
    max_content_length: int | None = None
    #: unread body bytes drained after a response to keep the connection
    drain_limit: int = 1024 * 1024
    #: seconds the drain may wait for body bytes
    drain_timeout: float = 1.0
    #: seconds to keep discarding input after a half-close, and how many bytes
    linger_timeout: float = 2.0
    linger_limit: int = 64 * 1024 * 1024
    #: most threads serving requests at once (threaded servers)
    max_threads: int = 1024
    #: seconds the leader thread may spend in one request before another thread
    #: takes over the poller (threaded servers)
    promote_after: float = 0.01

    def __init__(
        self,
        host: str,
        port: int,
        app: Any,
        handler: type[Any] | None = None,
        passthrough_errors: bool = False,
        ssl_context: Any = None,
        fd: int | None = None,
    ) -> None:
        if handler is None:
            handler = WSGIRequestHandler

        # werkzeug: speak HTTP/1.1 when threads or processes serve, set on the
        # handler *class* (sticky, and how the popular idiom interacts).
        if "protocol_version" not in vars(handler) and (self.multithread or self.multiprocess):
            handler.protocol_version = "HTTP/1.1"

        self.host = host
        self.port = port
        self.app = app
        self.passthrough_errors = passthrough_errors

        self.address_family = address_family = select_address_family(host, port)
        server_address = get_sockaddr(host, int(port), address_family)

        # Remove a leftover unix socket file from a previous run (not one that
        # was set up by run_simple's reloader parent).
        if address_family == af_unix and fd is None:
            if os.path.exists(server_address):  # type: ignore[arg-type]
                os.unlink(server_address)  # type: ignore[arg-type]

        super().__init__(server_address, handler, bind_and_activate=False)  # type: ignore[arg-type]
        self._engine: Engine | None = None
        self._closing = False
        self._stop = threading.Event()
        self._stopped = threading.Event()
        self._stopped.set()

        if fd is None:
            try:
                self.server_bind()
                self.server_activate()
            except OSError as e:
                self.server_close()
                print(e.strerror, file=sys.stderr)
                if e.errno == errno.EADDRINUSE:
                    print(
                        f"Port {port} is in use by another program. Either identify and"
                        " stop that program, or start the server with a different"
                        " port.",
                        file=sys.stderr,
                    )
                    if sys.platform == "darwin" and port == 5000:
                        print(
                            "On macOS, try searching for and disabling"
                            " 'AirPlay Receiver' in System Settings.",
                            file=sys.stderr,
                        )
                sys.exit(1)
            except BaseException:
                self.server_close()
                raise
        else:
            # socketserver opened a socket although bind_and_activate is False
            self.socket.close()
            self.socket = socket.fromfd(fd, address_family, socket.SOCK_STREAM)
            self.server_address = self.socket.getsockname()

        if address_family != af_unix:
            self.port = self.server_address[1]

        if ssl_context is not None:
            if isinstance(ssl_context, tuple):
                ssl_context = load_ssl_context(*ssl_context)
            elif ssl_context == "adhoc":
                ssl_context = generate_adhoc_ssl_context()
            self.socket = ssl_context.wrap_socket(self.socket, server_side=True)
            self.ssl_context: ssl.SSLContext | None = ssl_context
        else:
            self.ssl_context = None

        from . import __version__

        self._server_version = f"fastserve/{__version__}"
        self._closing = False

    def log(self, type: str, message: str, *args: Any) -> None:
        """Log on the ``"werkzeug"`` logger (no address/date prefix)."""
        _log(type, message, *args)

    # -- serving ---------------------------------------------------------------------

    def serve_forever(self, poll_interval: float = 0.5) -> None:
        """Serve until :meth:`shutdown` or Ctrl+C; closes the server at the end."""
        self._stop.clear()
        self._stopped.clear()
        try:
            self._serve(poll_interval)
        except KeyboardInterrupt:
            pass
        finally:
            try:
                self.server_close()
            finally:
                self._stopped.set()

    def _serve(self, poll_interval: float) -> None:
        engine = self._engine = Engine(self, poll_interval)
        if self.multithread:
            pool = LeaderFollowers(engine, self.max_threads, self.promote_after)
            try:
                pool.run(self._stop)
            finally:
                engine.stop()
                pool.stop()
        else:
            engine.lead(0)

    def _serve_worker(self, parent_pid: int) -> None:
        """Body of a pre-fork worker process."""
        self._engine = Engine(self, 0.5, parent_pid=parent_pid)
        try:
            self._engine.lead(0)
        finally:
            self.server_close()

    def shutdown(self) -> None:
        """Stop :meth:`serve_forever` and wait until it returned."""
        self._stop.set()
        engine = self._engine
        if engine is not None:
            engine.stop()
        self._stopped.wait()

    def server_close(self) -> None:
        """Close the listening socket and every parked connection."""
        self._closing = True
        engine = self._engine
        if engine is not None:
            engine.stopping = True
            engine.close()
        super().server_close()

    def handle_error(self, request: Any, client_address: Any) -> None:
        if self.passthrough_errors:
            raise
        return super().handle_error(request, client_address)

    def log_startup(self) -> None:
        """Show information about the address when starting the server."""
        dev_warning = (
            "WARNING: This is a development server. Do not use it in a production"
            " deployment. Use a production WSGI server instead."
        )
        dev_warning = _ansi_style(dev_warning, "bold", "red")
        messages = [dev_warning]

        if self.address_family == af_unix:
            messages.append(f" * Running on {self.host}")
        else:
            scheme = "http" if self.ssl_context is None else "https"
            display_hostname = self.host

            if self.host in {"0.0.0.0", "::"}:
                messages.append(f" * Running on all addresses ({self.host})")

                if self.host == "0.0.0.0":
                    localhost = "127.0.0.1"
                    display_hostname = get_interface_ip(socket.AF_INET)
                else:
                    localhost = "[::1]"
                    display_hostname = get_interface_ip(socket.AF_INET6)

                messages.append(f" * Running on {scheme}://{localhost}:{self.port}")

            if ":" in display_hostname:
                display_hostname = f"[{display_hostname}]"

            messages.append(f" * Running on {scheme}://{display_hostname}:{self.port}")

        _log("info", "\n".join(messages))


class ThreadedWSGIServer(BaseWSGIServer):
    """A WSGI server that serves concurrent requests in threads; idle
    connections wait in the poller, not in threads.

    Use :func:`make_server` to create a server instance.
    """

    multithread = True
    daemon_threads = True


class ForkingWSGIServer(BaseWSGIServer):
    """A WSGI server with ``processes`` pre-forked worker processes.

    Use :func:`make_server` to create a server instance.
    """

    multiprocess = True

    def __init__(
        self,
        host: str,
        port: int,
        app: Any,
        processes: int = 40,
        handler: type[Any] | None = None,
        passthrough_errors: bool = False,
        ssl_context: Any = None,
        fd: int | None = None,
    ) -> None:
        if not can_fork:
            raise ValueError("Your platform does not support forking.")

        super().__init__(host, port, app, handler, passthrough_errors, ssl_context, fd)
        self.max_children = processes

    def _serve(self, poll_interval: float) -> None:
        Prefork(self, self.max_children).run(self._stop, poll_interval)


def make_server(
    host: str,
    port: int,
    app: Any,
    threaded: bool = False,
    processes: int = 1,
    request_handler: type[Any] | None = None,
    passthrough_errors: bool = False,
    ssl_context: Any = None,
    fd: int | None = None,
) -> BaseWSGIServer:
    """Create an appropriate WSGI server instance based on the value of
    ``threaded`` and ``processes``.

    This is called from :func:`~fastserve.serving.run_simple`, but can be used
    separately to have access to the server object, such as to run it in a
    separate thread. See :func:`~fastserve.serving.run_simple` for parameter docs.
    """
    if threaded and processes > 1:
        raise ValueError("Cannot have a multi-thread and multi-process server.")

    if threaded:
        return ThreadedWSGIServer(
            host, port, app, request_handler, passthrough_errors, ssl_context, fd=fd
        )

    if processes > 1:
        return ForkingWSGIServer(
            host,
            port,
            app,
            processes,
            request_handler,
            passthrough_errors,
            ssl_context,
            fd=fd,
        )

    return BaseWSGIServer(host, port, app, request_handler, passthrough_errors, ssl_context, fd=fd)
