"""The WSGI application that ``bench_stress.py`` serves (every server gets this same app).

Routes:

* ``/`` - hello world (13 bytes, ``Content-Length``): the *normal client*'s request;
* ``/sink`` - answers 200 at once and never touches ``wsgi.input`` (the trickle attack POSTs a
  body it sends one byte at a time);
* ``/1mib`` - a 1 MiB body, returned as a list of 16 chunks of 64 KiB (shared objects: no copy
  per request);
* ``/sleep20`` - streams one byte per second for 20 s (``Content-Length: 20``);
* ``/sleep2`` - sleeps 2 s, then answers.

Anything else is a 404.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

HELLO = b"Hello, World!"
CHUNK = b"x" * 65536
MIB_CHUNKS = 16
STREAM_SECONDS = 20


def _plain(start_response: Callable[..., Any], status: str, body: bytes) -> list[bytes]:
    start_response(status, [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]


def _stream(seconds: int) -> Iterator[bytes]:
    for _ in range(seconds):
        time.sleep(1.0)
        yield b"."


def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
    path = environ.get("PATH_INFO", "/")
    if path == "/":
        return _plain(start_response, "200 OK", HELLO)
    if path == "/sink":
        return _plain(start_response, "200 OK", b"OK")  # the request body is never read
    if path == "/1mib":
        start_response(
            "200 OK",
            [
                ("Content-Type", "application/octet-stream"),
                ("Content-Length", str(len(CHUNK) * MIB_CHUNKS)),
            ],
        )
        return [CHUNK] * MIB_CHUNKS
    if path == "/sleep20":
        start_response(
            "200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(STREAM_SECONDS))]
        )
        return _stream(STREAM_SECONDS)
    if path == "/sleep2":
        time.sleep(2.0)
        return _plain(start_response, "200 OK", b"slept 2 s")
    return _plain(start_response, "404 Not Found", b"not found")
