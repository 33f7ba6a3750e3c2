"""Test helpers shared by the parser tests.

The primitive is h11's idea: every request is fed three ways (whole, byte by
byte, with the next request behind it) and all three must agree - on the
result, or on the exact error class.
"""

from __future__ import annotations

from types import ModuleType
from typing import Any

import pytest

NEXT_REQUEST = b"GET /next HTTP/1.1\r\nHost: next\r\n\r\n"


def parse_whole(impl: ModuleType, data: bytes, **limits: int) -> Any:
    """Parse ``data`` in one call; return the parser (its results are set)."""
    parser = impl.RequestParser(**limits)
    consumed = parser.parse(data)
    assert consumed == len(data), (consumed, len(data))
    return parser


def feed_three_ways(impl: ModuleType, data: bytes, **limits: int) -> list[Any]:
    """Feed a complete request head three ways and check they agree (h11's ``tr``).

    1. whole: ``parse`` returns ``len(data)``;
    2. byte by byte: ``parse`` returns 0 until the last byte, then ``len(data)``;
    3. with the next request behind it: returns ``len(data)``, leaving the rest.

    Returns the three parsers; their results were checked equal.
    """
    whole = parse_whole(impl, data, **limits)

    trickled = impl.RequestParser(**limits)
    buf = bytearray()
    consumed = 0
    for i in range(len(data)):
        buf += data[i : i + 1]
        consumed = trickled.parse(buf)
        if i < len(data) - 1:
            assert consumed == 0, f"head reported complete after {i + 1} of {len(data)} bytes"
    assert consumed == len(data)

    pipelined = impl.RequestParser(**limits)
    assert pipelined.parse(data + NEXT_REQUEST) == len(data)

    parsers = [whole, trickled, pipelined]
    for other in parsers[1:]:
        assert summary(other) == summary(whole)
    return parsers


def environ_of(impl: ModuleType, data: bytes, **limits: int) -> dict[str, Any]:
    """The environ of a complete head, after checking all three feeds agree."""
    return feed_three_ways(impl, data, **limits)[0].environ


def summary(parser: Any) -> dict[str, Any]:
    """Every result attribute of a parser, for comparisons."""
    return {
        "environ": parser.environ,
        "method": parser.method,
        "version": parser.version,
        "content_length": parser.content_length,
        "chunked": parser.chunked,
        "keep_alive": parser.keep_alive,
        "must_close": parser.must_close,
        "expect_continue": parser.expect_continue,
    }


def raises_three_ways(impl: ModuleType, data: bytes, error: type[Exception], **limits: int) -> int:
    """``data`` must raise exactly ``error`` fed whole, byte by byte, and with more bytes behind.

    Byte by byte, no call may report a complete head before the error.
    Returns how many bytes had been fed when the byte-by-byte feed raised
    (tests use it to check that a defect is refused "at once").
    """
    with pytest.raises(error) as whole:
        impl.RequestParser(**limits).parse(data)
    assert type(whole.value) is error, f"whole: {whole.value!r}"

    parser = impl.RequestParser(**limits)
    buf = bytearray()
    fed = 0
    with pytest.raises(error) as trickled:
        for fed in range(1, len(data) + 1):
            buf += data[fed - 1 : fed]
            assert parser.parse(buf) == 0, f"head complete after {fed} bytes, no error"
    assert type(trickled.value) is error, f"byte by byte: {trickled.value!r}"

    with pytest.raises(error) as pipelined:
        impl.RequestParser(**limits).parse(data + NEXT_REQUEST)
    assert type(pipelined.value) is error, f"pipelined: {pipelined.value!r}"
    return fed


def decode_all(decoder: Any, data: bytes, step: int | None = None) -> tuple[bytes, int]:
    """Feed ``data`` to a ChunkedDecoder the way a server does: ``step`` bytes
    arrive at a time (all at once when None), unconsumed bytes are passed again
    with the next ones. Returns (decoded body, total bytes consumed)."""
    step = step or len(data) or 1
    body = bytearray()
    pending = b""
    consumed = 0
    for start in range(0, len(data), step):
        pending += data[start : start + step]
        out, n = decoder.decode(pending)
        assert 0 <= n <= len(pending)
        body += out
        consumed += n
        pending = pending[n:]
        if decoder.done:
            break
    return bytes(body), consumed


def decode_three_ways(impl: ModuleType, data: bytes, expected: bytes, **limits: int) -> None:
    """A complete chunked body decodes to ``expected`` whole, byte by byte, in
    3-byte pieces, and with the next request behind it (which stays unconsumed)."""
    for step in (None, 1, 3):
        decoder = impl.ChunkedDecoder(**limits)
        assert decode_all(decoder, data, step) == (expected, len(data)), f"step={step}"
        assert decoder.done
    decoder = impl.ChunkedDecoder(**limits)
    assert decode_all(decoder, data + NEXT_REQUEST) == (expected, len(data))
    assert decoder.done


def decode_raises_three_ways(
    impl: ModuleType, data: bytes, error: type[Exception], **limits: int
) -> None:
    """A chunked body must raise exactly ``error`` whole, byte by byte and in 3-byte pieces."""
    for step in (None, 1, 3):
        with pytest.raises(error) as info:
            decode_all(impl.ChunkedDecoder(**limits), data, step)
        assert type(info.value) is error, f"step={step}: {info.value!r}"
