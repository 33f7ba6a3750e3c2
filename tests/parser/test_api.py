"""The public surface: fastserve.parse_request, error statuses, parser objects, pipelining."""

from __future__ import annotations

from types import ModuleType

import pytest
from helpers import NEXT_REQUEST

import fastserve
import fastserve.parser
from fastserve import errors as e

STATUS = {
    e.HTTPParseError: 400,
    e.BadRequestError: 400,
    e.InvalidRequestLineError: 400,
    e.InvalidMethodError: 400,
    e.InvalidTargetError: 400,
    e.InvalidVersionError: 400,
    e.UnsupportedVersionError: 505,
    e.RequestLineTooLongError: 414,
    e.InvalidHeaderError: 400,
    e.DuplicateHeaderError: 400,
    e.HeaderFieldTooLargeError: 431,
    e.HeadTooLargeError: 431,
    e.TooManyHeadersError: 431,
    e.InvalidContentLengthError: 400,
    e.InvalidTransferEncodingError: 400,
    e.UnsupportedTransferEncodingError: 501,
    e.InvalidChunkError: 400,
    e.BodyTooLargeError: 413,
    e.IncompleteRequestError: 400,
}


def test_every_error_class_has_its_status() -> None:
    assert set(STATUS) == {getattr(e, name) for name in e.__all__}
    for cls, status in STATUS.items():
        assert cls.status == status, cls
        error = cls()
        assert issubclass(cls, fastserve.HTTPParseError)
        assert error.status == status and error.reason == cls.default_reason
        assert cls("why").reason == "why" and str(cls("why")) == "why"


@pytest.mark.parametrize(
    ("raw", "error"),
    [
        (b"\x16\x03\x01", e.InvalidMethodError),
        (b"GET / HTTP/2.0\r\n\r\n", e.UnsupportedVersionError),
        (b"GET /" + b"a" * 9000, e.RequestLineTooLongError),
        (b"GET / HTTP/1.1\r\nX: " + b"a" * 9000, e.HeaderFieldTooLargeError),
        (b"GET / HTTP/1.1\r\nTransfer-Encoding: br\r\n\r\n", e.UnsupportedTransferEncodingError),
        (b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", e.DuplicateHeaderError),
    ],
)
def test_parse_request_raises_with_status(
    parser_impl: ModuleType, raw: bytes, error: type[e.HTTPParseError]
) -> None:
    with pytest.raises(error) as info:
        fastserve.parse_request(raw)
    assert info.value.status == STATUS[error]
    with pytest.raises(error):
        parser_impl.RequestParser().parse(raw)


def test_parse_request_incomplete(parser_impl: ModuleType) -> None:
    for raw in (b"", b"GET / HTTP/1.1\r\n", b"GET / HTTP/1.1\r\nHost: x\r\n\r"):
        with pytest.raises(e.IncompleteRequestError) as info:
            fastserve.parse_request(raw)
        assert info.value.status == 400
        assert parser_impl.RequestParser().parse(raw) == 0


def test_parse_request_returns_head_entries(parser_impl: ModuleType) -> None:
    raw = (
        b"POST /p%20q?x=1 HTTP/1.1\r\nHost: h\r\nContent-Type: text/plain\r\n"
        b"Content-Length: 3\r\nX-A: 1\r\n\r\nabc" + NEXT_REQUEST
    )
    env = fastserve.parse_request(raw)
    assert env == {
        "REQUEST_METHOD": "POST",
        "SCRIPT_NAME": "",
        "PATH_INFO": "/p q",
        "QUERY_STRING": "x=1",
        "REQUEST_URI": "/p%20q?x=1",
        "RAW_URI": "/p%20q?x=1",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "HTTP_HOST": "h",
        "CONTENT_TYPE": "text/plain",
        "CONTENT_LENGTH": "3",
        "HTTP_X_A": "1",
    }
    parser = parser_impl.RequestParser()
    assert parser.parse(raw) == raw.index(b"abc")
    assert parser.environ == env


def test_module_api(parser_impl: ModuleType) -> None:
    for name in ("RequestParser", "ChunkedDecoder", "serialize_response_head"):
        assert callable(getattr(parser_impl, name))
    assert fastserve.parser.PARSER_IMPL in ("c", "py")
    assert fastserve.parser.RequestParserPy is fastserve._parser_py.RequestParser


def test_constructor_limits_by_keyword(parser_impl: ModuleType) -> None:
    parser = parser_impl.RequestParser(
        max_request_line=1, max_field_line=2, max_head=3, max_fields=4
    )
    assert (parser.max_request_line, parser.max_field_line, parser.max_head, parser.max_fields) == (
        1,
        2,
        3,
        4,
    )
    decoder = parser_impl.ChunkedDecoder(max_field_line=5, max_head=6, max_fields=7)
    assert (decoder.max_field_line, decoder.max_head, decoder.max_fields) == (5, 6, 7)
    assert decoder.done is False


def test_constructor_limits_in_documented_order(parser_impl: ModuleType) -> None:
    """Positional order: max_request_line, max_field_line, max_head, max_fields."""
    parser = parser_impl.RequestParser(1, 2, 3, 4)
    assert (parser.max_request_line, parser.max_field_line, parser.max_head, parser.max_fields) == (
        1,
        2,
        3,
        4,
    )
    decoder = parser_impl.ChunkedDecoder(5, 6, 7)
    assert (decoder.max_field_line, decoder.max_head, decoder.max_fields) == (5, 6, 7)


def test_pipelined_requests_and_bodies_in_one_buffer(parser_impl: ModuleType) -> None:
    """A server loop: parse a head, take its body, parse the next head from the rest."""
    buffer = (
        b"GET /1 HTTP/1.1\r\nHost: h\r\n\r\n"
        b"POST /2 HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello"
        b"PUT /3 HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\nT: x\r\n\r\n"
        b"DELETE /4 HTTP/1.0\r\nConnection: keep-alive\r\n\r\n"
        b"GET /5 HTTP/1.1\r\nConnection: close\r\n\r\n"
    )
    parser = parser_impl.RequestParser()
    seen = []
    view = buffer
    while view:
        n = parser.parse(view)
        assert n > 0
        view = view[n:]
        if parser.chunked:
            decoder = parser_impl.ChunkedDecoder()
            body, used = decoder.decode(view)
            assert decoder.done
            view = view[used:]
        else:
            body, view = view[: parser.content_length], view[parser.content_length :]
        seen.append((parser.method, parser.environ["PATH_INFO"], body, parser.keep_alive))
    assert seen == [
        ("GET", "/1", b"", True),
        ("POST", "/2", b"hello", True),
        ("PUT", "/3", b"abc", True),
        ("DELETE", "/4", b"", True),
        ("GET", "/5", b"", False),
    ]


@pytest.mark.parametrize("kind", [bytes, bytearray, memoryview])
def test_accepts_bytes_like(parser_impl: ModuleType, kind: type) -> None:
    raw = b"GET /x HTTP/1.1\r\nHost: h\r\n\r\n"
    parser = parser_impl.RequestParser()
    assert parser.parse(kind(raw[:10])) == 0
    assert parser.parse(kind(raw)) == len(raw)
    assert parser.environ["PATH_INFO"] == "/x"
    decoder = parser_impl.ChunkedDecoder()
    assert decoder.decode(kind(b"2\r\nab\r\n0\r\n\r\n")) == (b"ab", 12)


def test_reset_forgets_a_partial_head(parser_impl: ModuleType) -> None:
    parser = parser_impl.RequestParser()
    assert parser.parse(b"GET /old HTTP/1.1\r\nX: 1\r\n") == 0
    parser.reset()
    raw = b"GET /new HTTP/1.1\r\n\r\n"
    assert parser.parse(raw) == len(raw)
    assert parser.environ["PATH_INFO"] == "/new" and "HTTP_X" not in parser.environ


def test_reset_after_error_allows_reuse(parser_impl: ModuleType) -> None:
    parser = parser_impl.RequestParser()
    with pytest.raises(e.InvalidMethodError):
        parser.parse(b"\x16\x03")
    parser.reset()
    raw = b"GET / HTTP/1.1\r\n\r\n"
    assert parser.parse(raw) == len(raw)


def test_results_stay_until_next_parse(parser_impl: ModuleType) -> None:
    parser = parser_impl.RequestParser()
    raw = b"POST / HTTP/1.1\r\nContent-Length: 2\r\nExpect: 100-continue\r\n\r\n"
    assert parser.parse(raw) == len(raw)
    assert (parser.method, parser.content_length, parser.expect_continue) == ("POST", 2, True)
    assert parser.parse(b"GET / HT") == 0  # next request still partial
    raw2 = b"GET / HTTP/1.1\r\n\r\n"
    assert parser.parse(raw2) == len(raw2)
    assert (parser.method, parser.content_length, parser.expect_continue) == ("GET", 0, False)
