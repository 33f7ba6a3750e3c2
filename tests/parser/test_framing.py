"""Message framing (RFC 9112 §6): Content-Length, Transfer-Encoding, smuggling, persistence."""

from __future__ import annotations

from types import ModuleType

import pytest
from helpers import feed_three_ways, raises_three_ways

from fastserve import errors as e


def post(*fields: bytes, version: bytes = b"HTTP/1.1") -> bytes:
    return (
        b"POST /p " + version + b"\r\nHost: h\r\n" + b"".join(f + b"\r\n" for f in fields) + b"\r\n"
    )


def framing(parser: object) -> tuple[int, bool, bool, bool]:
    return (
        parser.content_length,  # type: ignore[attr-defined]
        parser.chunked,  # type: ignore[attr-defined]
        parser.keep_alive,  # type: ignore[attr-defined]
        parser.must_close,  # type: ignore[attr-defined]
    )


def test_no_body(parser_impl: ModuleType) -> None:
    parser = feed_three_ways(parser_impl, post())[0]
    assert framing(parser) == (0, False, True, False)
    assert "CONTENT_LENGTH" not in parser.environ


@pytest.mark.parametrize(
    ("fields", "length"),
    [
        ((b"Content-Length: 0",), 0),
        ((b"Content-Length: 42",), 42),
        ((b"Content-Length: 007",), 7),
        ((b"Content-Length:\t5\t",), 5),
        ((b"Content-Length: 5", b"Content-Length: 5"), 5),
        ((b"Content-Length: 5, 5",), 5),
        ((b"Content-Length: 5,5 , 5", b"content-length: 05"), 5),
    ],
    ids=["zero", "plain", "leading_zeros", "ows", "repeated_lines", "list", "list_and_lines"],
)
def test_content_length(parser_impl: ModuleType, fields: tuple[bytes, ...], length: int) -> None:
    """RFC 9110 §8.6, RFC 9112 §6.3: identical repeats and lists count once."""
    parser = feed_three_ways(parser_impl, post(*fields))[0]
    assert framing(parser) == (length, False, True, False)


def test_content_length_in_field_with_underscore_is_not_framing(parser_impl: ModuleType) -> None:
    parser = feed_three_ways(parser_impl, post(b"Content_Length: 5"))[0]
    assert parser.content_length == 0
    assert "CONTENT_LENGTH" not in parser.environ


@pytest.mark.parametrize(
    "value",
    [
        b"chunked",
        b"CHUNKED",
        b"Chunked",
        b" chunked ",
        b"gzip, chunked",
        b"deflate,chunked",
        b"identity, chunked",
        b"x-gzip ,compress, chunked",
        b", chunked,",
        b"GZIP, Chunked",
    ],
)
def test_transfer_encoding_chunked(parser_impl: ModuleType, value: bytes) -> None:
    """RFC 9112 §6.1: known codings, chunked last and once."""
    parser = feed_three_ways(parser_impl, post(b"Transfer-Encoding: " + value))[0]
    assert framing(parser) == (-1, True, True, False)


def test_transfer_encoding_over_several_lines(parser_impl: ModuleType) -> None:
    parser = feed_three_ways(
        parser_impl, post(b"Transfer-Encoding: gzip", b"Transfer-Encoding: chunked")
    )[0]
    assert framing(parser) == (-1, True, True, False)
    assert parser.environ["HTTP_TRANSFER_ENCODING"] == "gzip,chunked"


def test_unknown_coding_is_501_even_when_chunked_misplaced(parser_impl: ModuleType) -> None:
    """The unknown-coding check comes first."""
    raises_three_ways(
        parser_impl,
        post(b"Transfer-Encoding: chunked, br, chunked"),
        e.UnsupportedTransferEncodingError,
    )


def test_te_and_cl_framed_by_te_and_closed(parser_impl: ModuleType) -> None:
    """RFC 9112 §6.3: TE overrides CL; the connection must close after the response."""
    parser = feed_three_ways(
        parser_impl, post(b"Content-Length: 5", b"Transfer-Encoding: chunked")
    )[0]
    assert framing(parser) == (-1, True, False, True)


def test_te_and_invalid_cl_not_checked_and_passed_through(parser_impl: ModuleType) -> None:
    """werkzeug's suite sends ``Content-Length: invalid`` with chunked and expects it back."""
    parser = feed_three_ways(
        parser_impl, post(b"Transfer-Encoding: chunked", b"Content-Length: invalid ")
    )[0]
    assert framing(parser) == (-1, True, False, True)
    assert parser.environ["CONTENT_LENGTH"] == "invalid "


def test_te_with_several_cl_passes_the_last(parser_impl: ModuleType) -> None:
    parser = feed_three_ways(
        parser_impl,
        post(b"Content-Length: 1", b"Transfer-Encoding: chunked", b"Content-Length: 2, x"),
    )[0]
    assert parser.environ["CONTENT_LENGTH"] == "2, x"


def test_te_in_http10_must_close(parser_impl: ModuleType) -> None:
    """RFC 9112 §6.1: chunked in an HTTP/1.0 request means faulty framing: close afterwards."""
    parser = feed_three_ways(
        parser_impl,
        post(b"Transfer-Encoding: chunked", b"Connection: keep-alive", version=b"HTTP/1.0"),
    )[0]
    assert framing(parser) == (-1, True, False, True)


@pytest.mark.parametrize(
    ("version", "connection", "keep_alive"),
    [
        (b"HTTP/1.1", None, True),
        (b"HTTP/1.1", b"close", False),
        (b"HTTP/1.1", b"Close", False),
        (b"HTTP/1.1", b"keep-alive, CLOSE ", False),
        (b"HTTP/1.1", b"upgrade", True),
        (b"HTTP/1.1", b"closed", True),
        (b"HTTP/1.0", None, False),
        (b"HTTP/1.0", b"keep-alive", True),
        (b"HTTP/1.0", b"Keep-Alive", True),
        (b"HTTP/1.0", b"foo,  keep-alive ", True),
        (b"HTTP/1.0", b"keep-alive, close", False),
        (b"HTTP/1.0", b"close", False),
    ],
)
def test_keep_alive(
    parser_impl: ModuleType, version: bytes, connection: bytes | None, keep_alive: bool
) -> None:
    """RFC 9112 §9.3."""
    fields = (b"Connection: " + connection,) if connection is not None else ()
    parser = feed_three_ways(parser_impl, post(*fields, version=version))[0]
    assert parser.keep_alive is keep_alive
    assert parser.must_close is False


def test_connection_tokens_across_lines(parser_impl: ModuleType) -> None:
    parser = feed_three_ways(parser_impl, post(b"Connection: upgrade", b"Connection: close"))[0]
    assert parser.keep_alive is False


@pytest.mark.parametrize(
    "fields",
    [
        (b"Content-Length: 5", b"Content-Length: 6"),
        (b"Content-Length: 5, 6",),
        (b"Content-Length: 5", b"Content-Length:"),
        (b"Content-Length: 1_000",),
        (b"Content-Length: 5 5",),
        (b"Content-Length: \xbd",),
    ],
    ids=[
        "differing_lines",
        "differing_list",
        "empty_repeat",
        "underscore",
        "inner_space",
        "obs_text",
    ],
)
def test_smuggling_content_length_refused(
    parser_impl: ModuleType, fields: tuple[bytes, ...]
) -> None:
    raises_three_ways(parser_impl, post(*fields), e.InvalidContentLengthError)


@pytest.mark.parametrize(
    ("value", "error"),
    [
        (b"chunked, identity", e.InvalidTransferEncodingError),
        (b"gzip", e.InvalidTransferEncodingError),
        (b"chunked,chunked", e.InvalidTransferEncodingError),
        (b"\tchunked\t,\tchunked", e.InvalidTransferEncodingError),
        (b"chunked\x80", e.UnsupportedTransferEncodingError),
        (b"xchunked", e.UnsupportedTransferEncodingError),
        (b"chunked chunked", e.UnsupportedTransferEncodingError),
    ],
)
def test_smuggling_transfer_encoding_refused(
    parser_impl: ModuleType, value: bytes, error: type[Exception]
) -> None:
    raises_three_ways(
        parser_impl, post(b"Transfer-Encoding: " + value, b"Content-Length: 3"), error
    )


def test_body_and_next_request_follow_the_head(parser_impl: ModuleType) -> None:
    """The head's length tells the caller where the body starts; the body is not consumed."""
    head = post(b"Content-Length: 5")
    data = head + b"hello" + b"GET /second HTTP/1.1\r\n\r\n"
    parser = parser_impl.RequestParser()
    n = parser.parse(data)
    assert n == len(head)
    assert data[n : n + parser.content_length] == b"hello"
    rest = data[n + parser.content_length :]
    assert parser.parse(rest) == len(rest)
    assert parser.environ["PATH_INFO"] == "/second"
    assert parser.content_length == 0
