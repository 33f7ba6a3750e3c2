"""werkzeug's own request path, without sockets: the reference for environ tests.

:func:`werkzeug_environ` does what ``werkzeug.serving.WSGIRequestHandler``
does for one request - ``rfile.readline`` of the request line,
``BaseHTTPRequestHandler.parse_request`` (stdlib + email header parsing) and
``make_environ`` - on a handler built without its ``__init__`` (which would
want a socket and serve the request at once). ``rfile``/``wfile`` are
``BytesIO``; ``client_address`` and a stub ``server`` carry the facts a
listening socket would.

``bench/bench_parser.py`` has a standalone copy of this harness (bench/ cannot
import from tests/ cleanly); keep the two in step.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from typing import Any

from werkzeug.serving import WSGIRequestHandler

#: stdlib ``http.server`` reads the request line with ``readline(65537)``
_MAX_LINE_READ = 65537

#: environ keys that the request head alone determines (``HTTP_*`` aside);
#: the rest (``wsgi.*``, ``SERVER_*`` but SERVER_PROTOCOL, ``REMOTE_*``,
#: ``werkzeug.socket``) come from the connection.
HEAD_KEYS = frozenset(
    {
        "REQUEST_METHOD",
        "SCRIPT_NAME",
        "PATH_INFO",
        "QUERY_STRING",
        "REQUEST_URI",
        "RAW_URI",
        "SERVER_PROTOCOL",
        "CONTENT_TYPE",
        "CONTENT_LENGTH",
    }
)


@dataclass
class StubServer:
    """The attributes of ``BaseWSGIServer`` that ``make_environ`` reads."""

    server_address: tuple[str, int] = ("127.0.0.1", 5000)
    ssl_context: Any = None
    multithread: bool = False
    multiprocess: bool = False
    _server_version: str = "Werkzeug/3.1.9"
    logged: list[tuple[Any, ...]] = field(default_factory=list)

    def log(self, type: str, message: str, *args: Any) -> None:
        self.logged.append((type, message, *args))


class _QuietHandler(WSGIRequestHandler):
    """werkzeug's handler with logging kept out of the test output."""

    def log(self, type: str, message: str, *args: Any) -> None:
        pass


def werkzeug_environ(
    data: bytes,
    *,
    client_address: tuple[str, int] = ("127.0.0.1", 54321),
    server: StubServer | None = None,
) -> dict[str, Any] | None:
    """Run werkzeug's request-head path on ``data``.

    :param data: one request head (a body may follow; it stays in ``wsgi.input``).
    :param client_address: what ``accept()`` would have returned as the peer.
    :param server: the server facts; a :class:`StubServer` on 127.0.0.1:5000 by default.
    :return: the environ ``make_environ`` builds, or ``None`` when werkzeug
        refuses the request (its error response is then in the handler's wfile).
    """
    handler = _QuietHandler.__new__(_QuietHandler)
    handler.rfile = io.BytesIO(data)
    handler.wfile = io.BytesIO()
    handler.client_address = client_address
    handler.server = server if server is not None else StubServer()  # type: ignore[assignment]
    handler.connection = None  # no getpeercert(): make_environ treats it as plain TCP
    handler.raw_requestline = handler.rfile.readline(_MAX_LINE_READ)
    if not handler.parse_request():
        return None
    return handler.make_environ()


def head_entries(environ: dict[str, Any]) -> dict[str, Any]:
    """The entries of ``environ`` that the request head determines."""
    return {k: v for k, v in environ.items() if k in HEAD_KEYS or k.startswith("HTTP_")}


def werkzeug_head_entries(data: bytes) -> dict[str, Any] | None:
    """:func:`head_entries` of werkzeug's environ for ``data``; ``None`` if refused."""
    environ = werkzeug_environ(data)
    return None if environ is None else head_entries(environ)
