"""Every public name of ``werkzeug.serving``, backed by fastserve.

``from fastserve.serving import run_simple`` is a drop-in for
``from werkzeug.serving import run_simple``: same signature, defaults, flow
order, log lines and errors (the README lists them). What differs is
underneath (:mod:`fastserve.server`, :mod:`fastserve.connection`): a strict
parser, real HTTP/1.1 keep-alive and pipelining, idle connections in a poller
instead of threads, ``processes=N`` as N pre-forked workers (werkzeug forks
per connection).

A development server: do not use it in production.
"""

from __future__ import annotations

import ipaddress
import os
import socket
from collections.abc import Iterable
from socketserver import ForkingMixIn
from typing import Any

from werkzeug.serving import DechunkedInput, get_interface_ip, get_sockaddr, select_address_family

from ._compat import can_fork
from ._logging import _ansi_style, _log
from ._tls import (
    connection_dropped_errors,
    generate_adhoc_ssl_context,
    generate_adhoc_ssl_pair,
    is_ssl_error,
    load_ssl_context,
    make_ssl_devcert,
)
from .connection import WSGIRequestHandler
from .server import (
    LISTEN_QUEUE,
    BaseWSGIServer,
    ForkingWSGIServer,
    ThreadedWSGIServer,
    make_server,
)

__all__ = [
    "BaseWSGIServer",
    "DechunkedInput",
    "ForkingMixIn",
    "ForkingWSGIServer",
    "LISTEN_QUEUE",
    "ThreadedWSGIServer",
    "WSGIRequestHandler",
    "can_fork",
    "connection_dropped_errors",
    "generate_adhoc_ssl_context",
    "generate_adhoc_ssl_pair",
    "get_interface_ip",
    "get_sockaddr",
    "is_running_from_reloader",
    "is_ssl_error",
    "load_ssl_context",
    "make_server",
    "make_ssl_devcert",
    "run_simple",
    "select_address_family",
]


def is_running_from_reloader() -> bool:
    """Check if the server is running as a subprocess within the reloader
    (``WERKZEUG_RUN_MAIN``, shared with werkzeug and Flask).
    """
    return os.environ.get("WERKZEUG_RUN_MAIN") == "true"


def run_simple(
    hostname: str,
    port: int,
    application: Any,
    use_reloader: bool = False,
    use_debugger: bool = False,
    use_evalex: bool = True,
    extra_files: Iterable[str] | None = None,
    exclude_patterns: Iterable[str] | None = None,
    reloader_interval: int = 1,
    reloader_type: str = "auto",
    threaded: bool = False,
    processes: int = 1,
    request_handler: type[Any] | None = None,
    static_files: dict[str, str | tuple[str, str]] | None = None,
    passthrough_errors: bool = False,
    ssl_context: Any = None,
) -> None:
    """Start a development server for a WSGI application.

    .. warning::

        Do not use the development server when deploying to production.

    :param hostname: The host to bind to, for example ``'localhost'``. Can be
        a domain, IPv4 or IPv6 address, or file path starting with ``unix://``
        for a Unix socket.
    :param port: The port to bind to, for example ``8080``. ``0`` lets the OS
        pick a free port.
    :param application: The WSGI application to run.
    :param use_reloader: Use a reloader process to restart the server process
        when files are changed.
    :param use_debugger: Use werkzeug's debugger, which shows formatted
        tracebacks on unhandled exceptions.
    :param use_evalex: Make the debugger interactive.
    :param extra_files: The reloader also watches these files.
    :param exclude_patterns: The reloader ignores files matching these
        :mod:`fnmatch` patterns.
    :param reloader_interval: How often the reloader checks for changes.
    :param reloader_type: The reloader to use: ``'auto'``, ``'stat'``,
        ``'watchdog'`` (or ``'watchfiles'``).
    :param threaded: Serve concurrent requests in threads. Cannot be used
        with ``processes``.
    :param processes: Serve with this many pre-forked worker processes.
        Cannot be used with ``threaded``.
    :param request_handler: A different request handler class (a subclass of
        fastserve's or werkzeug's ``WSGIRequestHandler``).
    :param static_files: A dict mapping URL prefixes to directories to serve
        static files from using
        :class:`~werkzeug.middleware.shared_data.SharedDataMiddleware`.
    :param passthrough_errors: Don't catch unhandled exceptions at the server
        level, let the server crash instead.
    :param ssl_context: Configure TLS to serve over HTTPS: an
        :class:`ssl.SSLContext`, a ``(cert_file, key_file)`` tuple, or
        ``'adhoc'`` for a temporary self-signed certificate.
    """
    if not isinstance(port, int):
        raise TypeError("port must be an integer")

    application = _wrap_app(application, hostname, use_debugger, use_evalex, static_files)

    if not is_running_from_reloader():
        fd = None
    else:
        fd = int(os.environ["WERKZEUG_SERVER_FD"])

    srv = make_server(
        hostname,
        port,
        application,
        threaded,
        processes,
        request_handler,
        passthrough_errors,
        ssl_context,
        fd=fd,
    )
    srv.socket.set_inheritable(True)
    os.environ["WERKZEUG_SERVER_FD"] = str(srv.fileno())

    if not is_running_from_reloader():
        srv.log_startup()
        _log("info", _ansi_style("Press CTRL+C to quit", "yellow"))

    if use_reloader:
        from ._reloader import run_with_reloader

        try:
            run_with_reloader(
                srv.serve_forever,
                extra_files=extra_files,
                exclude_patterns=exclude_patterns,
                interval=reloader_interval,
                reloader_type=reloader_type,
            )
        finally:
            srv.server_close()
    else:
        srv.serve_forever()


def _wrap_app(
    application: Any,
    hostname: str,
    use_debugger: bool,
    use_evalex: bool,
    static_files: dict[str, str | tuple[str, str]] | None,
) -> Any:
    """The application behind werkzeug's static files and debugger middleware, as asked."""
    if static_files:
        from werkzeug.middleware.shared_data import SharedDataMiddleware

        application = SharedDataMiddleware(application, static_files)

    if use_debugger:
        from werkzeug.debug import DebuggedApplication

        application = DebuggedApplication(application, evalex=use_evalex)
        # Allow the specified hostname to use the debugger, in addition to
        # localhost domains.
        application.trusted_hosts.append(hostname)
        if not is_running_from_reloader() and not _is_loopback(hostname):
            _log(
                "warning",
                " * The debugger is on and the server listens on %r, which other machines"
                " can reach: anyone who learns the PIN can run code here. Bind 127.0.0.1"
                " or turn the debugger off.",
                hostname,
            )

    return application


def _is_loopback(hostname: str) -> bool:
    """Whether ``hostname`` binds loopback addresses only (a unix socket counts as local)."""
    if hostname.startswith("unix://"):
        return True
    if not hostname:
        return False  # "" binds every IPv4 interface
    try:
        infos = socket.getaddrinfo(hostname, None, proto=socket.IPPROTO_TCP)
    except OSError:
        return False
    return all(ipaddress.ip_address(str(i[4][0]).partition("%")[0]).is_loopback for i in infos)
