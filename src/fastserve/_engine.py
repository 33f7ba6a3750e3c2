"""The poller loop of one server process: accept, read, dispatch, park, expire.

See :mod:`fastserve.server` for the runtime flow and :mod:`fastserve._workers`
for the threads that run :meth:`Engine.lead`.
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
from typing import TYPE_CHECKING, Any

from ._logging import _log
from .connection import CLOSE, GONE, LINGER, PARK, HTTPConnection

if TYPE_CHECKING:
    from .server import BaseWSGIServer

__all__ = ["Engine"]

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
