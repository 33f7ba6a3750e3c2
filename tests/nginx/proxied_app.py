"""The WSGI app the nginx tests serve with ``fastserve proxied_app:app`` (cwd: this directory).

It sits behind werkzeug's ``ProxyFix`` exactly as ``docs/nginx.md`` tells users to (one
proxy: trust one ``X-Forwarded-For``/``-Proto``/``-Host``/``-Port`` value). Every request
except the readiness probe ``/ensure`` and ``/stream/N`` reads its whole body, is appended
as one JSON line to the file named by ``PROXIED_APP_CALLS`` (so a test can prove what
reached the app, across processes), and is answered with the same record as JSON:

``instance`` (``PROXIED_APP_NAME``), ``started`` (when it reached the app), ``conn`` (the
how-manieth upstream connection of this process carried it: the app keeps every
``werkzeug.socket`` it saw, so identities are never reused), ``method``, ``uri``, ``body``
(latin-1), the addresses after ``ProxyFix`` and the forwarded headers as received.
``/slow/SECONDS/...`` is recorded, then sleeps that long before it answers. ``/stream/N``
streams N lines with no length; ``/ensure`` answers the parser implementation loaded.
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any

from werkzeug.middleware.proxy_fix import ProxyFix

import fastserve.parser

StartResponse = Callable[..., Any]

_lock = threading.Lock()
_sockets: list[object] = []  # strong references: identities stay unique


def _connection_index(sock: object) -> int:
    with _lock:
        for index, seen in enumerate(_sockets):
            if seen is sock:
                return index
        _sockets.append(sock)
        return len(_sockets) - 1


def _read_body(environ: dict[str, Any]) -> bytes:
    # fastserve's wsgi.input.read(n) may return fewer than n bytes before the end
    # (werkzeug's buffered rfile does not): read until the end, as werkzeug's Request does.
    stream = environ["wsgi.input"]
    if environ.get("wsgi.input_terminated"):
        return b"".join(iter(lambda: stream.read(65536), b""))
    parts, left = [], int(environ.get("CONTENT_LENGTH") or 0)
    while left > 0:
        part = stream.read(min(left, 65536))
        if not part:
            break
        parts.append(part)
        left -= len(part)
    return b"".join(parts)


def _app(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
    if environ["PATH_INFO"] == "/ensure":
        body = fastserve.parser.PARSER_IMPL.encode()
        start_response("200 OK", [("Content-Length", str(len(body)))])
        return [body]
    if environ["PATH_INFO"].startswith("/stream/"):  # no length: fastserve frames it chunked
        count = int(environ["PATH_INFO"].rsplit("/", 1)[1])
        start_response("200 OK", [("Content-Type", "text/plain")])
        return (b"line %d\n" % i for i in range(count))
    orig = environ.get("werkzeug.proxy_fix.orig", {})
    record = {
        "instance": os.environ.get("PROXIED_APP_NAME", ""),
        "started": time.time(),
        "conn": _connection_index(environ["werkzeug.socket"]),
        "method": environ["REQUEST_METHOD"],
        "uri": environ["REQUEST_URI"],
        "body": _read_body(environ).decode("latin-1"),
        "remote_addr": environ["REMOTE_ADDR"],
        "scheme": environ["wsgi.url_scheme"],
        "host": environ.get("HTTP_HOST"),
        "orig_remote_addr": orig.get("REMOTE_ADDR"),
        "orig_host": orig.get("HTTP_HOST"),
        "server_port": environ["SERVER_PORT"],
        "forwarded_for": environ.get("HTTP_X_FORWARDED_FOR"),
        "forwarded_proto": environ.get("HTTP_X_FORWARDED_PROTO"),
        "transfer_encoding": environ.get("HTTP_TRANSFER_ENCODING"),
        "connection": environ.get("HTTP_CONNECTION"),
    }
    line = json.dumps(record)
    with _lock, open(os.environ["PROXIED_APP_CALLS"], "a") as calls:
        calls.write(line + "\n")
    if environ["PATH_INFO"].startswith("/slow/"):  # /slow/SECONDS/anything
        time.sleep(float(environ["PATH_INFO"].split("/")[2]))
    body = line.encode()
    start_response(
        "200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))]
    )
    return [body]


app = ProxyFix(_app, x_for=1, x_proto=1, x_host=1, x_port=1)
