"""Malformed requests: each is refused with one exact error class and status.

One row per defect, named after it. Each row is fed whole, byte by byte and
with the next request behind it (``raises_three_ways``), and all three must
raise the same class (docs/parsing.md, "Order of checks").
"""

from __future__ import annotations

from types import ModuleType

import pytest
from helpers import raises_three_ways

from fastserve import errors as e

GET = b"GET / HTTP/1.1\r\n"
END = b"\r\n"


def head(*fields: bytes) -> bytes:
    """A GET head with the given raw field lines (CRLF appended to each)."""
    return GET + b"".join(f + b"\r\n" for f in fields) + END


def line(request_line: bytes) -> bytes:
    return request_line + b"\r\nHost: x\r\n\r\n"


CASES: list[tuple[str, bytes, type[e.HTTPParseError], int]] = [
    # -- method (RFC 9110 §9.1, §5.6.2): checked byte by byte as it arrives
    (
        "tls_client_hello",
        b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03",
        e.InvalidMethodError,
        400,
    ),
    ("sp_before_method", line(b" GET / HTTP/1.1"), e.InvalidMethodError, 400),
    ("ctl_in_method", line(b"G\x01T / HTTP/1.1"), e.InvalidMethodError, 400),
    ("nul_in_method", line(b"GE\x00T / HTTP/1.1"), e.InvalidMethodError, 400),
    ("slash_in_method", line(b"GE/T / HTTP/1.1"), e.InvalidMethodError, 400),
    ("colon_in_method", line(b"GET: / HTTP/1.1"), e.InvalidMethodError, 400),
    ("non_ascii_method", line(b"G\xc3\x89T / HTTP/1.1"), e.InvalidMethodError, 400),
    ("htab_after_method", line(b"GET\t/ HTTP/1.1"), e.InvalidMethodError, 400),
    ("request_line_without_sp", line(b"GET"), e.InvalidMethodError, 400),
    ("bare_lf_in_method_position", b"GET\n\r\n", e.InvalidMethodError, 400),
    ("bare_lf_as_empty_line", b"\nGET / HTTP/1.1\r\n\r\n", e.InvalidMethodError, 400),
    ("cr_not_lf_before_request_line", b"\rGET / HTTP/1.1\r\n\r\n", e.InvalidMethodError, 400),
    ("empty_line_then_sp", b"\r\n / HTTP/1.1\r\n\r\n", e.InvalidMethodError, 400),
    # -- request-line shape (RFC 9112 §3)
    ("http09_one_sp", line(b"GET /"), e.InvalidRequestLineError, 400),
    ("three_sp", line(b"GET / HTTP/1.1 x"), e.InvalidRequestLineError, 400),
    ("two_sp_after_method", line(b"GET  / HTTP/1.1"), e.InvalidRequestLineError, 400),
    ("two_sp_before_version", line(b"GET /  HTTP/1.1"), e.InvalidRequestLineError, 400),
    ("trailing_sp", line(b"GET / HTTP/1.1 "), e.InvalidRequestLineError, 400),
    ("bare_lf_after_request_line", b"GET / HTTP/1.1\n\r\n", e.InvalidRequestLineError, 400),
    ("cr_inside_target", line(b"GET /a\rb HTTP/1.1"), e.InvalidRequestLineError, 400),
    ("cr_cr_lf_request_line", line(b"GET / HTTP/1.1\r"), e.InvalidRequestLineError, 400),
    # -- request-target (RFC 9112 §3.2)
    ("empty_target", line(b"GET  HTTP/1.1"), e.InvalidTargetError, 400),
    ("ctl_in_target", line(b"GET /\x01 HTTP/1.1"), e.InvalidTargetError, 400),
    ("nul_in_target", line(b"GET /a\x00b HTTP/1.1"), e.InvalidTargetError, 400),
    ("htab_in_target", line(b"GET /a\tb HTTP/1.1"), e.InvalidTargetError, 400),
    ("del_in_target", line(b"GET /\x7f HTTP/1.1"), e.InvalidTargetError, 400),
    ("raw_utf8_in_target", line(b"GET /caf\xc3\xa9 HTTP/1.1"), e.InvalidTargetError, 400),
    ("relative_target", line(b"GET a/b HTTP/1.1"), e.InvalidTargetError, 400),
    ("asterisk_with_get", line(b"GET * HTTP/1.1"), e.InvalidTargetError, 400),
    ("asterisk_with_suffix", line(b"OPTIONS *x HTTP/1.1"), e.InvalidTargetError, 400),
    ("authority_form_with_get", line(b"GET example.com:80 HTTP/1.1"), e.InvalidTargetError, 400),
    ("connect_origin_form", line(b"CONNECT / HTTP/1.1"), e.InvalidTargetError, 400),
    ("connect_asterisk", line(b"CONNECT * HTTP/1.1"), e.InvalidTargetError, 400),
    ("connect_without_port", line(b"CONNECT example.com HTTP/1.1"), e.InvalidTargetError, 400),
    ("connect_empty_port", line(b"CONNECT example.com: HTTP/1.1"), e.InvalidTargetError, 400),
    (
        "connect_non_digit_port",
        line(b"CONNECT example.com:https HTTP/1.1"),
        e.InvalidTargetError,
        400,
    ),
    ("connect_empty_host", line(b"CONNECT :443 HTTP/1.1"), e.InvalidTargetError, 400),
    ("connect_userinfo", line(b"CONNECT u@h:443 HTTP/1.1"), e.InvalidTargetError, 400),
    ("connect_with_path", line(b"CONNECT h/x:443 HTTP/1.1"), e.InvalidTargetError, 400),
    ("connect_absolute_form", line(b"CONNECT http://h:443 HTTP/1.1"), e.InvalidTargetError, 400),
    ("lowercase_connect_authority", line(b"connect h:443 HTTP/1.1"), e.InvalidTargetError, 400),
    ("absolute_empty_host", line(b"GET http:///p HTTP/1.1"), e.InvalidTargetError, 400),
    ("absolute_userinfo_only", line(b"GET http://user@/p HTTP/1.1"), e.InvalidTargetError, 400),
    ("absolute_port_only", line(b"GET http://:80/p HTTP/1.1"), e.InvalidTargetError, 400),
    ("absolute_bad_scheme", line(b"GET 1http://h/ HTTP/1.1"), e.InvalidTargetError, 400),
    ("absolute_single_slash", line(b"GET http:/h/p HTTP/1.1"), e.InvalidTargetError, 400),
    # -- HTTP-version (RFC 9112 §2.3)
    ("version_2_0", line(b"GET / HTTP/2.0"), e.UnsupportedVersionError, 505),
    ("version_1_2", line(b"GET / HTTP/1.2"), e.UnsupportedVersionError, 505),
    ("version_0_9", line(b"GET / HTTP/0.9"), e.UnsupportedVersionError, 505),
    ("version_lowercase", line(b"GET / http/1.1"), e.InvalidVersionError, 400),
    ("version_without_minor", line(b"GET / HTTP/1"), e.InvalidVersionError, 400),
    ("version_two_digit_minor", line(b"GET / HTTP/1.10"), e.InvalidVersionError, 400),
    ("version_empty", line(b"GET / "), e.InvalidVersionError, 400),
    ("version_garbage", line(b"GET / FOO"), e.InvalidVersionError, 400),
    # -- field lines (RFC 9110 §5.5, RFC 9112 §5)
    ("field_without_colon", head(b"X"), e.InvalidHeaderError, 400),
    ("sp_before_colon", head(b"Host : x"), e.InvalidHeaderError, 400),
    ("htab_before_colon", head(b"Host\t: x"), e.InvalidHeaderError, 400),
    ("empty_field_name", head(b": x"), e.InvalidHeaderError, 400),
    ("non_token_field_name", head(b"X(y): z"), e.InvalidHeaderError, 400),
    ("non_ascii_field_name", head(b"X\xc3\xa9: z"), e.InvalidHeaderError, 400),
    ("nul_in_value", head(b"X: a\x00b"), e.InvalidHeaderError, 400),
    ("ctl_in_value", head(b"X: a\x01b"), e.InvalidHeaderError, 400),
    ("vt_in_value", head(b"X: a\x0bb"), e.InvalidHeaderError, 400),
    ("del_in_value", head(b"X: a\x7fb"), e.InvalidHeaderError, 400),
    ("cr_in_value", head(b"X: a\rb"), e.InvalidHeaderError, 400),
    ("bare_lf_after_field", GET + b"X: a\n\r\n", e.InvalidHeaderError, 400),
    ("bare_lf_final_line", GET + b"X: a\r\n\n", e.InvalidHeaderError, 400),
    ("obs_fold_first_field", head(b" folded"), e.InvalidHeaderError, 400),
    ("obs_fold_with_ctl", head(b"X: a", b" \x01"), e.InvalidHeaderError, 400),
    ("duplicate_host", head(b"Host: a", b"Host: a"), e.DuplicateHeaderError, 400),
    ("duplicate_host_other_case", head(b"Host: a", b"hOST: b"), e.DuplicateHeaderError, 400),
    (
        "duplicate_content_type",
        head(b"Content-Type: a", b"Content-Type: b"),
        e.DuplicateHeaderError,
        400,
    ),
    # -- Content-Length (RFC 9110 §8.6, RFC 9112 §6.3)
    ("cl_negative", head(b"Content-Length: -1"), e.InvalidContentLengthError, 400),
    ("cl_plus_sign", head(b"Content-Length: +1"), e.InvalidContentLengthError, 400),
    ("cl_hex", head(b"Content-Length: 0x10"), e.InvalidContentLengthError, 400),
    ("cl_empty", head(b"Content-Length:"), e.InvalidContentLengthError, 400),
    ("cl_space_inside", head(b"Content-Length: 1 2"), e.InvalidContentLengthError, 400),
    ("cl_decimal_point", head(b"Content-Length: 1.0"), e.InvalidContentLengthError, 400),
    (
        "cl_differing_lines",
        head(b"Content-Length: 5", b"Content-Length: 6"),
        e.InvalidContentLengthError,
        400,
    ),
    ("cl_differing_list", head(b"Content-Length: 5, 6"), e.InvalidContentLengthError, 400),
    ("cl_empty_list_element", head(b"Content-Length: 5,"), e.InvalidContentLengthError, 400),
    (
        "cl_over_63_bits",
        head(b"Content-Length: 9223372036854775808"),
        e.InvalidContentLengthError,
        400,
    ),
    (
        "cl_non_ascii_digit",
        head("Content-Length: \u0665".encode()),
        e.InvalidContentLengthError,
        400,
    ),
    # -- Transfer-Encoding (RFC 9112 §6.1, §6.3)
    ("te_unknown_coding", head(b"Transfer-Encoding: foo"), e.UnsupportedTransferEncodingError, 501),
    (
        "te_unknown_after_chunked",
        head(b"Transfer-Encoding: chunked, foo"),
        e.UnsupportedTransferEncodingError,
        501,
    ),
    (
        "te_coding_with_params",
        head(b"Transfer-Encoding: chunked;q=1"),
        e.UnsupportedTransferEncodingError,
        501,
    ),
    ("te_gzip_not_chunked", head(b"Transfer-Encoding: gzip"), e.InvalidTransferEncodingError, 400),
    (
        "te_chunked_not_last",
        head(b"Transfer-Encoding: chunked, gzip"),
        e.InvalidTransferEncodingError,
        400,
    ),
    (
        "te_chunked_twice",
        head(b"Transfer-Encoding: chunked, chunked"),
        e.InvalidTransferEncodingError,
        400,
    ),
    (
        "te_chunked_twice_in_two_lines",
        head(b"Transfer-Encoding: chunked", b"Transfer-Encoding: chunked"),
        e.InvalidTransferEncodingError,
        400,
    ),
    ("te_empty", head(b"Transfer-Encoding:"), e.InvalidTransferEncodingError, 400),
    ("te_commas_only", head(b"Transfer-Encoding: , ,"), e.InvalidTransferEncodingError, 400),
    # -- limits (RFC 9112 §3, RFC 6585 §5), default values
    ("request_line_over_8190", b"GET /" + b"a" * 8190, e.RequestLineTooLongError, 414),
    ("field_line_over_8190", GET + b"X: " + b"a" * 8190, e.HeaderFieldTooLargeError, 431),
    ("more_than_100_fields", head(*[b"X: a"] * 101), e.TooManyHeadersError, 431),
    ("head_over_65536", head(*[b"X: " + b"a" * 8000] * 9), e.HeadTooLargeError, 431),
    ("endless_empty_lines", b"\r\n" * 32769, e.HeadTooLargeError, 431),
]

assert len(CASES) >= 60
assert len({case[0] for case in CASES}) == len(CASES), "duplicate ids"


@pytest.mark.parametrize(
    ("raw", "error", "status"),
    [pytest.param(raw, error, status, id=name) for name, raw, error, status in CASES],
)
def test_malformed_request_is_refused(
    parser_impl: ModuleType, raw: bytes, error: type[e.HTTPParseError], status: int
) -> None:
    raises_three_ways(parser_impl, raw, error)
    with pytest.raises(error) as info:
        parser_impl.RequestParser().parse(raw)
    assert info.value.status == status
    assert isinstance(info.value, e.HTTPParseError)
    assert info.value.reason


@pytest.mark.parametrize(
    ("raw", "refused_after"),
    [
        pytest.param(b"\x16\x03\x01\x02\x00", 1, id="tls_client_hello"),
        pytest.param(b"G\x01T / HTTP/1.1\r\n", 2, id="ctl_in_method"),
        pytest.param(b" GET / HTTP/1.1\r\n", 1, id="sp_first"),
        pytest.param(b"GET\r\n", 4, id="cr_in_method_position"),
        pytest.param(b"\r\r\n", 2, id="cr_then_cr"),
        pytest.param(b"\r\n\r\n\x16\x03", 5, id="tls_after_empty_lines"),
    ],
)
def test_non_http_bytes_refused_at_first_bad_byte(
    parser_impl: ModuleType, raw: bytes, refused_after: int
) -> None:
    """RFC 9112 §3 and the issue: no waiting for a CRLF that never comes."""
    assert raises_three_ways(parser_impl, raw, e.InvalidMethodError) == refused_after
