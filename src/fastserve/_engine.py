"""The poller loop of one server process: accept, read, dispatch, park, expire.

See :mod:`fastserve.server` for the runtime flow and :mod:`fastserve._workers`
for the threads that run :meth:`Engine.lead`.

What a thread does with a ready socket
    The thread that polled a socket serves it itself (no hand-off per
    request): :meth:`HTTPConnection.on_readable` parses, runs the application
    and sends. A connection comes back to the poller whenever it would have to
    wait for its peer - an incomplete head, a small request body still
    arriving (:attr:`~fastserve.server.BaseWSGIServer.preread_limit`), the
    unread rest of a body being drained, a response the client is not reading
    (``WRITE``: the socket is watched for writability instead) - so a slow or
    stuck peer costs a socket and a deadline, never a thread.

Deadlines
    Every parked connection has one (``conn.deadline``), checked by a sweep
    once a second: a partial head (``request_head_timeout``, then 408), a body
    or a stalled response (whole-operation minimum-rate deadlines computed by
    the connection), a drain, a lingering close, an idle keep-alive
    connection (``keep_alive_timeout``, counted from the first sweep that saw
    it idle, so the request path reads no clock).

Send batching
    When a poll reports several ready connections, the compiled fast path
    may leave each complete keep-alive response in its connection (``DEFER``)
    and the thread sends them together after the batch (at most
    ``SEND_BATCH`` at a time): a client that drives many connections is then
    woken once per batch instead of once per response. A response waits at
    most for the rest of its batch; if the thread gets stuck in a slow
    request meanwhile, the monitor's promotion hands the waiting responses to
    the new leader, which sends them first.

Fairness and limits
    Connections in a poll batch are served before the listening socket is
    accepted from, so a stream of new connections never starves ready
    keep-alive ones. At most ``max_threads`` threads serve at once; when all
    do, the leader keeps polling and puts ready connections in a FIFO that
    threads take from as they finish. When ``accept()`` runs out of file
    descriptors the listener leaves the poller for ``accept_backoff`` seconds
    at a time (one log line when the episode starts, one with the count of
    failed attempts once none failed for five seconds).

Leases (threaded servers)
    Each turn of a thread at the poller is a :class:`Lease`; what the monitor
    in :class:`~fastserve._workers.LeaderFollowers` reads (is the leader inside
    a request? since which dispatch?) lives on the current leader's lease, so a
    demoted thread that finishes its request writes to its own, stale lease and
    can never hide a stuck leader from the monitor.
"""

from __future__ import annotations

import os
import socket
import sys
import threading
import time
from collections import deque
from typing import Any

from ._accept_backoff import _ACCEPT_EXHAUSTED, AcceptBackoff
from ._contracts import EngineServer
from ._logging import _log
from ._pollers import READ, WRITE_READY, _Poller
from ._settings import Settings
from ._state import EngineLock, EngineState, LeaseState
from .connection import CLOSE, DEFER, GONE, LINGER, PARK, WRITE, HTTPConnection
from .parser import PARSER_IMPL

__all__ = ["Engine", "Lease"]

try:
    af_unix: Any = socket.AF_UNIX
except AttributeError:  # pragma: no cover - Windows
    af_unix = None


#: deadline of a connection parked idle since the last sweep (set by the next one)
_IDLE = -1.0

#: most responses a thread holds back for one send batch (see the module docstring)
SEND_BATCH = 16

# the compiled Engine._lead (``_dispatch.pxi``), with the compiled fast path
_DispatchLoop: Any = None
if PARSER_IMPL == "c":  # pragma: no cover - depends on the build
    from . import _parser

    _DispatchLoop = _parser.DispatchLoop


class Lease(LeaseState):
    """One thread's turn as the leader (the thread that waits in the poller).

    The dispatch counter and the busy flag are the leader's own: the monitor
    promotes another thread when the same lease stays busy in the same
    dispatch for a whole tick.
    """

    __slots__ = ()

    def __init__(self) -> None:
        #: inside a dispatch (a request, maybe the application) right now
        self.busy = False
        #: dispatches started under this lease
        self.dispatches = 0
        #: the connection being served while busy
        self.conn: HTTPConnection | None = None
        #: connections whose complete response waits for this turn's send batch
        self.deferred: list[HTTPConnection] = []


class Engine(AcceptBackoff, EngineState):
    """The poller loop of one server (in one process). See the module docstring.

    :param server: the bound server.
    :param poll_interval: longest wait in the poller (seconds).
    :param parent_pid: in a pre-fork worker, the parent's pid (exit when it is gone).
    :param max_serving: most threads inside a dispatch at once.
    :param listener: the listening socket to accept from (the server's socket
        unless a pre-fork worker has one of its own, see :mod:`fastserve._reuseport`).
    :param sweep_on_drain: :meth:`begin_drain` accepts the connections already
        queued on the listener, because it is about to be shut down (which
        would reset them); they are served like the requests in flight.
    :param others: the other pre-fork workers' listeners: after a whole poll
        interval without anything to do, this engine takes what waits there.
    :param settings: the timeouts and limits, handed to every connection;
        by default read from ``server`` now.
    """

    def __init__(
        self,
        server: EngineServer,
        poll_interval: float = 0.5,
        parent_pid: int | None = None,
        max_serving: int = 1,
        listener: socket.socket | None = None,
        sweep_on_drain: bool = False,
        others: list[socket.socket] | None = None,
        settings: Settings | None = None,
    ) -> None:
        self.server = server
        #: the timeouts and limits of this run (by default read from ``server`` now)
        self.settings = Settings.from_server(server) if settings is None else settings
        self.poll_interval = min(poll_interval, 1.0)
        self.parent_pid = parent_pid
        self.max_serving = max(1, max_serving)
        self.sweep_on_drain = sweep_on_drain
        self.others = others or []
        for other in self.others:
            other.setblocking(False)  # its own worker may not have started yet
        self.lock = EngineLock()
        self.poller = _Poller()
        self.listener = server.socket if listener is None else listener
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
        #: the current leader's lease (None between a demotion and the next leader)
        self.lease: Lease | None = None
        #: threads inside a dispatch right now
        self.serving = 0
        #: ready connections waiting for a thread (all max_serving are busy)
        self.ready: deque[HTTPConnection] = deque()
        #: deferred responses of a demoted leader, sent by the next one
        self.orphans: list[HTTPConnection] = []
        #: the compiled twin of :meth:`_lead`, when the extension is built
        self.loop: Any = None
        if _DispatchLoop is not None:
            self.loop = _DispatchLoop(self, READ, _IDLE, SEND_BATCH)
        self._ready_warned = 0.0
        self._next_sweep = 0.0
        # accept() out of descriptors: the listener rests until this time
        self._accept_resume = 0.0
        self._accept_failures = 0
        self._accept_last_failure = 0.0
        self._accept_error = ""
        # graceful stop
        self.draining = False
        self._drain_request: bool | None = None
        #: set once draining and no connection is being served
        self.drained = threading.Event()

    # -- the loop ------------------------------------------------------------------

    def lead(self, lease: Any = None) -> None:
        """Wait in the poller and serve, until stopped or demoted.

        :param lease: this thread's :class:`Lease` (a new one if not given);
            the thread returns as soon as it is no longer the current lease.
        """
        if not isinstance(lease, Lease):
            with self.lock:
                lease = self.lease = Lease()
        if self.loop is not None:
            self.loop.lead(lease)
        else:
            self._lead(lease)

    def _lead(self, lease: Lease) -> None:
        """The loop of :meth:`lead`: poll, serve the batch, send what it kept,
        accept, then the rare work (:meth:`_housekeep`) when some is due.
        Compiled as ``DispatchLoop.lead`` (``_dispatch.pxi``)."""
        poll = self.poller.poll
        deferred = lease.deferred
        while not self.stopping:
            if self.orphans:
                self._flush_orphans()
            try:
                fds = poll(self.poll_interval)
            except (OSError, ValueError):
                if self.stopping or self.closed:
                    return
                raise
            if not fds and self.others and not self.draining:
                self._take_waiting(lease)  # idle for a whole poll interval
                if self.lease is not lease or self.stopping:
                    return
            try:
                served = self._serve_batch(fds, lease, len(fds) > 1)
            finally:
                if deferred:
                    self._flush(deferred)
            if served < 0:
                return
            if served and not self.draining:
                self._accept(lease)
                if self.lease is not lease or self.stopping:
                    return
            if self.ready and self.serving < self.max_serving:
                # connections accepted by a drain sweep, or left when a thread was demoted
                self._serve_ready(lease)
                if self.lease is not lease or self.stopping:
                    return
            now = time.monotonic()
            if (
                now >= self._next_sweep
                or self._accept_resume
                or self._drain_request is not None
                or self.draining
            ):
                self._housekeep(now)

    def _housekeep(self, now: float) -> None:
        """What :meth:`lead` does between batches when it is due: the sweep
        (once a second), the end of an accept() backoff, a drain asked for
        by a signal handler, and the end of a drain."""
        if now >= self._next_sweep:
            self._next_sweep = now + 1.0
            self._sweep(now)
            if self._accept_failures:
                self._accepting_again(now)
            if self.parent_pid is not None and os.getppid() != self.parent_pid:
                self.stopping = True
        if self._accept_resume and now >= self._accept_resume:
            self._resume_accepting()
        if self._drain_request is not None and not self.draining:
            self.begin_drain(self._drain_request)
        if self.draining and not self.in_flight():
            self.drained.set()

    def _serve_batch(self, fds: list[tuple[int, int]], lease: Lease, batch: bool) -> int:
        """Serve a poll batch: 1 when the listener is ready, 0 when not, -1 when
        this thread is no longer the leader (or the engine stops). ``batch``: the
        batch has several descriptors (responses may wait for the send batch).
        Compiled in ``DispatchLoop.lead`` (``_dispatch.pxi``)."""
        conns = self.conns
        listen_fd = self.listen_fd
        wake_fd = self.wake_fd
        accept = 0
        for fd, _ in fds:
            if fd == listen_fd:
                accept = 1  # after the ready connections: they go first
            elif fd == wake_fd:
                self._drain_wakeups()
            else:
                conn = conns.get(fd)
                if conn is not None:
                    if self.serving >= self.max_serving:
                        self._enqueue(conn)
                    else:
                        self._dispatch(conn, lease, defer=batch)
            if self.lease is not lease or self.stopping:
                return -1
        return accept

    def _accept(self, lease: Lease, other: socket.socket | None = None) -> None:
        """Accept and serve new connections, from this engine's listener or ``other``.
        Compiled (own listener) in ``DispatchLoop.lead`` (``_dispatch.pxi``)."""
        # plain sockets, also from a TLS listener (the handshake runs per connection)
        accept = (self.listener if other is None else other)._accept  # type: ignore[attr-defined]
        set_nodelay = self.set_nodelay or other is not None
        for _ in range(64):
            try:
                fd, addr = accept()
            except OSError as e:
                self._accept_ended(e, own=other is None)
                return
            conn = self._new_connection(fd, addr, set_nodelay)
            if conn is None:
                continue
            if conn.compat or conn.tls_pending or self.serving >= self.max_serving:
                self._settle(conn, PARK, first=True)
            else:
                self._dispatch(conn, lease, first=True)
            if self.lease is not lease or self.stopping:
                return

    def _accept_ended(self, error: OSError, own: bool) -> None:
        """A batch of accept() calls ended with ``error``: the queue is empty
        (EAGAIN), a signal (EINTR), or a failure (out of descriptors: the
        listener rests, :meth:`_pause_accepting`). ``own``: this engine's listener."""
        if isinstance(error, BlockingIOError):
            if self.nodelay_inherited and own:
                self.set_nodelay = False  # queued before the listener had it: all taken
        elif error.errno in _ACCEPT_EXHAUSTED:
            self._pause_accepting(error)

    def _new_connection(self, fd: int, addr: Any, set_nodelay: bool) -> HTTPConnection | None:
        """The connection of an accepted descriptor, in :attr:`conns`; None when
        it could not be set up (closed; the server's ``handle_error`` reports it)."""
        sock = self._socket(fd, set_nodelay)
        if sock is None:
            return None
        try:
            conn = HTTPConnection(self.server, sock, addr, self.settings)
        except Exception:
            try:  # socketserver's order: report, then close
                self.server.handle_error(sock, addr)
            finally:
                sock.close()
            return None
        self.conns[conn.fd] = conn
        return conn

    def _socket(self, fd: int, set_nodelay: bool) -> socket.socket | None:
        """The socket object of an accepted descriptor (closed, None, if that fails)."""
        family, type_, proto = self._sock_args
        try:
            sock = socket.socket(family, type_, proto, fileno=fd)
        except OSError:
            os.close(fd)
            return None
        if set_nodelay:
            try:
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            except OSError:
                pass
        return sock

    def _take_waiting(self, lease: Lease) -> None:
        """This pre-fork worker was idle for a whole poll interval: serve the
        connections waiting on the other workers' listeners (their worker is
        inside a slow request), so such a wait lasts about ``poll_interval``,
        not as long as that request."""
        for other in self.others:
            self._accept(lease, other)  # EAGAIN, or EINVAL when shut down: nothing
            if self.lease is not lease or self.stopping or self.draining:
                return

    def _enqueue(self, conn: HTTPConnection) -> None:
        """Every serving thread is busy: the connection waits its turn, out of
        the poller (level-triggered, it would be reported again and again)."""
        with self.lock:
            if not conn.parked:
                return
            conn.parked = False
            if not conn.disabled:
                conn.disabled = True
                try:
                    self.poller.set(conn.fd, 0)
                except (OSError, ValueError):
                    pass
            self.ready.append(conn)
        now = time.monotonic()
        if now >= self._ready_warned:
            self._ready_warned = now + 60.0
            _log(
                "warning",
                f" * All {self.max_serving} server threads are busy; requests wait"
                " until one is free.",
            )

    def _dispatch(
        self, conn: HTTPConnection, lease: Lease, first: bool = False, defer: bool = False
    ) -> None:
        if not first:
            lock = self.lock
            lock.acquire()  # cheaper than ``with`` on this per-request path
            if not conn.parked:
                lock.release()
                return
            conn.parked = False
            lock.release()
        self._serve(conn, lease, first, defer)
        if self.ready:
            self._serve_ready(lease)

    def _serve(self, conn: HTTPConnection, lease: Lease, first: bool, defer: bool = False) -> None:
        lease.conn = conn
        lease.dispatches += 1
        lease.busy = True
        self.serving += 1  # only an approximate bound when threads race (GIL)
        conn.defer = defer
        try:
            if conn.writing:
                state = conn.on_writable()
            elif conn.lingering:
                state = conn.linger_read()
            else:
                state = conn.on_readable()
        except BaseException:
            self.serving -= 1
            lease.busy = False
            self._drop(conn, registered=not first)
            raise
        self.serving -= 1
        lease.busy = False
        if state == DEFER:
            deferred = lease.deferred
            deferred.append(conn)
            if len(deferred) >= SEND_BATCH:
                self._flush(deferred)
            return
        self._settle(conn, state, first)

    def _flush(self, deferred: list[HTTPConnection]) -> None:
        """Send the responses of a send batch and settle their connections."""
        try:
            for conn in deferred:
                self._flush_one(conn)
        except BaseException:
            with self.lock:  # the next leader sends the rest (flush() skips sent ones)
                self.orphans.extend(deferred)
            raise
        finally:
            deferred.clear()

    def _flush_one(self, conn: HTTPConnection) -> None:
        try:
            state = conn.fast.flush(conn)
        except BaseException:
            self._drop(conn)
            raise
        if state is not None:  # else another thread sent it (a demoted leader's batch)
            self._settle(conn, state)

    def _flush_orphans(self) -> None:
        """Send the responses a demoted leader had deferred."""
        with self.lock:
            orphans, self.orphans = self.orphans, []
        for conn in orphans:
            self._flush_one(conn)

    def _serve_ready(self, lease: Lease) -> None:
        """Serve connections that waited for a thread (this one just finished)."""
        while self.serving < self.max_serving and not self.stopping:
            with self.lock:
                if not self.ready:
                    return
                conn = self.ready.popleft()
            self._serve(conn, lease, False)

    def demote(self) -> None:
        """Called (lock held) when another thread becomes the leader: the
        connection the current leader is serving leaves the poller until it
        is done, and its lease ends."""
        lease = self.lease
        conn = None if lease is None else lease.conn
        if (
            lease is not None
            and lease.busy
            and conn is not None
            and not conn.parked
            and not conn.disabled
            and not self.closed
        ):
            conn.disabled = True
            try:
                self.poller.set(conn.fd, 0)
            except (OSError, ValueError):
                pass
        if lease is not None and lease.deferred:
            # the new leader sends them (the stuck one too, once it is back)
            self.orphans.extend(lease.deferred)
        self.lease = None

    def _settle(self, conn: HTTPConnection, state: int, first: bool = False) -> None:
        if state == PARK or state == LINGER or state == WRITE:
            settings = self.settings
            if conn.lingering:
                pass  # keeps the deadline set when lingering started
            elif state == LINGER:
                conn.lingering = True
                conn.start_linger()
                conn.deadline = time.monotonic() + settings.linger_timeout
            elif conn.waiting:
                pass  # a body, a drain or a stalled send: the connection set it
            elif conn.buf:
                conn.deadline = conn.head_started + settings.request_head_timeout
            elif self.draining:
                self._drop(conn, registered=not first)  # idle: not kept when stopping
                return
            else:
                # idle: the next sweep (within about a second) starts its
                # keep_alive_timeout - no clock read per request
                conn.deadline = _IDLE
            events = WRITE_READY if state == WRITE else READ
            if first or conn.disabled or conn.events != events:
                with self.lock:
                    closed = self.closed
                    if not closed:
                        try:
                            if first:
                                self.poller.add(conn.fd, events)
                            else:
                                self.poller.set(conn.fd, events)
                            conn.disabled = False
                            conn.events = events
                        except (OSError, ValueError):
                            closed = True
                if closed:
                    self._drop(conn, registered=not first)
                    return
            conn.parked = True
            if self.closed:
                self._unpark_closed(conn, registered=not first)
        elif state == CLOSE:
            self._drop(conn, registered=not first)
        elif state == GONE:
            if self.conns.get(conn.fd) is conn:
                del self.conns[conn.fd]

    def _unpark_closed(self, conn: HTTPConnection, registered: bool = True) -> None:
        """Drop a connection parked after server_close(), unless that took it."""
        with self.lock:
            if not conn.parked:
                return  # server_close() took it
            conn.parked = False
        self._drop(conn, registered=registered)

    def _drop(self, conn: HTTPConnection, registered: bool = True) -> None:
        fd = conn.fd
        if registered and conn.sock.fileno() >= 0:  # an app may have closed it
            self.poller.remove(fd)
        if self.conns.get(fd) is conn:
            del self.conns[fd]
        conn.close()

    def _sweep(self, now: float) -> None:
        expired = []
        idle_deadline = now + self.settings.keep_alive_timeout
        with self.lock:
            for conn in self.conns.values():
                if conn.parked:
                    deadline = conn.deadline
                    if deadline == _IDLE:
                        conn.deadline = idle_deadline
                    elif deadline <= now and not conn.still_sending(now):
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

    def request_drain(self, close_listener: bool = True) -> None:
        """Ask the leader to :meth:`begin_drain` (safe from a signal handler:
        sets a field and writes the wake-up byte, takes no lock)."""
        self._drain_request = close_listener
        self.wake()

    def begin_drain(self, close_listener: bool = True) -> None:
        """Graceful stop, first step: accept no more connections (close the
        listening socket when ``close_listener``, else only stop polling it),
        close idle keep-alive connections and partial heads; requests in
        progress finish with ``Connection: close`` (``server._closing``).
        With :attr:`sweep_on_drain`, the connections queued on the listener
        are accepted first and served the same way; when this returns, in
        any thread, that sweep is done and the listener may be shut down.
        :attr:`drained` is set once nothing is being served."""
        failed: list[str] = []
        with self.lock:
            if self.draining or self.closed:
                return
            self.draining = True
            self.server._closing = True
            idle = [
                c
                for c in self.conns.values()
                if c.parked and not c.waiting and not c.lingering and c.events == READ
            ]
            for conn in idle:
                conn.parked = False
            self.poller.remove(self.listen_fd)
            if self.sweep_on_drain:
                failed = self._sweep_accept_queue()
        for error in failed:
            _log("error", f" * A connection queued at the stop could not be set up: {error}")
        if close_listener:
            try:
                self.listener.close()
            except OSError:
                pass
        for conn in idle:
            if conn.buf and not conn.waiting:
                conn.expire()  # a partial head: 408
            self._drop(conn)
        if not self.in_flight():
            self.drained.set()
        self.wake()

    def _sweep_accept_queue(self) -> list[str]:
        """Accept what is queued on the listener (lock held, any thread) and
        queue it in :attr:`ready` for the leader (so :meth:`in_flight` counts
        it). :return: why some connections could not be set up (closed)."""
        server = self.server
        accept = self.listener._accept  # type: ignore[attr-defined]
        failed: list[str] = []
        # the queue holds at most the backlog; more arrived after the signal
        for _ in range(max(server.request_queue_size, 64) * 2):
            try:
                fd, addr = accept()
            except OSError:  # empty (EAGAIN), or shut down already
                break
            sock = self._socket(fd, self.set_nodelay)
            if sock is None:
                failed.append(f"{addr!r}: no socket object")
                continue
            try:
                conn = HTTPConnection(server, sock, addr, self.settings)
                self.poller.add(conn.fd, 0)  # registered, disabled: _settle enables it
            except Exception as e:
                sock.close()
                failed.append(f"{addr!r}: {e!r}")
                continue
            conn.disabled = True
            self.conns[conn.fd] = conn
            self.ready.append(conn)
        return failed

    def in_flight(self) -> int:
        """Connections with a request in progress: being served by a thread,
        waiting for one, receiving a request body or sending a response."""
        with self.lock:
            return sum(
                1
                for c in self.conns.values()
                if not c.parked or (c.waiting and not c.lingering) or c.events == WRITE_READY
            )

    def close(self) -> None:
        """Close every parked connection, the poller and the wake-up pipe."""
        with self.lock:
            if self.closed:
                return
            self.closed = True
            parked = [c for c in self.conns.values() if c.parked]
            parked.extend(self.ready)
            self.ready.clear()
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
