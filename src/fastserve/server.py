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
        processes=N ......... Prefork (_prefork.py): N forked workers, each runs
                              Engine.lead() single-threaded; on Linux each on
                              its own SO_REUSEPORT listener (_reuseport.py)
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
    SIGTERM/Ctrl+C  (serve_forever in the main thread, see _signals.py) the
                    handler only records the signal and releases the drain
                    thread, which calls Engine.begin_drain (no more accepts,
                    what is queued on a listener this process shuts down is
                    accepted first, idle keep-alive closed, Connection: close
                    on what is in flight), waits until Engine.in_flight() is 0 or
                    shutdown_timeout passed, then stops the engine; a second
                    Ctrl+C stops at once; after SIGTERM the process ends as
                    killed by it
    shutdown()      stop flag + wake-up byte; waits for serve_forever to return
    server_close()  closes the listening socket and every parked connection;
                    connections inside a request are closed when it ends

Timeouts and limits are class attributes of the server (subclass, or assign
to the class or the instance before ``serve_forever()``, which reads them once
into the :class:`~fastserve._settings.Settings` its engine and connections
use); defaults:

====================  ========  =====================================================
request_head_timeout  10 s      a head not complete this long after its first
                                byte gets 408 and a close (also bounds the TLS
                                handshake)
keep_alive_timeout    75 s      an idle keep-alive connection is closed
body_timeout          20 s      a request body's grace period, then it must
body_min_rate         500 B/s   ... keep arriving at this rate (whole-operation
                                deadline; 408 before the app, else wsgi.input
                                raises ClientDisconnected)
preread_limit         64 KiB    bodies up to this size are received in the
                                poller before the app runs (no thread held)
send_timeout          20 s      a blocked response's grace period, then the
send_min_rate         500 B/s   ... client must read at this rate, or is closed
max_content_length    None      larger request bodies get 413 (None: no limit)
drain_limit           1 MiB     unread body bytes discarded to keep a connection
drain_timeout         1 s       how long the whole drain may take
linger_timeout        2 s       input discarded after a half-close, at most
linger_limit          64 MiB    ... this many bytes
max_threads           1024      threads serving at once (threaded; then ready
                                requests wait in order, with a warning)
accept_backoff        0.5 s     the listener rests after accept() ran out of fds
promote_after         10 ms     a request this long moves the poller to another thread
====================  ========  =====================================================

Differences from werkzeug, on purpose: real keep-alive and pipelining (werkzeug
closes every connection), strict parsing (bad requests are refused before the
app with a status and a log line), HEAD/1xx/204/304 carry no body, one
``100 Continue`` only to HTTP/1.1 clients when the app reads, chunked responses
only to HTTP/1.1 clients, a disconnect mid-response is logged, ``processes=N``
pre-forks N workers (werkzeug forks per connection; on Linux each worker gets
an ``SO_REUSEPORT`` listener, see :mod:`fastserve._reuseport`), the TLS
handshake runs per connection instead of in ``accept()``.
"""

from __future__ import annotations

import errno
import os
import signal
import socket
import sys
import threading
import time
from http.server import HTTPServer
from typing import TYPE_CHECKING, Any

from werkzeug.serving import get_interface_ip, get_sockaddr, select_address_family

from . import _signals
from ._compat import can_fork
from ._engine import Engine
from ._logging import _ansi_style, _log
from ._prefork import Prefork
from ._settings import DEFAULTS as _DEFAULTS
from ._settings import Settings
from ._tls import generate_adhoc_ssl_context, load_ssl_context
from ._version import __version__
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
    request_head_timeout: float = _DEFAULTS.request_head_timeout
    #: seconds an idle keep-alive connection stays open
    keep_alive_timeout: float = _DEFAULTS.keep_alive_timeout
    #: seconds a request body may take before it must arrive at ``body_min_rate``
    #: (a whole-operation deadline: ``body_timeout + received / body_min_rate``
    #: after the head; then 408 before the app, or ``wsgi.input`` raises)
    body_timeout: float = _DEFAULTS.body_timeout
    #: bytes per second a request body must average after ``body_timeout``
    body_min_rate: float = _DEFAULTS.body_min_rate
    #: request bodies up to this size (and without ``Expect: 100-continue``) are
    #: received in the poller before the app runs: a trickling client holds no thread
    preread_limit: int = _DEFAULTS.preread_limit
    #: seconds a response may wait for a client that does not read it (the
    #: clock runs only while a send is blocked), then it must take ``send_min_rate``
    send_timeout: float = _DEFAULTS.send_timeout
    #: bytes per second a client must take while a send is blocked, after ``send_timeout``
    send_min_rate: float = _DEFAULTS.send_min_rate
    #: largest request body accepted (413 above it, RFC 9110 §15.5.14); None = no limit
    max_content_length: int | None = _DEFAULTS.max_content_length
    #: unread body bytes drained after a response to keep the connection
    drain_limit: int = _DEFAULTS.drain_limit
    #: seconds the whole drain may take
    drain_timeout: float = _DEFAULTS.drain_timeout
    #: seconds to keep discarding input after a half-close, and how many bytes
    linger_timeout: float = _DEFAULTS.linger_timeout
    linger_limit: int = _DEFAULTS.linger_limit
    #: most threads serving requests at once (threaded servers); when all are
    #: busy, ready requests wait in order
    max_threads: int = _DEFAULTS.max_threads
    #: seconds the listener rests after accept() ran out of file descriptors
    accept_backoff: float = _DEFAULTS.accept_backoff
    #: seconds the leader thread may spend in one request before another thread
    #: takes over the poller (threaded servers)
    promote_after: float = _DEFAULTS.promote_after
    #: seconds the requests in flight may take to finish after SIGTERM or a
    #: first Ctrl+C (no new connections meanwhile); then they are cut
    shutdown_timeout: float = _DEFAULTS.shutdown_timeout

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
        #: the timeouts and limits of the current run (read again by serve_forever)
        self._settings = Settings.from_server(self)
        self._closing = False
        self._stop = threading.Event()
        self._stopped = threading.Event()
        self._stopped.set()
        # graceful stop (see _signals.py): the first stop signal, the lock that
        # releases the drain thread, the handlers while serving in the main thread
        self._stop_signal: int | None = None
        self._drain_go = threading.Lock()
        self._signals: _signals.StopSignals | None = None
        #: this process bound the listening socket (else a reloader parent did)
        self._owns_listener = fd is None

        if fd is None:
            self._bind_or_exit(port)
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

        self._server_version = f"fastserve/{__version__}"
        self._closing = False

    def _bind_or_exit(self, port: int) -> None:
        """Bind and listen; on failure werkzeug's message on stderr and exit status 1."""
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

    def log(self, type: str, message: str, *args: Any) -> None:
        """Log on the ``"werkzeug"`` logger (no address/date prefix)."""
        _log(type, message, *args)

    # -- serving ---------------------------------------------------------------------

    def serve_forever(self, poll_interval: float = 0.5) -> None:
        """Serve until :meth:`shutdown`, SIGTERM or Ctrl+C; closes the server at the end.

        In the main thread, SIGTERM and a first Ctrl+C stop gracefully: no new
        connections, the requests in flight get :attr:`shutdown_timeout`
        seconds to finish. A second Ctrl+C stops at once. After Ctrl+C this
        returns (werkzeug swallows ``KeyboardInterrupt`` here too); after
        SIGTERM the process ends as killed by SIGTERM. In another thread no
        signal handler is installed.

        The timeouts and limits (class or instance attributes) are read here,
        once, into the :class:`~fastserve._settings.Settings` the engine and
        its connections use.
        """
        self._settings = Settings.from_server(self)
        self._stop.clear()
        self._stopped.clear()
        self._stop_signal = None
        self._drain_go = threading.Lock()
        self._drain_go.acquire()
        signals = _signals.StopSignals(self._request_stop)
        self._signals = signals if signals.install() else None
        _signals.register(self)
        try:
            self._serve(poll_interval)
        except KeyboardInterrupt:
            pass
        finally:
            signals.disarm()
            try:
                _signals.unregister(self)
                self.server_close()
            finally:
                self._release_drain()
                signals.restore()
                self._stopped.set()
        if self._signals is not None and signals.received == signal.SIGTERM:
            _signals.die_by(signal.SIGTERM)

    def _serve(self, poll_interval: float) -> None:
        # a socket this process bound is shut down when it drains: what is
        # queued on it is accepted first (an inherited one is left to its owner)
        engine = self._engine = Engine(
            self, poll_interval, sweep_on_drain=self._owns_listener, settings=self._settings
        )
        if self.multithread:
            self._start_drain(engine, None)
            settings = engine.settings
            pool = LeaderFollowers(engine, settings.max_threads, settings.promote_after)
            try:
                pool.run(self._stop)
            finally:
                engine.stop()
                pool.stop()
        else:
            # the engine runs in this thread: past the deadline, a request
            # still in it is interrupted through the handler
            self._start_drain(engine, self._signals)
            engine.lead(0)

    def _serve_worker(
        self,
        parent_pid: int,
        listener: socket.socket | None = None,
        others: list[socket.socket] | None = None,
    ) -> None:
        """Body of a pre-fork worker process (its only thread is its main thread).

        :param listener: this worker's own listening socket (one of the
            parent's ``SO_REUSEPORT`` group, see :mod:`fastserve._reuseport`),
            or None to accept on the shared :attr:`socket`.
        :param others: the other workers' listeners (taken from when idle).
        """
        self._owns_listener = False  # the parent's and the other workers' too
        self._stop_signal = None
        self._closing = False
        self._drain_go = threading.Lock()
        self._drain_go.acquire()
        if listener is not None:
            # back in the group if a previous worker shut it down when it stopped
            listener.listen(self.request_queue_size)
        signals = _signals.StopSignals(self._request_stop)
        self._signals = signals if signals.install() else None
        # its own listener is shut down when the worker drains (it leaves the
        # group), after what is queued on it was accepted
        engine = self._engine = Engine(
            self,
            0.5,
            parent_pid=parent_pid,
            listener=listener,
            sweep_on_drain=listener is not None,
            others=others,
            settings=self._settings,
        )
        self._start_drain(engine, self._signals)
        try:
            engine.lead(0)
        finally:
            signals.disarm()
            try:
                self.server_close()
            finally:
                self._release_drain()

    # -- graceful stop (see _signals.py) -----------------------------------------------

    def _request_stop(self, signum: int) -> None:
        """Start a graceful stop. Safe in a signal handler that interrupted a
        request: sets fields, writes the engine's wake-up byte, releases the
        drain thread; no lock, no exception."""
        if self._stop_signal is not None:
            return
        self._stop_signal = signum
        # a response whose head is not sent yet says Connection: close
        self._closing = True
        engine = self._engine
        if engine is not None and not self.multiprocess:
            request_drain = getattr(engine, "request_drain", None)
            if request_drain is not None:
                request_drain(False)
            else:
                engine.wake()
        self._release_drain()

    def _release_drain(self) -> None:
        try:
            self._drain_go.release()
        except RuntimeError:
            pass  # released already (signal and end of serving raced)

    def _start_drain(self, engine: Engine, signals: _signals.StopSignals | None) -> None:
        thread = threading.Thread(
            target=self._drain, args=(engine, signals), name="fastserve-drain", daemon=True
        )
        thread.start()

    def _drain(self, engine: Engine, signals: _signals.StopSignals | None) -> None:
        """The drain thread: waits for a stop signal, then drains ``engine``.

        :param signals: the handlers, when the engine runs in the main thread:
            a request still running there at the deadline is interrupted.
        """
        self._drain_go.acquire()
        if self._stop_signal is None or engine.stopping:
            return  # serve_forever ended without a signal
        engine.begin_drain(False)
        if engine.sweep_on_drain:  # this process shuts it down (queue swept above)
            _signals.stop_listening(engine.listener)
        if self._owns_listener:
            self.socket.close()
        deadline = time.monotonic() + engine.settings.shutdown_timeout
        while not engine.stopping and engine.in_flight() and time.monotonic() < deadline:
            time.sleep(0.02)
        late = not engine.stopping and engine.in_flight() > 0
        self._stop.set()
        engine.stop()
        if late and signals is not None:
            signals.force()

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
    #: on Linux, give each worker its own ``SO_REUSEPORT`` listener on the
    #: bound address, so the kernel spreads connections over the workers (see
    #: :mod:`fastserve._reuseport`); False: every worker accepts on one socket
    reuse_port: bool = True

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
        Prefork(self, self.max_children, self._settings).run(self._stop, poll_interval)


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
