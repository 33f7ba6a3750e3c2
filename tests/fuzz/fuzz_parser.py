"""Fuzz target: both request parsers and both chunked decoders, on any bytes.

For every input, each implementation either parses it or raises a
:class:`fastserve.errors.HTTPParseError` subclass whose ``status`` is one of
400, 413, 414, 431, 501, 505 - never another exception - and the compiled
``fastserve._parser`` and the pure-Python ``fastserve._parser_py`` agree on the
whole trace: every return value, the results after each complete head
(environ, method, version, framing flags), decoded body bytes, and the error's
class, status and reason (``str(exc)``). Two more properties ride along: the
outcome does not depend on how the bytes were split (docs/parsing.md, "Order of
checks"), and a request the parser accepts has a target werkzeug's access log
can read (``uri_to_iri(REQUEST_URI)``).

The first bytes of an input choose what is fuzzed (see :func:`check`), the
rest is the message. Used two ways:

* ``tests/fuzz/test_fuzz.py`` drives :func:`check` with hypothesis (part of
  the normal test run);
* run as a script it is an atheris (libFuzzer) target, seeded with
  :data:`SEEDS`::

      python tests/fuzz/fuzz_parser.py -max_total_time=60 [corpus_dir ...]

  libFuzzer's options pass through; without a corpus directory the seeds are
  written to a temporary one. It prints the executions and time at the end.
"""

from __future__ import annotations

import importlib
import inspect
import sys
import tempfile
from pathlib import Path
from types import ModuleType
from typing import Any

from werkzeug.urls import uri_to_iri

from fastserve import _abnf
from fastserve.errors import HTTPParseError

#: the statuses a refused request may get (docs/parsing.md)
STATUSES = frozenset({400, 413, 414, 431, 501, 505})

#: valid and borderline messages: the fuzzer's starting points (prefixed with a mode byte)
SEEDS: list[bytes] = [
    b"\x00GET / HTTP/1.1\r\nHost: example.com\r\n\r\n",
    b"\x00POST /a%20b?q=1#f HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\nhello",
    b"\x00PUT http://u:p@[::1]:8080/p?q HTTP/1.1\r\nTransfer-Encoding: gzip, chunked\r\n\r\n",
    b"\x00GET http://xn--bcher-kva.example/ HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
    b"\x00CONNECT h:443 HTTP/1.1\r\nHost: h:443\r\n\r\n",
    b"\x00OPTIONS * HTTP/1.1\r\nX: a\r\n\tfolded\r\nExpect: 100-continue\r\n\r\n",
    b"\x00\r\nGET //a//b HTTP/1.1\r\nContent-Length: 5, 5\r\nX_Y: z\r\n\r\nGET / HTTP/1.1\r\n\r\n",
    b"\x00GET / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n",
    # limits (64, 32, 256, 16), then two split points
    b"\x21\x40\x20\x40\x10\x30\xa0GET /x HTTP/1.1\r\nA: b\r\nC: d\r\n\r\n",
    b"\x02" + b'5;ext=1\r\nhello\r\n3;q="a b"\r\nabc\r\n0\r\nExpires: x\r\n\r\n',
    # chunked, trailer limits (16, 192, 2), then three split points
    b"\x33\x10\x30\x02\x05\x40\x90a\r\n0123456789\r\n0\r\nT: v\r\n w\r\n\r\nrest",
]

# what the mode byte selects (bit 1: chunked decoder; bit 0: the next bytes set limits)
_LIMIT_NAMES = {
    False: ("max_request_line", "max_field_line", "max_head", "max_fields"),
    True: ("max_field_line", "max_head", "max_fields"),
}
_WRAPS = (bytes, bytearray, memoryview)


def _implementations() -> tuple[ModuleType, ModuleType]:
    return importlib.import_module("fastserve._parser"), importlib.import_module(
        "fastserve._parser_py"
    )


def _error(exc: BaseException) -> tuple[str, type, int, str]:
    """The outcome of a refused input; anything but a proper HTTPParseError fails here."""
    if not isinstance(exc, HTTPParseError):
        raise exc
    assert exc.status in STATUSES, (type(exc), exc.status)
    assert type(exc).__module__ == "fastserve.errors", type(exc)
    return ("error", type(exc), exc.status, str(exc))


def _summary(parser: Any) -> tuple[Any, ...]:
    return (
        parser.environ,
        parser.method,
        parser.version,
        parser.content_length,
        parser.chunked,
        parser.keep_alive,
        parser.must_close,
        parser.expect_continue,
    )


def parse_trace(impl: ModuleType, pieces: list[bytes], limits: dict[str, int], wrap: Any) -> list:
    """Feed ``pieces`` as a server does (the buffer grows; after a complete head the rest
    starts the next request); record every return, each head's results, the first error."""
    parser = impl.RequestParser(**limits)
    trace: list[Any] = []
    buf = b""
    for piece in pieces:
        buf += piece
        while True:
            try:
                consumed = parser.parse(wrap(buf))
            except BaseException as exc:
                trace.append(_error(exc))
                return trace
            trace.append(consumed)
            if not consumed:
                break
            trace.append(_summary(parser))
            buf = buf[consumed:]
            if not buf:
                break
    return trace


def decode_trace(impl: ModuleType, pieces: list[bytes], limits: dict[str, int], wrap: Any) -> list:
    """Feed ``pieces`` to a ChunkedDecoder; unconsumed bytes come again with the next ones.
    The body bytes are joined, so the trace does not depend on where data was split."""
    decoder = impl.ChunkedDecoder(**limits)
    body = b""
    pending = b""
    trace: list[Any] = []
    for piece in pieces:
        pending += piece
        try:
            out, consumed = decoder.decode(wrap(pending))
        except BaseException as exc:
            trace.append(_error(exc))
            break
        assert type(out) is bytes and 0 <= consumed <= len(pending)
        body += out
        pending = pending[consumed:]
    return [*trace, body, decoder.done]


def _pieces(message: bytes, cuts: bytes) -> list[bytes]:
    """``message`` split at the offsets the ``cuts`` bytes give (none: whole)."""
    points = sorted({c * len(message) // 256 for c in cuts} - {0})
    bounds = [0, *points, len(message)]
    return [message[a:b] for a, b in zip(bounds, bounds[1:], strict=False) if b > a] or [b""]


def decode_input(data: bytes) -> tuple[bool, dict[str, int], Any, list[bytes]]:
    """What one fuzz input asks for: (chunked decoder?, limits, buffer type, pieces).

    ``data[0]`` is the mode: bit 1 chunked decoder (else request parser), bit 0 limits
    follow (one byte each, in the constructor's order), bits 2-3 the buffer type, bits 4-6
    how many split points follow (one byte each). The rest is the message.
    """
    mode, rest = data[0], data[1:]
    chunked = bool(mode & 2)
    limits: dict[str, int] = {}
    if mode & 1:
        names = _LIMIT_NAMES[chunked]
        # small limits, so that every limit is hit (x4 for the head / trailer section)
        limits = {
            name: value * 4 if name == "max_head" else value
            for name, value in zip(names, rest[: len(names)], strict=False)
        }
        rest = rest[len(names) :]
    wrap = _WRAPS[((mode >> 2) & 3) % 3]
    ncuts = (mode >> 4) & 7
    return chunked, limits, wrap, _pieces(rest[ncuts:], rest[:ncuts])


def run_seed(data: bytes) -> list[Any]:
    """The pure-Python trace of one input (non-empty)."""
    chunked, limits, wrap, pieces = decode_input(data)
    return (decode_trace if chunked else parse_trace)(_implementations()[1], pieces, limits, wrap)


def check(data: bytes) -> None:
    """Run both implementations on one fuzz input (see :func:`decode_input`) and assert
    every property of the module docstring."""
    if not data:
        return
    chunked, limits, wrap, pieces = decode_input(data)
    c_impl, py_impl = _implementations()
    run = decode_trace if chunked else parse_trace
    expected = run(py_impl, pieces, limits, wrap)
    got = run(c_impl, pieces, limits, wrap)
    assert got == expected, ("c and py differ", data, got, expected)
    whole = run(py_impl, [b"".join(pieces)], limits, bytes)
    if chunked:
        # split or whole: the same error, else the same body and done flag (body bytes
        # before an error depend on how much had arrived)
        if type(whole[0]) is tuple:
            assert expected[0] == whole[0], ("split changes the error", data, expected, whole)
        else:
            assert expected == whole, ("split changes the outcome", data, expected, whole)
    else:
        assert [s for s in expected if s != 0] == [s for s in whole if s != 0], (
            "split changes the outcome",
            data,
        )
        for step in expected:
            if type(step) is tuple and step and type(step[0]) is dict:
                uri_to_iri(step[0]["REQUEST_URI"])  # werkzeug's access log reads it


def main(argv: list[str]) -> None:  # pragma: no cover - run by CI as a script
    """atheris entry point; libFuzzer prints the figures ("Done N runs in T second(s)")."""
    import atheris

    # coverage feedback from the Python side: the twin, the shared rules, this target
    # (instrument_all() would take ~20 s over werkzeug and the rest of fastserve)
    for module in (_implementations()[1], _abnf, sys.modules[__name__]):
        for obj in vars(module).values():
            for func in [obj, *vars(obj).values()] if isinstance(obj, type) else [obj]:
                if inspect.isfunction(func) and func.__module__ == module.__name__:
                    atheris.instrument_func(func)
    args = list(argv)
    if not any(not a.startswith("-") for a in args[1:]):
        corpus = Path(tempfile.mkdtemp(prefix="fastserve-fuzz-"))
        for i, seed in enumerate(SEEDS):
            (corpus / f"seed-{i:02d}").write_bytes(seed)
        args.append(str(corpus))
    args.append("-print_final_stats=1")
    atheris.Setup(args, check)
    atheris.Fuzz()


if __name__ == "__main__":  # pragma: no cover
    main(sys.argv)
