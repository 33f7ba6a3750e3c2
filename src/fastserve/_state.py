"""The hot state of a connection, an engine and a lease.

With the extension built, :class:`ConnectionState`, :class:`EngineState` and
:class:`LeaseState` are its classes (``_state.pxi``): the same attributes as C
fields, which the compiled request cycle reads without a lookup by name. Without
it they are these ``__slots__`` classes of the same names. Either way they are
the bases of :class:`~fastserve.connection.HTTPConnection` (through
:class:`~fastserve._transport.Transport`), :class:`~fastserve._engine.Engine`
and :class:`~fastserve._engine.Lease`, whose constructors set every field.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

from .parser import PARSER_IMPL

__all__ = ["ConnectionState", "EngineLock", "EngineState", "LeaseState"]

#: an engine's lock (compiled: one the dispatch loop takes without a method call)
EngineLock: Any = threading.Lock


class ConnectionState:
    """The per-request fields of a connection."""

    __slots__ = (
        "server",
        "sock",
        "fd",
        "buf",
        "out",
        "deadline",
        "head_started",
        "expect",
        "send_failed",
        "writing",
        "waiting",
        "parked",
        "lingering",
        "disabled",
        "defer",
        "events",
        "feeding",
        "reader",
        "env",
        "exchange",
        "resp_iter",
        "resp_result",
        "fast",
    )

    server: Any
    sock: Any
    fd: int
    buf: Any
    out: Any
    deadline: float
    head_started: float
    expect: bool
    send_failed: bool
    writing: bool
    waiting: bool
    parked: bool
    lingering: bool
    disabled: bool
    defer: bool
    events: int
    feeding: Any
    reader: Any
    env: Any
    exchange: Any
    resp_iter: Any
    resp_result: Any
    fast: Any

    def init_state(self, server: Any, sock: Any, reader: Any, out: Any) -> None:
        """Set every field: a new connection of ``server`` on ``sock``, idle, reading
        nothing yet (``reader``), nothing to send (``out``, an empty deque)."""
        self.server = server
        #: the socket (an ``ssl.SSLSocket`` after the TLS handshake)
        self.sock = sock
        self.fd = sock.fileno()
        self.buf = b""
        #: response bytes accepted from the application and not yet sent: at most the
        #: head plus the last piece the application yielded (the iterator is pulled
        #: again only once this is empty)
        self.out = out
        #: when the engine gives up on the parked connection (monotonic clock)
        self.deadline = 0.0
        self.head_started = 0.0
        self.expect = False
        self.send_failed = False
        #: a response waits for the socket to drain (``out``)
        self.writing = False
        #: parked with a deadline of its own: a body arriving, a drain, a stalled response
        self.waiting = False
        #: waiting in the engine's poller (not owned by a thread)
        self.parked = False
        #: half-closed after the last response; input is only discarded
        self.lingering = False
        #: taken out of the poller while a non-leader thread serves it
        self.disabled = False
        #: set by the engine for one dispatch: the fast path may leave a complete
        #: response to the engine's send batch (DEFER) instead of sending it now
        self.defer = False
        #: what the engine polls it for (READ, or WRITE_READY while a response waits)
        self.events = 1
        #: the body reader being fed in the poller (before the app, or a drain after it)
        self.feeding = None
        self.reader = reader
        #: the environ of the request being served (hooks read it through _bind_handler)
        self.env = None
        self.exchange = None
        #: the application's iterator (and iterable, for close()) while a response waits
        self.resp_iter = None
        self.resp_result = None
        #: the compiled twin of ``HTTPConnection._process`` (``_fastpath.pxi``), or None
        self.fast = None


class EngineState:
    """The fields of an engine its dispatch loop reads per request and per poll."""

    __slots__ = (
        "serving",
        "max_serving",
        "lease",
        "ready",
        "orphans",
        "stopping",
        "draining",
        "closed",
        "poll_interval",
        "_next_sweep",
        "_accept_resume",
        "_drain_request",
    )


class LeaseState:
    """The fields of a lease (one thread's turn at the poller)."""

    __slots__ = ("busy", "dispatches", "conn", "deferred")


if not TYPE_CHECKING and PARSER_IMPL == "c":  # pragma: no cover - depends on the build
    from ._parser import ConnectionState, EngineLock, EngineState, LeaseState  # noqa: F811
