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
import select
import selectors
import socket
import sys
import threading
import time
from http.server import HTTPServer
from typing import TYPE_CHECKING, Any

from werkzeug.serving import get_interface_ip, get_sockaddr, select_address_family

from ._compat import can_fork
from ._logging import _ansi_style, _log
from ._tls import generate_adhoc_ssl_context, load_ssl_context
from ._workers import LeaderFollowers, Prefork
from .connection import CLOSE, GONE, LINGER, PARK, HTTPConnection, WSGIRequestHandler

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


class _EpollPoller:
    """Level-triggered epoll (Linux). A connection stays registered while a
    thread serves it; only when that thread stops being the leader is its
    connection disabled (see ``Engine.demote``), so a request costs no
    ``epoll_ctl`` call."""

    def __init__(self) -> None:
        self._ep = select.epoll()

    def add(self, fd: int) -> None:
        self._ep.register(fd, select.EPOLLIN)

    def enable(self, fd: int) -> None:
        self._ep.modify(fd, select.EPOLLIN)

    def disable(self, fd: int) -> None:
        self._ep.modify(fd, 0)

    def remove(self, fd: int) -> None:
        try:
            self._ep.unregister(fd)
        except (OSError, ValueError):
            pass

    def poll(self, timeout: float) -> list[tuple[int, int]]:
        """Ready ``(fd, events)`` pairs."""
        return self._ep.poll(timeout)

    def close(self) -> None:
        self._ep.close()


class _SelectorPoller:
    """Portable fallback on :mod:`selectors` (disable = unregister)."""

    def __init__(self) -> None:
        self._sel = selectors.DefaultSelector()

    def add(self, fd: int) -> None:
        try:
            self._sel.register(fd, selectors.EVENT_READ)
        except (KeyError, ValueError):
            pass

    enable = add

    def remove(self, fd: int) -> None:
        try:
            self._sel.unregister(fd)
        except (KeyError, ValueError):
            pass

    disable = remove

    def poll(self, timeout: float) -> list[tuple[int, int]]:
        """Ready ``(fd, events)`` pairs."""
        return [(key.fd, events) for key, events in self._sel.select(timeout)]

    def close(self) -> None:
        self._sel.close()


_Poller: Any = _EpollPoller if hasattr(select, "epoll") else _SelectorPoller

#: deadline of a connection parked idle since the last sweep (set by the next one)
_IDLE = -1.0


class Engine:
    """The poller loop of one server (in one process). See the module docstring.

    :param server: the bound server.
    :param poll_interval: longest wait in the poller (seconds).
    :param parent_pid: in a pre-fork worker, the parent's pid (exit when it is gone).
    """

    def __init__(
        self, server: BaseWSGIServer, poll_interval: float = 0.5, parent_pid: int | None = None
    ) -> None:
        self.server = server
        self.poll_interval = min(poll_interval, 1.0)
        self.parent_pid = parent_pid
        self.lock = threading.Lock()
        self.poller = _Poller()
        self.listener = server.socket
        self.listen_fd = self.listener.fileno()
        self.is_tcp = server.address_family != af_unix
        self.listener.setblocking(False)
        if self.is_tcp and hasattr(socket, "TCP_DEFER_ACCEPT"):
            # accept() returns once the first request bytes are there (Linux),
            # so a new connection is served at once, without a poller round
            try:
                self.listener.setsockopt(socket.IPPROTO_TCP, socket.TCP_DEFER_ACCEPT, 1)
            except OSError:
                pass
        #: accepted TCP sockets still need their own TCP_NODELAY
        self.set_nodelay = self.is_tcp
        #: Linux copies TCP_NODELAY from the listening socket to the connections
        #: it creates from now on; once accept() has drained the queue (EAGAIN),
        #: every connection is such a one and needs no setsockopt of its own
        self.nodelay_inherited = False
        if self.is_tcp and sys.platform.startswith("linux"):
            try:
                self.listener.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                self.nodelay_inherited = True
            except OSError:
                pass
        self._sock_args = (self.listener.family, self.listener.type, self.listener.proto)
        self.poller.add(self.listen_fd)
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._wake_w.setblocking(False)
        self.wake_fd = self._wake_r.fileno()
        self.poller.add(self.wake_fd)
        #: every connection the engine knows, parked or busy, by fd
        self.conns: dict[int, HTTPConnection] = {}
        self.stopping = False
        self.closed = False
        # leader/follower bookkeeping (read by _workers.LeaderFollowers)
        self.busy = False
        self.gen = 0
        self.leader_token = 0
        #: the connection the leader is serving
        self.current: HTTPConnection | None = None
        self._next_sweep = 0.0

    # -- the loop ------------------------------------------------------------------

    def lead(self, token: int) -> None:
        """Wait in the poller and serve, until stopped or demoted."""
        poll = self.poller.poll
        conns = self.conns
        listen_fd = self.listen_fd
        wake_fd = self.wake_fd
        while not self.stopping:
            try:
                fds = poll(self.poll_interval)
            except (OSError, ValueError):
                if self.stopping or self.closed:
                    return
                raise
            for fd, _ in fds:
                if fd == listen_fd:
                    self._accept(token)
                elif fd == wake_fd:
                    self._drain_wakeups()
                else:
                    conn = conns.get(fd)
                    if conn is not None:
                        self._dispatch(conn)
                if self.leader_token != token or self.stopping:
                    return
            now = time.monotonic()
            if now >= self._next_sweep:
                self._next_sweep = now + 1.0
                self._sweep(now)
                if self.parent_pid is not None and os.getppid() != self.parent_pid:
                    self.stopping = True

    def _accept(self, token: int) -> None:
        server = self.server
        # plain sockets, also from a TLS listener (the handshake runs per connection)
        accept = self.listener._accept  # type: ignore[attr-defined]
        family, type_, proto = self._sock_args
        for _ in range(64):
            try:
                fd, addr = accept()
                sock = socket.socket(family, type_, proto, fileno=fd)
            except BlockingIOError:
                if self.nodelay_inherited:
                    self.set_nodelay = False  # queued before the listener had it: all taken
                return
            except InterruptedError:
                return
            except OSError as e:
                if e.errno in (errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM):
                    _log("error", f" * accept() failed: {e}")
                return
            if self.set_nodelay:
                try:
                    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                except OSError:
                    pass
            try:
                conn = HTTPConnection(server, sock, addr)
            except Exception:
                sock.close()
                server.handle_error(sock, addr)
                continue
            self.conns[conn.fd] = conn
            if conn.compat or conn.tls_pending:
                self._settle(conn, PARK, first=True)
            else:
                self._dispatch(conn, first=True)
            if self.leader_token != token or self.stopping:
                return

    def _dispatch(self, conn: HTTPConnection, first: bool = False) -> None:
        if not first:
            lock = self.lock
            lock.acquire()  # cheaper than ``with`` on this per-request path
            if not conn.parked:
                lock.release()
                return
            conn.parked = False
            lock.release()
        self.current = conn
        self.gen += 1
        self.busy = True
        try:
            state = conn.linger_read() if conn.lingering else conn.on_readable()
        except BaseException:
            self.busy = False
            self._drop(conn, registered=not first)
            raise
        self.busy = False
        self._settle(conn, state, first)

    def demote(self) -> None:
        """Called (lock held) when another thread becomes the leader: the
        connection this leader is serving leaves the poller until it is done."""
        conn = self.current
        if conn is not None and not conn.parked and not conn.disabled and not self.closed:
            conn.disabled = True
            try:
                self.poller.disable(conn.fd)
            except (OSError, ValueError):
                pass
        self.leader_token += 1

    def _settle(self, conn: HTTPConnection, state: int, first: bool = False) -> None:
        if state == PARK or state == LINGER:
            server = self.server
            if conn.lingering:
                pass  # keeps the deadline set when lingering started
            elif state == LINGER:
                conn.lingering = True
                conn.start_linger()
                conn.deadline = time.monotonic() + server.linger_timeout
            elif conn.buf:
                conn.deadline = conn.head_started + server.request_head_timeout
            else:
                # idle: the next sweep (within about a second) starts its
                # keep_alive_timeout - no clock read per request
                conn.deadline = _IDLE
            if first or conn.disabled:
                with self.lock:
                    closed = self.closed
                    if not closed:
                        try:
                            if first:
                                self.poller.add(conn.fd)
                            else:
                                self.poller.enable(conn.fd)
                            conn.disabled = False
                        except (OSError, ValueError):
                            closed = True
                if closed:
                    self._drop(conn, registered=not first)
                    return
            conn.parked = True
            if self.closed:
                with self.lock:
                    if not conn.parked:
                        return  # server_close() took it
                    conn.parked = False
                self._drop(conn, registered=not first)
        elif state == CLOSE:
            self._drop(conn, registered=not first)
        elif state == GONE:
            if self.conns.get(conn.fd) is conn:
                del self.conns[conn.fd]

    def _drop(self, conn: HTTPConnection, registered: bool = True) -> None:
        fd = conn.fd
        if registered and conn.sock.fileno() >= 0:  # an app may have closed it
            self.poller.remove(fd)
        if self.conns.get(fd) is conn:
            del self.conns[fd]
        conn.close()

    def _sweep(self, now: float) -> None:
        expired = []
        idle_deadline = now + self.server.keep_alive_timeout
        with self.lock:
            for conn in self.conns.values():
                if conn.parked:
                    deadline = conn.deadline
                    if deadline == _IDLE:
                        conn.deadline = idle_deadline
                    elif deadline <= now:
                        conn.parked = False
                        expired.append(conn)
        for conn in expired:
            if not conn.lingering:
                conn.expire()
            self._drop(conn)

    def _drain_wakeups(self) -> None:
        try:
            while self._wake_r.recv(4096):
                pass
        except OSError:
            pass

    # -- control -------------------------------------------------------------------

    def wake(self) -> None:
        """Make the leader return from the poller."""
        try:
            self._wake_w.send(b"x")
        except OSError:
            pass

    def stop(self) -> None:
        self.stopping = True
        self.wake()

    def close(self) -> None:
        """Close every parked connection, the poller and the wake-up pipe."""
        with self.lock:
            if self.closed:
                return
            self.closed = True
            parked = [c for c in self.conns.values() if c.parked]
            for conn in parked:
                conn.parked = False
        for conn in parked:
            self.poller.remove(conn.fd)
            if self.conns.get(conn.fd) is conn:
                del self.conns[conn.fd]
            conn.close()
        self.poller.close()
        self._wake_r.close()
        self._wake_w.close()


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
