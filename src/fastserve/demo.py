"""The demo WSGI application ``fastserve`` serves when no app is given.

Three pages, linked to each other, in plain WSGI (no framework):

* ``/``        the request's environ as an HTML table, and a form that POSTs
               back to ``/``; a POST shows the submitted fields above the table.
* ``/stream``  a ``text/plain`` response yielded line by line with short
               pauses (``?lines=N&delay=SECONDS``, bounded), to watch chunked
               streaming in a browser or with ``curl -N``.
* anything else is a 404 page with the same links.

Every value from the request is HTML-escaped before it is written.
"""

from __future__ import annotations

import html
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any
from urllib.parse import parse_qs, parse_qsl

__all__ = ["app"]

#: Largest request body the form handler reads.
MAX_FORM_BYTES = 64 * 1024
#: Bounds of the ``/stream`` query parameters.
MAX_STREAM_LINES = 50
MAX_STREAM_DELAY = 2.0

StartResponse = Callable[..., Any]

_STYLE = (
    "body{font-family:system-ui,sans-serif;margin:2em auto;max-width:60em;padding:0 1em}"
    "table{border-collapse:collapse;width:100%}"
    "td,th{border-bottom:1px solid #ddd;padding:.2em .5em;text-align:left;vertical-align:top}"
    "td:first-child{font-family:monospace;white-space:nowrap}"
    "td:last-child{font-family:monospace;word-break:break-all}"
    "nav a{margin-right:1em}"
)
_NAV = '<nav><a href="/">environ &amp; form</a><a href="/stream">streaming</a></nav>'


def app(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
    """Dispatch a request to one of the demo pages."""
    path = environ.get("PATH_INFO", "") or "/"
    method = environ.get("REQUEST_METHOD", "GET")
    if path == "/stream":
        if method not in ("GET", "HEAD"):
            return _method_not_allowed(start_response, "GET, HEAD")
        return _stream(environ, start_response)
    if path == "/":
        if method not in ("GET", "HEAD", "POST"):
            return _method_not_allowed(start_response, "GET, HEAD, POST")
        posted = _read_form(environ) if method == "POST" else None
        return _html(start_response, "200 OK", _index_body(environ, posted))
    body = f"<h1>Not Found</h1><p>No page at <code>{html.escape(path)}</code>.</p>"
    return _html(start_response, "404 Not Found", body)


def _index_body(environ: dict[str, Any], posted: list[tuple[str, str]] | None) -> str:
    parts = ["<h1>fastserve demo</h1>"]
    if posted is not None:
        parts.append("<h2>Posted fields</h2>")
        parts.append(_table(posted) if posted else "<p>The form was empty.</p>")
    parts.append(
        '<h2>Post a form</h2><form method="post" action="/">'
        '<p><label>name <input name="name" value="fastserve"></label> '
        '<label>message <input name="message" value="hello"></label> '
        '<button type="submit">POST</button></p></form>'
    )
    rows = sorted(
        (key, value if isinstance(value, str) else repr(value)) for key, value in environ.items()
    )
    parts.append("<h2>Request environ</h2>")
    parts.append(_table(rows))
    return "".join(parts)


def _table(rows: Iterable[tuple[str, str]]) -> str:
    cells = "".join(
        f"<tr><td>{html.escape(key)}</td><td>{html.escape(value)}</td></tr>" for key, value in rows
    )
    return f"<table>{cells}</table>"


def _read_form(environ: dict[str, Any]) -> list[tuple[str, str]]:
    """Read an ``application/x-www-form-urlencoded`` body (at most :data:`MAX_FORM_BYTES`)."""
    stream = environ["wsgi.input"]
    try:
        length = int(environ.get("CONTENT_LENGTH") or 0)
    except ValueError:
        length = 0
    if length > 0:
        data = stream.read(min(length, MAX_FORM_BYTES))
    elif environ.get("wsgi.input_terminated"):
        data = stream.read(MAX_FORM_BYTES)
    else:
        data = b""
    content_type = environ.get("CONTENT_TYPE", "").partition(";")[0].strip().lower()
    if content_type not in ("", "application/x-www-form-urlencoded"):
        return [("(body)", f"{len(data)} bytes of {content_type}, not shown")]
    return parse_qsl(data.decode("utf-8", "replace"), keep_blank_values=True)


def _stream(environ: dict[str, Any], start_response: StartResponse) -> Iterator[bytes]:
    query = parse_qs(environ.get("QUERY_STRING", ""))
    lines = int(_bounded(query, "lines", 5, 1, MAX_STREAM_LINES))
    delay = _bounded(query, "delay", 0.3, 0.0, MAX_STREAM_DELAY)
    start_response(
        "200 OK",
        [
            ("Content-Type", "text/plain; charset=utf-8"),
            # lets browsers render the lines as they arrive instead of sniffing first
            ("X-Content-Type-Options", "nosniff"),
            ("Cache-Control", "no-store"),
        ],
    )
    return _stream_lines(lines, delay)


def _stream_lines(lines: int, delay: float) -> Iterator[bytes]:
    for number in range(1, lines + 1):
        if number > 1 and delay:
            time.sleep(delay)
        yield f"line {number} of {lines} at {time.strftime('%H:%M:%S')}\n".encode()
    yield b"done - back to the demo: /\n"


def _bounded(
    query: dict[str, list[str]], name: str, default: float, low: float, high: float
) -> float:
    try:
        value = float(query[name][0])
    except (KeyError, ValueError):
        return default
    if value != value:  # NaN
        return default
    return min(max(value, low), high)


def _html(start_response: StartResponse, status: str, body: str) -> list[bytes]:
    page = (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        f"<title>fastserve demo</title><style>{_STYLE}</style></head>"
        f"<body>{_NAV}{body}</body></html>"
    ).encode()
    start_response(
        status,
        [("Content-Type", "text/html; charset=utf-8"), ("Content-Length", str(len(page)))],
    )
    return [page]


def _method_not_allowed(start_response: StartResponse, allow: str) -> list[bytes]:
    body = b"405 Method Not Allowed\n"
    start_response(
        "405 Method Not Allowed",
        [("Content-Type", "text/plain"), ("Allow", allow), ("Content-Length", str(len(body)))],
    )
    return [body]
