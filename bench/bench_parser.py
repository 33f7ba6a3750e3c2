"""Request head -> WSGI environ: nanoseconds per request, fastserve against its rivals.

Run (from the repository root, in the project's venv; the extension must be built)::

    .venv/bin/python bench/bench_parser.py            # full run: 21 interleaved repeats
    .venv/bin/python bench/bench_parser.py --quick    # smoke run, a few seconds
    .venv/bin/python bench/bench_parser.py --repeat 31

What is measured: the cost of turning the bytes of one complete request head into
the environ a WSGI app receives - everything werkzeug's dev server does between
``rfile.readline()`` and calling the app, minus socket I/O. Each implementation
builds the *same* keys (checked before timing; a mismatch is printed under the
table):

- ``fastserve-c`` / ``fastserve-py``: the head -> complete environ as the server
  hands it to the app: ``RequestParser.parse`` of ``fastserve._parser`` /
  ``fastserve._parser_py`` (one parser reused, as on a keep-alive connection),
  which was given the per-connection entries (``SERVER_NAME``/``PORT``,
  ``REMOTE_ADDR``/``PORT``, ``wsgi.*``, ``SERVER_SOFTWARE``) once with
  ``set_base``, then ``wsgi.errors`` (``sys.stderr``) and ``wsgi.input`` set per
  request, as ``HTTPConnection._run`` does.
- ``fastserve-c, nothing repeated``: ``fastserve-c`` given, in turn, the head and one
  sharing nothing with it (fields in reverse order, every value, the path and the query
  differing in their last byte): what the parser keeps from a connection's previous head
  (docs/parsing.md, "Successive heads") is never reused, the worst case for a keep-alive
  connection. The ``fastserve-c`` row repeats one head, as a benchmarking or polling
  client does; a browser repeats most of its values and names (User-Agent, Accept-*,
  Cookie, Host), not all.
- ``fastserve-c parse()``: ``parse`` alone (and reading ``environ``), without a
  base: the request entries only (so the connection entries are not checked).
- ``werkzeug``: what ``WSGIRequestHandler`` does per request (werkzeug closes
  every connection, so a handler per request): a handler object made without
  ``__init__`` over ``BytesIO`` rfile/wfile, ``rfile.readline``,
  ``parse_request()`` (stdlib + email header parsing), ``make_environ()``.
- ``httptools``: ``HttpRequestParser.feed_data`` with a protocol object
  collecting URL and fields (parser reused), then a Python environ builder.
- ``h11``: ``Connection.receive_data`` + ``next_event`` (a new ``Connection`` per
  request: h11 parses no second request before a response was sent), then the
  same Python environ builder.
- ``gunicorn-py`` / ``gunicorn-h1c``: gunicorn's own path, its
  ``RequestParser`` over the bytes then ``gunicorn.http.wsgi.create`` (which also
  makes gunicorn's Response object), with ``http_parser`` set to ``python``
  (pure-Python parser) or ``fast`` (the gunicorn-h1c C parser). Needs gunicorn
  (and gunicorn-h1c for the second row).
- ``h1c-environ``: gunicorn-h1c's C ``parse_to_wsgi_environ`` alone, completed in
  Python with what it leaves out (percent-decoded ``PATH_INFO``, ``SCRIPT_NAME``,
  ``REQUEST_URI``/``RAW_URI``, ``wsgi.*``): the floor for a C parser that builds
  the environ itself.

Requests: *tiny* (``GET / HTTP/1.1`` + Host), *typical* (a Chrome navigation,
about 600 bytes, 10 fields), *large* (about 2 KB, 30 fields). Method: timeit-style
loops with the garbage collector off, each loop calibrated to ``--batch-ms``; in
every repeat all implementations are measured in turn (the order rotates each
repeat), so each repeat compares them under the same machine load. The table
shows the median over repeats; the ratio columns are the median of the per-repeat
ratios. Absolute figures on a shared VM swing 2-9x between runs: only the ratios
of one run mean anything.

Gate (issue 2), typical request, same run: fastserve-c >= 30x werkzeug and >= 5x
httptools. Goal (issue 8): the complete environ (the ``fastserve-c`` row) <= 1 us
per typical request (about 50x werkzeug, 8x httptools, 3x gunicorn-h1c).

Optional competitors that are not installed are listed as "not installed".
pyperf is not used: one interleaved run is what makes the ratios trustworthy here.
"""

from __future__ import annotations

import argparse
import gc
import importlib
import io
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable, Iterable
from importlib import metadata
from itertools import cycle, repeat
from typing import Any
from urllib.parse import unquote

Environ = dict[str, Any]
Runner = Callable[[bytes], Environ]

# --- the requests -------------------------------------------------------------------


def _head(request_line: str, fields: Iterable[str]) -> bytes:
    return ("\r\n".join([request_line, *fields]) + "\r\n\r\n").encode("latin-1")


_CHROME_UA = (
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/124.0.0.0 Safari/537.36"
)
_CHROME_ACCEPT = (
    "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,"
    "image/apng,*/*;q=0.8,application/signed-exchange;v=b3;q=0.7"
)

TINY = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"

# A Chrome 124 top-level navigation, 10 fields.
TYPICAL = _head(
    "GET /blog/2024/05/fast-http-parsing?utm_source=newsletter HTTP/1.1",
    [
        "Host: www.example.com",
        "Connection: keep-alive",
        "Upgrade-Insecure-Requests: 1",
        f"User-Agent: {_CHROME_UA}",
        f"Accept: {_CHROME_ACCEPT}",
        "Sec-Fetch-Site: same-origin",
        "Referer: https://www.example.com/blog/",
        "Accept-Encoding: gzip, deflate, br, zstd",
        "Accept-Language: en-US,en;q=0.9",
        "Cookie: _ga=GA1.1.1234567890.1716200000; sessionid=k3j4h5g6f7d8s9a0",
    ],
)

# An XHR behind a proxy with tracing, auth and a fat cookie: 30 fields, about 2 KB.
LARGE = _head(
    "GET /api/v2/projects/4711/issues?state=open&labels=bug%2Cperformance&sort=updated"
    "&direction=desc&per_page=50&page=3 HTTP/1.1",
    [
        "Host: app.example.com",
        "Connection: keep-alive",
        'sec-ch-ua: "Chromium";v="124", "Google Chrome";v="124", "Not-A.Brand";v="99"',
        "sec-ch-ua-mobile: ?0",
        'sec-ch-ua-platform: "Linux"',
        f"User-Agent: {_CHROME_UA}",
        "Accept: application/json, text/plain, */*",
        "Sec-Fetch-Site: same-origin",
        "Sec-Fetch-Mode: cors",
        "Sec-Fetch-Dest: empty",
        "Referer: https://app.example.com/projects/4711/issues?state=open",
        "Accept-Encoding: gzip, deflate, br, zstd",
        "Accept-Language: en-US,en;q=0.9,de;q=0.8,fr;q=0.7",
        "Authorization: Bearer eyJhbGciOiJSUzI1NiIsInR5cCI6IkpXVCIsImtpZCI6ImJlbmNoIn0."
        "eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkJlbmNoIFVzZXIiLCJpYXQiOjE3MTYyMDAwMDAsImV4"
        "cCI6MTcxNjIwMzYwMCwic2NvcGUiOiJyZWFkOmlzc3VlcyB3cml0ZTppc3N1ZXMifQ."
        "c2lnbmF0dXJlLW5vdC1yZWFsLWJ1dC1vZi1yZWFsaXN0aWMtbGVuZ3RoLWZvci1hLWJlbmNobWFyaw",
        "Cookie: _ga=GA1.1.1234567890.1716200000; _gid=GA1.1.987654321.1716200000;"
        " sessionid=k3j4h5g6f7d8s9a0q1w2e3r4t5y6u7i8; csrftoken=Zx9Yw8Vu7Ts6Rq5Po4Nm3Lk2Ji1Hg0Fe;"
        " theme=dark; tz=Europe%2FBerlin; feature_flags=new-editor,fast-search,beta-charts;"
        " last_project=4711; recently_viewed=4711-1290,4711-1288,4711-1207,4711-1193,4711-1180;"
        " _gcl_au=1.1.1827364519.1716200000; _fbp=fb.1.1716200000000.1029384756",
        "X-Requested-With: XMLHttpRequest",
        "X-CSRFToken: Zx9Yw8Vu7Ts6Rq5Po4Nm3Lk2Ji1Hg0Fe",
        "X-Forwarded-For: 203.0.113.195, 70.41.3.18, 150.172.238.178",
        "X-Forwarded-Proto: https",
        "X-Forwarded-Host: app.example.com",
        "X-Real-IP: 203.0.113.195",
        "X-Request-ID: 6f1c2b9e-3d4a-4e8f-9b7c-1a2d3e4f5a6b",
        "traceparent: 00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        "tracestate: rojo=00f067aa0ba902b7,congo=t61rcWkgMzE",
        'If-None-Match: W/"5e15153d-120f"',
        "If-Modified-Since: Wed, 21 Oct 2024 07:28:00 GMT",
        "Cache-Control: no-cache",
        "Pragma: no-cache",
        "Priority: u=1, i",
        "DNT: 1",
    ],
)

REQUESTS: dict[str, bytes] = {"tiny": TINY, "typical": TYPICAL, "large": LARGE}


def _other_byte(text: bytes) -> bytes:
    """``text`` with its last byte changed (same length: the compare runs to the end)."""
    return text[:-1] + bytes([text[-1] ^ 1])


def unrepeated(data: bytes) -> bytes:
    """The head a client would send after ``data`` sharing nothing with it: the fields in
    reverse order, every value, the path and the query differing in their last byte."""
    request_line, *fields = data.rstrip(b"\r\n").split(b"\r\n")
    method, target, version = request_line.split(b" ")
    path, sep, query = target.partition(b"?")
    path = _other_byte(path) if len(path) > 1 else b"/x"  # "." is no origin-form target
    target = path + sep + (_other_byte(query) if query else b"")
    others = [
        name + b": " + _other_byte(value)
        for name, _, value in (field.partition(b": ") for field in reversed(fields))
    ]
    return b"\r\n".join([b" ".join([method, target, version]), *others]) + b"\r\n\r\n"


# --- per-connection facts, the same for every implementation ----------------------------

SERVER_ADDRESS = ("127.0.0.1", 5000)
CLIENT_ADDRESS = ("127.0.0.1", 54321)


def connection_entries() -> Environ:
    """The environ entries a server adds from the connection (werkzeug's values)."""
    return {
        "wsgi.version": (1, 0),
        "wsgi.url_scheme": "http",
        "wsgi.errors": sys.stderr,
        "wsgi.multithread": False,
        "wsgi.multiprocess": False,
        "wsgi.run_once": False,
        "werkzeug.socket": None,
        "SERVER_SOFTWARE": "bench/1.0",
        "REMOTE_ADDR": CLIENT_ADDRESS[0],
        "REMOTE_PORT": CLIENT_ADDRESS[1],
        "SERVER_NAME": SERVER_ADDRESS[0],
        "SERVER_PORT": str(SERVER_ADDRESS[1]),
    }


class NotInstalled(Exception):
    """An optional competitor is missing."""


# --- implementations ----------------------------------------------------------------


def make_fastserve(module_name: str, complete: bool = True) -> Runner:
    """``complete``: the environ as the server hands it to the app; else ``parse()`` alone."""
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise NotInstalled(str(exc)) from None
    parser = module.RequestParser()
    parse = parser.parse
    rfile = io.BytesIO()

    def parse_only(data: bytes) -> Environ:
        if not parse(data):
            raise RuntimeError("incomplete head")
        return parser.environ  # type: ignore[no-any-return]

    if not complete:
        return parse_only
    # once per connection, as HTTPConnection does: its entries hold wsgi.errors and
    # wsgi.input too, replaced per request (wsgi.errors is read per request)
    parser.set_base(dict(connection_entries(), **{"wsgi.input": rfile}))
    # the keys as the server's fast path spells them: interned, like the template's
    wsgi_errors, wsgi_input = sys.intern("wsgi.errors"), sys.intern("wsgi.input")

    def run(data: bytes) -> Environ:
        if not parse(data):
            raise RuntimeError("incomplete head")
        environ: Environ = parser.environ
        environ[wsgi_errors] = sys.stderr
        environ[wsgi_input] = rfile
        return environ

    return run


def make_fastserve_unrepeated() -> Runner:
    """``fastserve-c`` on a connection whose heads share nothing: the calls for ``data``
    parse ``data`` and ``unrepeated(data)`` in turn, ``data`` first. (Picking the head
    costs a dict lookup and a call, counted in the row.)"""
    run = make_fastserve("fastserve._parser")
    turns: dict[bytes, Callable[[], bytes]] = {}

    def alternate(data: bytes) -> Environ:
        try:
            turn = turns[data]
        except KeyError:
            turn = turns[data] = cycle([data, unrepeated(data)]).__next__
        return run(turn())

    return alternate


def make_werkzeug() -> Runner:
    """werkzeug's per-request path without sockets (as tests/werkzeug_harness.py)."""
    from werkzeug.serving import WSGIRequestHandler

    class Server:
        server_address = SERVER_ADDRESS
        ssl_context = None
        multithread = False
        multiprocess = False
        _server_version = "Werkzeug/bench"

    server = Server()
    new = WSGIRequestHandler.__new__

    def run(data: bytes) -> Environ:
        handler = new(WSGIRequestHandler)
        handler.rfile = rfile = io.BytesIO(data)
        handler.wfile = io.BytesIO()
        handler.client_address = CLIENT_ADDRESS
        handler.server = server  # type: ignore[assignment]
        handler.connection = None
        handler.raw_requestline = rfile.readline(65537)
        if not handler.parse_request():
            raise RuntimeError("werkzeug refused the request")
        return handler.make_environ()

    return run


def python_environ(
    base: Environ, method: str, target: str, version: str, fields: Iterable[tuple[str, str]]
) -> Environ:
    """A compact Python environ builder with werkzeug's values (for httptools and h11).

    Handles what the benchmark requests need and the common rest: the ``//``
    collapse, fragment, query, absolute-form host, percent-decoding, ``_`` names
    dropped, repeated fields joined with ``,``.
    """
    environ = base.copy()
    if target[:2] == "//":
        target = "/" + target.lstrip("/")
    path, _, query = target.partition("#")[0].partition("?")
    target_host = None
    if path[:1] != "/" and "://" in path:
        authority, slash, rest = path.partition("://")[2].partition("/")
        target_host = authority.rpartition("@")[2]
        path = slash + rest
    if "%" in path:
        path = unquote(path).encode().decode("latin-1")
    environ["REQUEST_METHOD"] = method
    environ["SCRIPT_NAME"] = ""
    environ["PATH_INFO"] = path
    environ["QUERY_STRING"] = query
    environ["REQUEST_URI"] = environ["RAW_URI"] = target
    environ["SERVER_PROTOCOL"] = version
    for name, value in fields:
        if "_" in name:
            continue
        key = name.upper().replace("-", "_")
        if key != "CONTENT_TYPE" and key != "CONTENT_LENGTH":
            key = "HTTP_" + key
            if key in environ:
                value = environ[key] + "," + value
        environ[key] = value
    if target_host is not None:
        environ["HTTP_HOST"] = target_host
    return environ


def make_httptools() -> Runner:
    try:
        import httptools
    except ImportError as exc:
        raise NotInstalled(str(exc)) from None

    class Protocol:
        __slots__ = ("url", "fields")

        def __init__(self) -> None:
            self.url = b""
            self.fields: list[tuple[str, str]] = []

        def on_url(self, url: bytes) -> None:
            self.url += url

        def on_header(self, name: bytes, value: bytes) -> None:
            self.fields.append((name.decode("latin-1"), value.decode("latin-1")))

    protocol = Protocol()
    parser = httptools.HttpRequestParser(protocol)
    base = connection_entries()
    rfile = io.BytesIO()

    def run(data: bytes) -> Environ:
        protocol.url = b""
        protocol.fields = []
        parser.feed_data(data)
        environ = python_environ(
            base,
            parser.get_method().decode("latin-1"),
            protocol.url.decode("latin-1"),
            "HTTP/" + parser.get_http_version(),
            protocol.fields,
        )
        environ["wsgi.input"] = rfile
        return environ

    return run


def make_h11() -> Runner:
    try:
        import h11
    except ImportError as exc:
        raise NotInstalled(str(exc)) from None
    base = connection_entries()
    rfile = io.BytesIO()
    server_role = h11.SERVER

    def run(data: bytes) -> Environ:
        conn = h11.Connection(server_role)
        conn.receive_data(data)
        event = conn.next_event()
        environ = python_environ(
            base,
            event.method.decode("latin-1"),
            event.target.decode("latin-1"),
            "HTTP/" + event.http_version.decode("latin-1"),
            [(n.decode("latin-1"), v.decode("latin-1")) for n, v in event.headers.raw_items()],
        )
        environ["wsgi.input"] = rfile
        return environ

    return run


def make_gunicorn(http_parser: str) -> Runner:
    try:
        from gunicorn.config import Config
        from gunicorn.http import wsgi
        from gunicorn.http.parser import RequestParser
    except ImportError as exc:
        raise NotInstalled(str(exc)) from None
    if http_parser == "fast":
        try:
            import gunicorn_h1c  # noqa: F401
        except ImportError as exc:
            raise NotInstalled(str(exc)) from None
    cfg = Config()
    cfg.set("http_parser", http_parser)

    class Sock:
        def send(self, data: bytes) -> int:
            return len(data)

        sendall = send

    sock = Sock()
    server = (SERVER_ADDRESS[0], str(SERVER_ADDRESS[1]))

    def run(data: bytes) -> Environ:
        request = next(RequestParser(cfg, iter([data]), CLIENT_ADDRESS))
        _response, environ = wsgi.create(request, sock, CLIENT_ADDRESS, server, cfg)
        return environ

    return run


def make_h1c_environ() -> Runner:
    try:
        from gunicorn_h1c import parse_to_wsgi_environ
    except ImportError as exc:
        raise NotInstalled(str(exc)) from None
    rest = {
        k: v for k, v in connection_entries().items() if not k.startswith(("SERVER_", "REMOTE_"))
    }
    rest["SCRIPT_NAME"] = ""
    rest["SERVER_SOFTWARE"] = connection_entries()["SERVER_SOFTWARE"]
    server = (SERVER_ADDRESS[0], str(SERVER_ADDRESS[1]))
    rfile = io.BytesIO()

    def run(data: bytes) -> Environ:
        environ: Environ = parse_to_wsgi_environ(data, server=server, client=CLIENT_ADDRESS)
        environ.update(rest)
        path = environ["PATH_INFO"]
        query = environ["QUERY_STRING"]
        environ["REQUEST_URI"] = environ["RAW_URI"] = path + "?" + query if query else path
        if "%" in path:
            environ["PATH_INFO"] = unquote(path).encode().decode("latin-1")
        environ["wsgi.input"] = rfile
        return environ

    return run


IMPLEMENTATIONS: dict[str, Callable[[], Runner]] = {
    "fastserve-c": lambda: make_fastserve("fastserve._parser"),
    "fastserve-c parse()": lambda: make_fastserve("fastserve._parser", complete=False),
    "fastserve-c, nothing repeated": make_fastserve_unrepeated,
    "fastserve-py": lambda: make_fastserve("fastserve._parser_py"),
    "werkzeug": make_werkzeug,
    "httptools": make_httptools,
    "h11": make_h11,
    "gunicorn-py": lambda: make_gunicorn("python"),
    "gunicorn-h1c": lambda: make_gunicorn("fast"),
    "h1c-environ": make_h1c_environ,
}

# --- checking that every implementation builds the same environ -------------------------

_HEAD_KEYS = {
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
# keys every environ must have besides the head entries (werkzeug.socket is werkzeug's own)
_CONNECTION_KEYS = {k for k in connection_entries() if k != "werkzeug.socket"} | {"wsgi.input"}
# rows that build the head's entries only
HEAD_ONLY = {"fastserve-c parse()"}


def check_environ(reference: Environ, environ: Environ, head_only: bool = False) -> list[str]:
    """Differences between ``environ`` and werkzeug's, as short descriptions."""
    problems = []
    for key in sorted(set(reference) | set(environ)):
        if not (key in _HEAD_KEYS or key.startswith("HTTP_")):
            continue
        if key not in environ:
            problems.append(f"{key} missing")
        elif key not in reference:
            problems.append(f"{key} extra")
        elif environ[key] != reference[key]:
            problems.append(f"{key}={environ[key]!r} (werkzeug: {reference[key]!r})")
    if head_only:
        return problems
    problems += [f"{key} missing" for key in sorted(_CONNECTION_KEYS - set(environ))]
    for key in ("REMOTE_PORT", "SERVER_PORT"):
        if key in environ and type(environ[key]) is not type(reference[key]):
            problems.append(f"{key} is {type(environ[key]).__name__}")
    return problems


# --- timing ---------------------------------------------------------------------------


def time_batch(run: Runner, data: bytes, loops: int) -> float:
    """ns per call of ``run(data)`` over ``loops`` calls, garbage collector off."""
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        start = time.perf_counter_ns()
        for _ in repeat(None, loops):
            run(data)
        elapsed = time.perf_counter_ns() - start
    finally:
        if gc_was_enabled:
            gc.enable()
    return elapsed / loops


def calibrate(run: Runner, data: bytes, batch_ns: float) -> int:
    """Loops so that one batch takes about ``batch_ns``."""
    loops = 1
    while True:
        per_call = time_batch(run, data, loops)
        if per_call * loops >= batch_ns / 10:
            return max(1, int(batch_ns / per_call))
        loops *= 10


def fmt_us(ns: float) -> str:
    us = ns / 1000
    return f"{us:.3f}" if us < 1 else f"{us:.2f}" if us < 100 else f"{us:.0f}"


def fmt_ratio(ratio: float) -> str:
    return f"{ratio:.1f}x" if ratio < 100 else f"{ratio:.0f}x"


def machine_line() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    load = "n/a"
    if hasattr(os, "getloadavg"):
        load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    return (
        f"{platform.python_implementation()} {platform.python_version()}, {platform.system()} "
        f"{platform.machine()}, {cpu}, {os.cpu_count()} CPUs, load average {load}"
    )


def versions_line() -> str:
    found = []
    for dist in ("fastserve", "werkzeug", "httptools", "h11", "gunicorn", "gunicorn-h1c"):
        try:
            found.append(f"{dist} {metadata.version(dist)}")
        except metadata.PackageNotFoundError:
            pass
    return ", ".join(found)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="smoke run: 3 repeats of short batches")
    ap.add_argument(
        "--repeat", type=int, default=None, help="interleaved repeats (default 21; --quick: 3)"
    )
    ap.add_argument("--batch-ms", type=float, default=None, help="length of one timed batch")
    args = ap.parse_args(argv)
    repeats = args.repeat or (3 if args.quick else 21)
    batch_ns = (args.batch_ms or (5.0 if args.quick else 40.0)) * 1e6

    runners: dict[str, Runner] = {}
    missing: dict[str, str] = {}
    for name, factory in IMPLEMENTATIONS.items():
        try:
            runners[name] = factory()
        except NotInstalled as exc:
            missing[name] = f"not installed ({exc})"
        except Exception as exc:  # e.g. an incompatible version of a competitor
            missing[name] = f"unusable ({exc!r})"
    if "werkzeug" not in runners:
        print("werkzeug is required as the baseline", file=sys.stderr)
        return 2

    reference = {req: runners["werkzeug"](data) for req, data in REQUESTS.items()}
    notes: list[str] = []
    for name, run in list(runners.items()):
        for req, data in REQUESTS.items():
            try:
                problems = check_environ(reference[req], run(data), name in HEAD_ONLY)
            except Exception as exc:  # a competitor refusing a request is reported, not fatal
                problems = [f"raised {exc!r}"]
                del runners[name]
            if problems:
                notes.append(f"- {name}, {req}: environ differs: " + "; ".join(problems))
            if name not in runners:
                break

    names = list(runners)
    loops = {(n, r): calibrate(runners[n], d, batch_ns) for n in names for r, d in REQUESTS.items()}
    times: dict[tuple[str, str], list[float]] = {key: [] for key in loops}
    for i in range(repeats):
        order = names[i % len(names) :] + names[: i % len(names)]
        for name in order:
            for req, data in REQUESTS.items():
                times[name, req].append(time_batch(runners[name], data, loops[name, req]))

    def median_ratio(base: str, name: str, req: str) -> float:
        return statistics.median(
            b / t for b, t in zip(times[base, req], times[name, req], strict=True)
        )

    crlf = b"\r\n"
    sizes = {r: f"{r} ({len(d)} B, fields: {d.count(crlf) - 2})" for r, d in REQUESTS.items()}
    title = (
        f"request head -> WSGI environ, µs per request (median of {repeats} interleaved repeats)"
    )
    print(f"## {title}\n")
    print(f"{machine_line()}  \n{versions_line()}\n")
    header = [
        "implementation",
        *(f"{sizes[r]} µs" for r in REQUESTS),
        "x werkzeug (tiny / typical / large)",
        "x httptools",
    ]
    print("| " + " | ".join(header) + " |")
    print("|" + "|".join(["---"] + ["---:"] * (len(header) - 1)) + "|")
    for name in IMPLEMENTATIONS:
        if name in missing:
            print(f"| {name} | " + " | ".join([missing[name].split(" (")[0]] * 3) + " | | |")
            continue
        if name not in runners:
            print(f"| {name} | " + " | ".join(["failed"] * 3) + " | | |")
            continue
        cells = [fmt_us(statistics.median(times[name, r])) for r in REQUESTS]
        vs_wz = " / ".join(fmt_ratio(median_ratio("werkzeug", name, r)) for r in REQUESTS)
        vs_ht = ""
        if name.startswith("fastserve-c") and "httptools" in runners:
            vs_ht = " / ".join(fmt_ratio(median_ratio("httptools", name, r)) for r in REQUESTS)
        print(f"| {name} | " + " | ".join(cells) + f" | {vs_wz} | {vs_ht} |")
    print()
    if notes:
        print("Environ checks against werkzeug:")
        print("\n".join(notes))
        print()
    for name, reason in missing.items():
        print(f"- {name}: {reason}")

    if "fastserve-c" in runners:
        if "fastserve-c parse()" in runners:
            parse_us = statistics.median(times["fastserve-c parse()", "typical"]) / 1000
            line = f"parse() alone {parse_us:.3f} µs"
            if "httptools" in runners:
                x_parse = median_ratio("httptools", "fastserve-c parse()", "typical")
                line += f" ({x_parse:.1f}x httptools)"
            print("Typical request, fastserve-c: " + line)
        if "fastserve-c, nothing repeated" in runners:
            fresh_us = statistics.median(times["fastserve-c, nothing repeated", "typical"]) / 1000
            print(f"Typical request, fastserve-c, nothing repeated: {fresh_us:.3f} µs")
        typical_us = statistics.median(times["fastserve-c", "typical"]) / 1000
        x_wz = median_ratio("werkzeug", "fastserve-c", "typical")
        verdict = [f"{x_wz:.1f}x werkzeug ({'ok' if x_wz >= 30 else 'MISSED'}: >= 30x)"]
        if "httptools" in runners:
            x_ht = median_ratio("httptools", "fastserve-c", "typical")
            verdict.append(f"{x_ht:.1f}x httptools ({'ok' if x_ht >= 5 else 'MISSED'}: >= 5x)")
        verdict.append(
            f"head -> complete environ as the server hands it {typical_us:.3f} µs "
            f"({'ok' if typical_us <= 1 else 'missed'}: goal <= 1 µs)"
        )
        print("Gate, typical request, fastserve-c: " + "; ".join(verdict))
    else:
        print("Gate: fastserve-c not available (build it: pip install -e . --no-build-isolation)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
