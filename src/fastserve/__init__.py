"""fastserve: a drop-in replacement for werkzeug's ``run_simple``, with a compiled
HTTP/1.1 request parser."""

from __future__ import annotations

from ._install import install, uninstall
from ._version import __version__
from .errors import HTTPParseError
from .parser import PARSER_IMPL, parse_request
from .serving import (
    BaseWSGIServer,
    ForkingWSGIServer,
    ThreadedWSGIServer,
    WSGIRequestHandler,
    generate_adhoc_ssl_context,
    is_running_from_reloader,
    load_ssl_context,
    make_server,
    make_ssl_devcert,
    run_simple,
)

__all__ = [
    "BaseWSGIServer",
    "ForkingWSGIServer",
    "HTTPParseError",
    "PARSER_IMPL",
    "ThreadedWSGIServer",
    "WSGIRequestHandler",
    "__version__",
    "generate_adhoc_ssl_context",
    "install",
    "is_running_from_reloader",
    "load_ssl_context",
    "make_server",
    "make_ssl_devcert",
    "parse_request",
    "run_simple",
    "uninstall",
]
