"""The WSGI environ (PEP 3333) with werkzeug 3.1's values.

The parser builds the request-derived entries (method, path, query, URI,
protocol, ``HTTP_*``, ``CONTENT_*``) in a new dict per request. Everything the
*connection* determines - client and server address, scheme, socket, server
software, TLS peer certificate - is computed once per connection by
:func:`connection_environ` and given to the connection's parser
(``RequestParser.set_base``), whose per-request dict starts as a copy of them;
none of its keys is one a head sets, so that is the head's entries updated with
them. ``wsgi.errors`` (``sys.stderr`` of the moment) and ``wsgi.input`` are set
per request; the connection's entries hold them too (``sys.stderr`` then, and the
empty body), so that completing a request's environ replaces two values instead
of growing the dict. The handler hooks that werkzeug consults for these values
(``address_string``, ``port_integer``, ``server_version``) are called once per
connection, so subclasses and monkeypatches are honoured.
"""

from __future__ import annotations

import socket
import ssl
import sys
from http.client import HTTPMessage
from typing import Any

from werkzeug.serving import WSGIRequestHandler

from ._body import EMPTY_INPUT
from ._contracts import EnvironServer
from ._logging import _log

__all__ = ["connection_environ", "headers_from_environ"]


def connection_environ(
    handler: WSGIRequestHandler, server: EnvironServer, sock: socket.socket
) -> dict[str, Any]:
    """The environ entries that are the same for every request on ``sock``.

    :param handler: the connection's handler (its ``client_address`` is
        normalised as werkzeug does: empty -> ``("<local>", 0)``, a string ->
        ``(s, 0)``).
    """
    addr = handler.client_address
    if not addr:
        addr = handler.client_address = ("<local>", 0)
    elif isinstance(addr, str):
        addr = handler.client_address = (addr, 0)
    cls = type(handler)
    try:
        shared: dict[str, Any] = server._fs_environ_cache[cls]  # type: ignore[attr-defined]
    except (AttributeError, KeyError):
        cache = server.__dict__.setdefault("_fs_environ_cache", {})
        shared = cache[cls] = _server_environ(handler, server)
    env = shared.copy()  # with room for the entries set below (no resize)
    # replaced per request (see the module docstring)
    env["wsgi.errors"] = sys.stderr
    env["wsgi.input"] = EMPTY_INPUT
    env["werkzeug.socket"] = sock
    if (
        cls.address_string is WSGIRequestHandler.address_string
        and cls.port_integer is WSGIRequestHandler.port_integer
    ):
        # what werkzeug's methods return before the handler has an environ
        env["REMOTE_ADDR"] = addr[0]
        env["REMOTE_PORT"] = addr[1]
    else:
        env["REMOTE_ADDR"] = handler.address_string()
        env["REMOTE_PORT"] = handler.port_integer()
    if isinstance(sock, ssl.SSLSocket):
        try:
            peer_cert = sock.getpeercert(binary_form=True)
            if peer_cert is not None:
                env["SSL_CLIENT_CERT"] = ssl.DER_cert_to_PEM_cert(peer_cert)
        except ValueError:
            _log("error", "Cannot fetch SSL peer certificate info")
    return env


def _server_environ(handler: WSGIRequestHandler, server: EnvironServer) -> dict[str, Any]:
    """The entries that are the same for every connection of ``server``."""
    server_address = server.server_address
    return {
        "wsgi.version": (1, 0),
        "wsgi.url_scheme": "http" if server.ssl_context is None else "https",
        "wsgi.multithread": server.multithread,
        "wsgi.multiprocess": server.multiprocess,
        "wsgi.run_once": False,
        "SERVER_SOFTWARE": handler.server_version,
        # werkzeug parity: for AF_UNIX these are the path's first two characters
        "SERVER_NAME": server_address[0],
        "SERVER_PORT": str(server_address[1]),
        # set per connection by connection_environ()
        "wsgi.errors": None,
        "wsgi.input": None,
        "werkzeug.socket": None,
        "REMOTE_ADDR": None,
        "REMOTE_PORT": None,
    }


def headers_from_environ(environ: dict[str, Any]) -> HTTPMessage:
    """An :class:`http.client.HTTPMessage` rebuilt from the environ's header
    entries, for handler subclasses that read ``self.headers``.

    Field names come back in title case (``HTTP_X_TOKEN`` -> ``X-Token``);
    repeated fields are the single comma-joined value the environ holds.
    """
    msg = HTTPMessage()
    for key, value in environ.items():
        if key.startswith("HTTP_"):
            msg[key[5:].replace("_", "-").title()] = value
        elif key == "CONTENT_TYPE":
            msg["Content-Type"] = value
        elif key == "CONTENT_LENGTH":
            msg["Content-Length"] = value
    return msg
