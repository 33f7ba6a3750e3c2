"""What the lower layers read of the server above them, as Protocols.

The connection, the engine, the environ and the pre-fork supervisor are
written against these, not against :class:`fastserve.server.BaseWSGIServer`,
so none of them imports ``server.py`` (which imports them all) and each can be
driven by a stand-in in tests. The server classes satisfy every Protocol here;
mypy checks that where ``server.py`` hands ``self`` down.
"""

from __future__ import annotations

import socket
from typing import Any, Protocol

__all__ = [
    "ConnectionServer",
    "EngineServer",
    "EnvironServer",
    "ExchangeConnection",
    "ListeningServer",
    "PreforkServer",
]


class EnvironServer(Protocol):
    """What :mod:`fastserve._environ` reads to build per-connection entries."""

    multithread: bool
    multiprocess: bool
    server_address: Any
    ssl_context: Any


class ConnectionServer(EnvironServer, Protocol):
    """What :class:`fastserve.connection.HTTPConnection` reads of its server:
    the application, the hook class, the error and log hooks. Its timeouts and
    limits come in a :class:`fastserve._settings.Settings` from the engine;
    a connection made without one (a stand-in server in a test) reads them
    from the server once, by the names of the ``Settings`` fields."""

    app: Any
    RequestHandlerClass: Any
    passthrough_errors: bool
    #: set when a graceful stop began: responses say ``Connection: close``
    _closing: bool

    def handle_error(self, request: Any, client_address: Any) -> None: ...

    def log(self, type: str, message: str, *args: Any) -> None: ...


class EngineServer(ConnectionServer, Protocol):
    """What :class:`fastserve._engine.Engine` reads besides what its
    connections do: the listening socket (its deadlines come in the
    :class:`fastserve._settings.Settings` it is given, or are read from the
    server when it is made without one)."""

    socket: socket.socket
    address_family: int
    request_queue_size: int


class ListeningServer(Protocol):
    """What :mod:`fastserve._reuseport` reads to open a listener group."""

    address_family: int
    allow_reuse_address: bool
    request_queue_size: int
    #: the server bound its socket itself (not inherited from a parent or systemd)
    _owns_listener: bool
    socket: socket.socket


class ExchangeConnection(Protocol):
    """What :class:`fastserve._response.Exchange` uses of its connection
    (:class:`fastserve.connection.HTTPConnection`)."""

    server: ConnectionServer
    #: ``b"HTTP/1.1 "`` or ``b"HTTP/1.0 "``: the response's protocol
    status_version: bytes
    #: the ``Server`` field line, before the ``Date`` one
    server_line: bytes
    #: the request body reader (``wsgi.input``)
    reader: Any
    #: whether the access-log level was checked for this connection's handler
    log_checked: bool

    def push(self, data: Any) -> None: ...

    def send(self, data: bytes) -> None: ...

    def body_allows_keep_alive(self) -> bool: ...

    def _bind_handler(
        self, env: dict[str, Any] | None = None, method: str | None = None, version: str = ""
    ) -> None: ...

    def _call_hook(self, name: str, *args: Any) -> None: ...


class PreforkServer(ListeningServer, Protocol):
    """What :class:`fastserve._prefork.Prefork` needs to run workers (its
    ``shutdown_timeout`` from the settings it is given, or from the server)."""

    #: the signal that asked this process to stop (None while serving)
    _stop_signal: int | None

    def _serve_worker(
        self,
        parent_pid: int,
        listener: socket.socket | None = None,
        others: list[socket.socket] | None = None,
    ) -> None: ...
