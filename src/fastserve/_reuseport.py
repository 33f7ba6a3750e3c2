"""``processes=N`` on Linux: one ``SO_REUSEPORT`` listening socket per worker.

With one shared listening socket, whichever worker wakes first takes the next
connection, and on Linux that is often the same worker again and again. With
``SO_REUSEPORT`` the kernel keeps one accept queue per socket and hashes each
new connection (its address 4-tuple) to one of them, so the load spreads over
the workers.

The traps, and what this module does about each
    *A second instance must still fail like werkzeug.* Two sockets that both
    set ``SO_REUSEPORT`` (same user) may bind the same address: a second
    server started by mistake would silently take half the connections. So the
    server binds and listens exactly as werkzeug does, without the option
    (:class:`~fastserve.server.BaseWSGIServer`); a second fastserve (or
    werkzeug) gets ``Address already in use`` and werkzeug's "Port N is in use
    by another program" from that bind. Only afterwards, when the pre-fork
    parent starts its workers, :func:`open_listeners` sets ``SO_REUSEPORT`` on
    that socket: Linux reads the flag of the sockets already bound when a new
    one binds, and adds a listener that has it to the group of the next one
    that listens (checked on this kernel, and by the tests). fastserve itself
    never sets the option before a bind, so it never joins a group it did not
    create. (Any program of the same user that binds with ``SO_REUSEPORT``
    could join the group, as with every server that uses the option.)

    *Inherited sockets stay one shared listener.* A socket fastserve did not
    bind (``fd=``: the reloader's child, systemd's ``LISTEN_FDS``, ``--fd``)
    belongs to someone who may give it to the next process; more sockets on
    its address would outlive the hand-off and split its connections. So only
    a server that bound its own TCP socket gets a group (:func:`eligible`);
    unix sockets and platforms other than Linux keep the shared socket (on
    macOS and the BSDs ``SO_REUSEPORT`` does not spread connections; FreeBSD
    has a separate ``SO_REUSEPORT_LB``).

    *A worker that exits must not reset the connections queued for it.*
    Closing the last descriptor of a listening socket resets every connection
    in its accept queue. So the parent opens all N listeners before it forks,
    and keeps them until it stops: a worker that dies leaves its listener open
    in the parent, its queue waits, and the replacement worker (forked for the
    same listener) serves it. A worker that stops gracefully (SIGTERM, alone or
    with the group) first accepts what is queued on its listener, then shuts
    the listener down, which takes it out of the group at once (new
    connections go to the other listeners, or are refused when the whole group
    stops), and serves what it accepted with ``Connection: close``
    (:meth:`fastserve._engine.Engine.begin_drain`). A replacement calls
    ``listen()`` again on the same socket, which puts it back in the group.
    What is still lost: a connection whose handshake completes in the
    microseconds between that last ``accept()`` and the shutdown, and one that
    connected but has not sent its request yet (``TCP_DEFER_ACCEPT`` keeps it
    out of the accept queue), exactly as a shared socket loses them when it is
    shut down.

The trade-off: a connection waits for the worker its listener belongs to.
A pre-fork worker serves one request at a time, so a slow request would hold
up the connections hashed to its worker while others sit idle. So a worker
that had nothing to do for a whole poll interval (half a second) accepts
what waits on the other listeners (:meth:`fastserve._engine.Engine._take_waiting`):
such a connection waits about that long, not as long as the slow request.
Set :attr:`fastserve.server.ForkingWSGIServer.reuse_port` to False to share
one socket instead (an idle worker then takes any connection at once).
"""

from __future__ import annotations

import socket
import sys
from typing import Final

from ._contracts import ListeningServer

__all__ = ["SUPPORTED", "eligible", "open_listeners"]

#: Linux balances connections over the sockets of a ``SO_REUSEPORT`` group
SUPPORTED: Final[bool] = sys.platform.startswith("linux") and hasattr(socket, "SO_REUSEPORT")

_INET_FAMILIES: Final = (socket.AF_INET, socket.AF_INET6)


def eligible(server: ListeningServer) -> bool:
    """Whether ``server``'s workers should get one listener each: Linux, a
    TCP socket this process bound itself, and the server's ``reuse_port``."""
    return (
        SUPPORTED
        and getattr(server, "reuse_port", False)
        and server._owns_listener
        and server.address_family in _INET_FAMILIES
    )


def open_listeners(server: ListeningServer, count: int) -> list[socket.socket]:
    """``count`` listening sockets in one ``SO_REUSEPORT`` group on the
    server's address: the server's own socket first, then ``count - 1`` new
    ones (the caller closes those). See the module docstring for the order of
    operations.

    :raise OSError: when a socket cannot join (the caller falls back to the
        shared socket); the sockets opened so far are closed.
    """
    first = server.socket
    first.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    address = first.getsockname()
    listeners = [first]
    try:
        for _ in range(count - 1):
            sock = socket.socket(first.family, socket.SOCK_STREAM)
            listeners.append(sock)
            if first.family == socket.AF_INET6:
                # members of a group must agree on this (dual-stack or not)
                v6only = first.getsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY)
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, v6only)
            if server.allow_reuse_address:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
            sock.bind(address)
            sock.listen(server.request_queue_size)
    except OSError:
        for sock in listeners[1:]:
            sock.close()
        first.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 0)
        raise
    return listeners
