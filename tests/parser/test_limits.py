"""Limits (issue 2's table): exactly at the limit accepted, one byte or line over refused.

| input                          | accepted up to | beyond |
| request line                   | 8190 bytes     | 414    |
| one field line (trailers too)  | 8190 bytes     | 431    |
| whole head (trailers too)      | 65536 bytes    | 431    |
| field lines (trailers too)     | 100            | 431    |
| Content-Length / chunk size    | 63 bits        | 400    |

CRLFs are not counted. (The 413 body limit belongs to the server, not the parser.)
"""

from __future__ import annotations

from types import ModuleType

import pytest
from helpers import decode_raises_three_ways, decode_three_ways, feed_three_ways, raises_three_ways

from fastserve import _abnf
from fastserve import errors as e

REQUEST_LINE = b"GET / HTTP/1.1"


def request_line_of(length: int) -> bytes:
    """A valid request line of exactly ``length`` bytes (CRLF excluded)."""
    return b"GET /" + b"a" * (length - len(b"GET / HTTP/1.1")) + b" HTTP/1.1"


def field_of(length: int, name: bytes = b"X") -> bytes:
    """A valid field line of exactly ``length`` bytes (CRLF excluded)."""
    return name + b": " + b"v" * (length - len(name) - 2)


def head(*fields: bytes, request_line: bytes = REQUEST_LINE) -> bytes:
    return request_line + b"\r\n" + b"".join(f + b"\r\n" for f in fields) + b"\r\n"


def fields_totalling(total: int) -> list[bytes]:
    """Field lines whose lengths add up to ``total``, each at most 8000 bytes."""
    lines = []
    while total:
        size = min(total, 8000)
        if total - size == 1:  # keep every line at least 2 bytes ("X:")
            size -= 1
        lines.append(field_of(size, b"X%d" % len(lines)) if size >= 5 else b"Y:".ljust(size, b"y"))
        total -= size
    return lines


def test_defaults_match_the_issue_table(parser_impl: ModuleType) -> None:
    parser = parser_impl.RequestParser()
    assert (parser.max_request_line, parser.max_field_line, parser.max_head, parser.max_fields) == (
        8190,
        8190,
        65536,
        100,
    )
    decoder = parser_impl.ChunkedDecoder()
    assert (decoder.max_field_line, decoder.max_head, decoder.max_fields) == (8190, 65536, 100)
    assert _abnf.MAX_BODY_LENGTH == 2**63 - 1


# -- request line: RFC 9112 §3 (at least 8000 octets must be supported)


def test_request_line_at_limit_accepted(parser_impl: ModuleType) -> None:
    line = request_line_of(8190)
    assert len(line) == 8190
    feed_three_ways(parser_impl, head(request_line=line))


def test_request_line_over_limit_refused(parser_impl: ModuleType) -> None:
    raw = head(request_line=request_line_of(8191))
    error = e.RequestLineTooLongError
    assert raises_three_ways(parser_impl, raw, error) == 8191
    with pytest.raises(error) as info:
        parser_impl.RequestParser().parse(raw)
    assert info.value.status == 414


def test_partial_request_line_refused_as_soon_as_too_long(parser_impl: ModuleType) -> None:
    parser = parser_impl.RequestParser()
    data = b"GET /" + b"a" * 8185
    assert parser.parse(data) == 0
    assert parser.parse(data + b"\r") == 0  # the CR may end the line: not counted yet
    with pytest.raises(e.RequestLineTooLongError):
        parser.parse(data + b"a")


def test_cr_right_at_the_limit_ends_a_line_that_fits(parser_impl: ModuleType) -> None:
    line = request_line_of(8190)
    parser = parser_impl.RequestParser()
    assert parser.parse(line + b"\r") == 0
    assert parser.parse(line + b"\r\n\r\n") == 8194


def test_custom_request_line_limit(parser_impl: ModuleType) -> None:
    feed_three_ways(parser_impl, head(request_line=request_line_of(20)), max_request_line=20)
    raises_three_ways(
        parser_impl,
        head(request_line=request_line_of(21)),
        e.RequestLineTooLongError,
        max_request_line=20,
    )


# -- one field line: RFC 6585 §5


def test_field_line_at_limit_accepted(parser_impl: ModuleType) -> None:
    feed_three_ways(parser_impl, head(field_of(8190)))


def test_field_line_over_limit_refused(parser_impl: ModuleType) -> None:
    raw = head(field_of(8191))
    assert (
        raises_three_ways(parser_impl, raw, e.HeaderFieldTooLargeError)
        == len(REQUEST_LINE) + 2 + 8191
    )
    with pytest.raises(e.HeaderFieldTooLargeError) as info:
        parser_impl.RequestParser().parse(raw)
    assert info.value.status == 431


def test_field_line_limit_applies_to_obs_fold_lines(parser_impl: ModuleType) -> None:
    feed_three_ways(parser_impl, head(b"X: a", b" " + b"b" * 8189))
    raises_three_ways(parser_impl, head(b"X: a", b" " + b"b" * 8190), e.HeaderFieldTooLargeError)


def test_custom_field_line_limit(parser_impl: ModuleType) -> None:
    feed_three_ways(parser_impl, head(field_of(10)), max_field_line=10)
    raises_three_ways(
        parser_impl, head(field_of(11)), e.HeaderFieldTooLargeError, max_field_line=10
    )


# -- number of field lines


def test_field_count_at_limit_accepted(parser_impl: ModuleType) -> None:
    feed_three_ways(parser_impl, head(*[b"X: a"] * 100))


def test_field_count_over_limit_refused(parser_impl: ModuleType) -> None:
    raw = head(*[b"X: a"] * 101)
    raises_three_ways(parser_impl, raw, e.TooManyHeadersError)
    with pytest.raises(e.TooManyHeadersError) as info:
        parser_impl.RequestParser().parse(raw)
    assert info.value.status == 431


def test_custom_field_count_limit(parser_impl: ModuleType) -> None:
    feed_three_ways(parser_impl, head(b"A: 1", b"B: 2"), max_fields=2)
    raises_three_ways(
        parser_impl, head(b"A: 1", b"B: 2", b"C: 3"), e.TooManyHeadersError, max_fields=2
    )


def test_dropped_underscore_fields_still_count(parser_impl: ModuleType) -> None:
    raises_three_ways(
        parser_impl, head(b"A_1: 1", b"B_2: 2", b"C_3: 3"), e.TooManyHeadersError, max_fields=2
    )


# -- whole head


def test_head_at_limit_accepted(parser_impl: ModuleType) -> None:
    fields = fields_totalling(65536 - len(REQUEST_LINE))
    assert len(REQUEST_LINE) + sum(map(len, fields)) == 65536
    feed_three_ways(parser_impl, head(*fields))


def test_head_over_limit_refused(parser_impl: ModuleType) -> None:
    raw = head(*fields_totalling(65537 - len(REQUEST_LINE)))
    raises_three_ways(parser_impl, raw, e.HeadTooLargeError)
    with pytest.raises(e.HeadTooLargeError) as info:
        parser_impl.RequestParser().parse(raw)
    assert info.value.status == 431


def test_empty_lines_before_request_count_two_bytes_each(parser_impl: ModuleType) -> None:
    fields = fields_totalling(65536 - len(REQUEST_LINE) - 4)
    feed_three_ways(parser_impl, b"\r\n\r\n" + head(*fields))
    raises_three_ways(parser_impl, b"\r\n\r\n\r\n" + head(*fields), e.HeadTooLargeError)


def test_endless_empty_lines_refused(parser_impl: ModuleType) -> None:
    """Never a hang: 32768 empty lines are 65536 bytes, one more is over."""
    parser = parser_impl.RequestParser()
    assert parser.parse(b"\r\n" * 32768) == 0
    with pytest.raises(e.HeadTooLargeError):
        parser.parse(b"\r\n" * 32769)


def test_custom_head_limit(parser_impl: ModuleType) -> None:
    # request line 14 + "A: 1" 4 + "B: 22" 5 = 23
    feed_three_ways(parser_impl, head(b"A: 1", b"B: 22"), max_head=23)
    raises_three_ways(parser_impl, head(b"A: 1", b"B: 223"), e.HeadTooLargeError, max_head=23)
    raises_three_ways(parser_impl, head(), e.HeadTooLargeError, max_head=13)


def test_line_limit_reported_before_head_limit(parser_impl: ModuleType) -> None:
    """The line limit is enforced on the partial line, the head limit when it completes."""
    raises_three_ways(
        parser_impl, head(field_of(30)), e.HeaderFieldTooLargeError, max_field_line=20, max_head=25
    )
    raises_three_ways(
        parser_impl, head(field_of(20)), e.HeadTooLargeError, max_field_line=20, max_head=25
    )


def test_limits_are_writable_attributes(parser_impl: ModuleType) -> None:
    parser = parser_impl.RequestParser()
    parser.max_request_line = 20
    parser.max_field_line = 10
    parser.max_head = 1000
    parser.max_fields = 1
    assert parser.parse(head(field_of(10), request_line=request_line_of(20))) > 0
    with pytest.raises(e.TooManyHeadersError):
        parser.parse(head(b"A: 1", b"B: 2"))
    parser.reset()
    with pytest.raises(e.RequestLineTooLongError):
        parser.parse(request_line_of(21))
    decoder = parser_impl.ChunkedDecoder()
    decoder.max_field_line = 3
    with pytest.raises(e.HeaderFieldTooLargeError):
        decoder.decode(b"0001")


# -- Content-Length and chunk size: 63 bits (RFC 9110 §8.6, RFC 9112 §7.1)


def test_content_length_at_63_bits_accepted(parser_impl: ModuleType) -> None:
    parser = feed_three_ways(parser_impl, head(b"Content-Length: 9223372036854775807"))[0]
    assert parser.content_length == 2**63 - 1


def test_content_length_over_63_bits_refused(parser_impl: ModuleType) -> None:
    raw = head(b"Content-Length: 9223372036854775808")
    raises_three_ways(parser_impl, raw, e.InvalidContentLengthError)
    raises_three_ways(
        parser_impl, head(b"Content-Length: 99999999999999999999999"), e.InvalidContentLengthError
    )
    with pytest.raises(e.InvalidContentLengthError) as info:
        parser_impl.RequestParser().parse(raw)
    assert info.value.status == 400


def test_content_length_leading_zeros_do_not_overflow(parser_impl: ModuleType) -> None:
    parser = feed_three_ways(
        parser_impl, head(b"Content-Length: 000000000000000000000009223372036854775807")
    )[0]
    assert parser.content_length == 2**63 - 1


def test_chunk_size_at_63_bits_accepted_over_refused(parser_impl: ModuleType) -> None:
    decoder = parser_impl.ChunkedDecoder()
    assert decoder.decode(b"7FFFFFFFFFFFFFFF\r\n") == (b"", 18)
    decode_raises_three_ways(parser_impl, b"8000000000000000\r\n", e.InvalidChunkError)
    decode_raises_three_ways(parser_impl, b"FFFFFFFFFFFFFFFFF\r\n", e.InvalidChunkError)


# -- trailers: same limits as the head (RFC 9112 §7.1.2)


def trailers(*lines: bytes) -> bytes:
    return b"0\r\n" + b"".join(line + b"\r\n" for line in lines) + b"\r\n"


def test_chunk_size_line_at_limit_accepted(parser_impl: ModuleType) -> None:
    line = b"1;" + b"e" * 8188
    decode_three_ways(parser_impl, line + b"\r\nx\r\n0\r\n\r\n", b"x")


def test_chunk_size_line_over_limit_refused(parser_impl: ModuleType) -> None:
    line = b"1;" + b"e" * 8189
    decode_raises_three_ways(parser_impl, line + b"\r\nx\r\n0\r\n\r\n", e.HeaderFieldTooLargeError)
    decoder = parser_impl.ChunkedDecoder()
    assert decoder.decode(line[:-1]) == (b"", 0)
    assert decoder.decode(line[:-1] + b"\r") == (b"", 0)
    with pytest.raises(e.HeaderFieldTooLargeError):
        decoder.decode(line)


def test_trailer_line_at_limit_accepted(parser_impl: ModuleType) -> None:
    decode_three_ways(parser_impl, trailers(field_of(8190)), b"")


def test_trailer_line_over_limit_refused(parser_impl: ModuleType) -> None:
    decode_raises_three_ways(parser_impl, trailers(field_of(8191)), e.HeaderFieldTooLargeError)


def test_trailer_count_at_limit_accepted(parser_impl: ModuleType) -> None:
    decode_three_ways(parser_impl, trailers(*[b"T: 1"] * 100), b"")


def test_trailer_count_over_limit_refused(parser_impl: ModuleType) -> None:
    decode_raises_three_ways(parser_impl, trailers(*[b"T: 1"] * 101), e.TooManyHeadersError)


def test_trailer_section_at_limit_accepted(parser_impl: ModuleType) -> None:
    decode_three_ways(parser_impl, trailers(*fields_totalling(65536)), b"")


def test_trailer_section_over_limit_refused(parser_impl: ModuleType) -> None:
    decode_raises_three_ways(parser_impl, trailers(*fields_totalling(65537)), e.HeadTooLargeError)


def test_custom_trailer_limits(parser_impl: ModuleType) -> None:
    decode_three_ways(
        parser_impl, trailers(b"A: 1", b"B: 2"), b"", max_fields=2, max_head=8, max_field_line=4
    )
    decode_raises_three_ways(
        parser_impl, trailers(b"A: 1", b"B: 2", b"C: 3"), e.TooManyHeadersError, max_fields=2
    )
    decode_raises_three_ways(
        parser_impl, trailers(b"A: 1", b"B: 22"), e.HeadTooLargeError, max_head=8
    )
    decode_raises_three_ways(
        parser_impl, trailers(b"A: 12"), e.HeaderFieldTooLargeError, max_field_line=4
    )


def test_head_limit_checked_before_field_count(parser_impl: ModuleType) -> None:
    """docs/parsing.md, order of checks: bare LF, max_head, max_fields, content."""
    raw = head(b"A: 1", b"B: 2", b"C: 3")
    raises_three_ways(parser_impl, raw, e.HeadTooLargeError, max_fields=2, max_head=20)
    raises_three_ways(
        parser_impl, head(b"A: 1", b"B: 2", b"C 3"), e.TooManyHeadersError, max_fields=2
    )


def test_trailer_limit_checked_before_trailer_count(parser_impl: ModuleType) -> None:
    raw = trailers(b"A: 1", b"B: 2", b"C: 3")
    decode_raises_three_ways(parser_impl, raw, e.HeadTooLargeError, max_fields=2, max_head=10)
    decode_raises_three_ways(
        parser_impl, trailers(b"A: 1", b"B: 2", b"C 3"), e.TooManyHeadersError, max_fields=2
    )
