"""werkzeug's request handler class, as the hook object of a connection.

:class:`WSGIRequestHandler` is what ``run_simple`` takes as ``request_handler``;
:func:`handler_traits` tells the connection (once per class) whether a class
runs on fastserve's own request cycle or, overriding the stdlib one, on the
compatibility path, and whether it overrides ``make_environ``.
"""

from __future__ import annotations

from http.server import BaseHTTPRequestHandler
from typing import Any

from werkzeug import serving as _wz_serving

from . import _logging
from ._environ import headers_from_environ

__all__ = ["WSGIRequestHandler", "handler_traits", "server_line"]


class WSGIRequestHandler(_wz_serving.WSGIRequestHandler):
    """werkzeug's request handler, as a hook object.

    fastserve does not run the stdlib request cycle on its default path; one
    instance per connection carries werkzeug's overridable hooks, which the
    connection calls: :meth:`make_environ` (subclasses call ``super()`` and add
    keys), :meth:`log_request`, ``log``, ``log_error``, ``log_message``,
    ``address_string``, ``port_integer``, ``connection_dropped``,
    ``version_string``. The attributes werkzeug's hooks read are set per
    connection (``server``, ``connection``, ``client_address``) and, for the
    current request, just before a hook runs (``environ``, ``command``,
    ``path``, ``request_version``; ``requestline`` for a refused request), not
    on every request; ``headers`` is built from the environ when a hook reads it.

    A subclass that overrides the stdlib cycle itself (``handle``,
    ``parse_request``, ``run_wsgi``, ``send_header``, ``do_GET``...) is run the
    stdlib way, as werkzeug runs it.
    """

    #: the environ built by the connection for the current request
    _fs_environ: dict[str, Any] | None = None

    def make_environ(self) -> dict[str, Any]:
        """The WSGI environ of the current request."""
        env = self._fs_environ
        if env is None:  # the stdlib cycle (compatibility path)
            return super().make_environ()
        return env

    @property
    def headers(self) -> Any:
        """The request's header fields as an :class:`http.client.HTTPMessage`."""
        cached = self.__dict__.get("_fs_headers")
        env = self._fs_environ
        if env is not None and (cached is None or cached[0] is not env):
            cached = (env, headers_from_environ(env))
            self.__dict__["_fs_headers"] = cached
        return None if cached is None else cached[1]

    @headers.setter
    def headers(self, value: Any) -> None:
        self.__dict__["_fs_headers"] = (None, value)

    #: set per connection: whether :func:`._logging.log_access` may build the
    #: access line (no hook it inlines is overridden); never on the compatibility path
    _fs_fast_log = False

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        """The access log line (werkzeug's format and colours)."""
        if self._fs_fast_log:
            if _logging.log_access(self, code, size):
                return  # logged, or nobody would see it
        elif type(self).log is _wz_serving.WSGIRequestHandler.log and not _logging.info_enabled():
            return  # nobody would see it: skip the formatting
        # After a refused request "path" is unset and werkzeug logs the request line.
        super().log_request(code, size)


# Hooks whose override means "run the stdlib request cycle" (compatibility path).
_STDLIB_CYCLE = frozenset(
    {
        "__init__",
        "setup",
        "handle",
        "handle_one_request",
        "finish",
        "parse_request",
        "run_wsgi",
        "send_response",
        "send_response_only",
        "send_header",
        "end_headers",
        "flush_headers",
    }
)


class _Traits:
    """What a handler class needs from the connection (computed once per class)."""

    __slots__ = ("compat", "make_environ")

    def __init__(self, cls: Any) -> None:
        self.compat = not issubclass(cls, WSGIRequestHandler) or any(
            name in _STDLIB_CYCLE or name.startswith("do_")
            for klass in cls.__mro__[: cls.__mro__.index(WSGIRequestHandler)]
            for name in vars(klass)
        )
        self.make_environ = (
            not self.compat and cls.make_environ is not WSGIRequestHandler.make_environ
        )


_traits_cache: dict[type, _Traits] = {}


def handler_traits(cls: type) -> _Traits:
    """The (cached) :class:`_Traits` of a handler class."""
    traits = _traits_cache.get(cls)
    if traits is None:
        traits = _traits_cache[cls] = _Traits(cls)
    return traits


# http.server's version_string() and werkzeug's server_version (the server's _server_version)
_STOCK_VERSION_STRING = BaseHTTPRequestHandler.version_string
_WZ_SERVER_VERSION = vars(_wz_serving.WSGIRequestHandler)["server_version"]
# the Server lines of the stock hooks, by (server version, sys_version): a handful per process
_server_lines: dict[tuple[Any, Any], bytes] = {}


def server_line(handler: Any) -> bytes:
    """The ``Server`` header line of ``handler``'s responses:
    ``Server: <version_string()>\\r\\n``, encoded as http.server sends it (latin-1).

    With the stock hooks (werkzeug's ``server_version``, http.server's
    ``version_string``), the line is built once per server version, not once per
    connection: ``version_string()`` would return ``server._server_version`` and
    the class's ``sys_version``, which the cache is keyed by.
    """
    cls = type(handler)
    if cls.version_string is _STOCK_VERSION_STRING and cls.server_version is _WZ_SERVER_VERSION:
        key = (handler.server._server_version, cls.sys_version)
        line = _server_lines.get(key)
        if line is not None:
            return line
        if len(_server_lines) >= 64:
            _server_lines.clear()  # values set per server: many means they keep changing
        line = _server_lines[key] = _encode_server_line(handler.version_string())
        return line
    return _encode_server_line(handler.version_string())


def _encode_server_line(version: str) -> bytes:
    return b"Server: " + version.encode("latin-1") + b"\r\n"
