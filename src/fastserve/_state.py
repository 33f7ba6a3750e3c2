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
