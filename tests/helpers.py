"""Test helpers shared by the parser tests."""

from __future__ import annotations

from types import ModuleType
from typing import Any

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


def raises_three_ways(impl: ModuleType, data: bytes, error: type[Exception], **limits: int) -> None:
    """``data`` must raise ``error`` fed whole, byte by byte, and with more bytes behind it."""
    import pytest

    with pytest.raises(error):
        impl.RequestParser(**limits).parse(data)
    parser = impl.RequestParser(**limits)
    buf = bytearray()
    with pytest.raises(error):
        for i in range(len(data)):
            buf += data[i : i + 1]
            parser.parse(buf)
        # the defect may only be detectable once the head is complete
        parser.parse(buf + b"\r\n\r\n" if not bytes(buf).endswith(b"\r\n\r\n") else buf)
    with pytest.raises(error):
        impl.RequestParser(**limits).parse(data + NEXT_REQUEST)
