"""Malformed requests: each is refused with one exact error class, status and reason.

One row per defect, named after it. Each row is fed whole, byte by byte and
with the next request behind it (``raises_three_ways``), and all three must
raise the same class (docs/parsing.md, "Order of checks") with the same reason,
the one :mod:`fastserve.errors` spells for it (a named ``*_REASON`` constant or
the class's ``default_reason``).
"""

from __future__ import annotations

from types import ModuleType

import pytest
from helpers import NEXT_REQUEST, raises_three_ways

from fastserve import errors as e

GET = b"GET / HTTP/1.1\r\n"
END = b"\r\n"


def head(*fields: bytes) -> bytes:
    """A GET head with the given raw field lines (CRLF appended to each)."""
    return GET + b"".join(f + b"\r\n" for f in fields) + END


def line(request_line: bytes) -> bytes:
    return request_line + b"\r\nHost: x\r\n\r\n"


CASES: list[tuple[str, bytes, type[e.HTTPParseError], int, str]] = [
    # -- method (RFC 9110 §9.1, §5.6.2): checked byte by byte as it arrives
    (
        "tls_client_hello",
        b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03",
        e.InvalidMethodError,
        400,
        e.InvalidMethodError.default_reason,
    ),
    (
        "sp_before_method",
        line(b" GET / HTTP/1.1"),
        e.InvalidMethodError,
        400,
        e.InvalidMethodError.default_reason,
    ),
    (
        "ctl_in_method",
        line(b"G\x01T / HTTP/1.1"),
        e.InvalidMethodError,
        400,
        e.InvalidMethodError.default_reason,
    ),
    (
        "nul_in_method",
        line(b"GE\x00T / HTTP/1.1"),
        e.InvalidMethodError,
        400,
        e.InvalidMethodError.default_reason,
    ),
    (
        "slash_in_method",
        line(b"GE/T / HTTP/1.1"),
        e.InvalidMethodError,
        400,
        e.InvalidMethodError.default_reason,
    ),
    (
        "colon_in_method",
        line(b"GET: / HTTP/1.1"),
        e.InvalidMethodError,
        400,
        e.InvalidMethodError.default_reason,
    ),
    (
        "non_ascii_method",
        line(b"G\xc3\x89T / HTTP/1.1"),
        e.InvalidMethodError,
        400,
        e.InvalidMethodError.default_reason,
    ),
    (
        "htab_after_method",
        line(b"GET\t/ HTTP/1.1"),
        e.InvalidMethodError,
        400,
        e.InvalidMethodError.default_reason,
    ),
    (
        "request_line_without_sp",
        line(b"GET"),
        e.InvalidMethodError,
        400,
        e.InvalidMethodError.default_reason,
    ),
    (
        "bare_lf_in_method_position",
        b"GET\n\r\n",
        e.InvalidMethodError,
        400,
        e.InvalidMethodError.default_reason,
    ),
    (
        "bare_lf_as_empty_line",
        b"\nGET / HTTP/1.1\r\n\r\n",
        e.InvalidMethodError,
        400,
        e.InvalidMethodError.default_reason,
    ),
    (
        "cr_not_lf_before_request_line",
        b"\rGET / HTTP/1.1\r\n\r\n",
        e.InvalidMethodError,
        400,
        e.InvalidMethodError.default_reason,
    ),
    (
        "empty_line_then_sp",
        b"\r\n / HTTP/1.1\r\n\r\n",
        e.InvalidMethodError,
        400,
        e.InvalidMethodError.default_reason,
    ),
    # -- request-line shape (RFC 9112 §3)
    ("http09_one_sp", line(b"GET /"), e.InvalidRequestLineError, 400, e.REQUEST_LINE_SP_REASON),
    (
        "three_sp",
        line(b"GET / HTTP/1.1 x"),
        e.InvalidRequestLineError,
        400,
        e.REQUEST_LINE_SP_REASON,
    ),
    (
        "two_sp_after_method",
        line(b"GET  / HTTP/1.1"),
        e.InvalidRequestLineError,
        400,
        e.REQUEST_LINE_SP_REASON,
    ),
    (
        "two_sp_before_version",
        line(b"GET /  HTTP/1.1"),
        e.InvalidRequestLineError,
        400,
        e.REQUEST_LINE_SP_REASON,
    ),
    (
        "trailing_sp",
        line(b"GET / HTTP/1.1 "),
        e.InvalidRequestLineError,
        400,
        e.REQUEST_LINE_SP_REASON,
    ),
    (
        "bare_lf_after_request_line",
        b"GET / HTTP/1.1\n\r\n",
        e.InvalidRequestLineError,
        400,
        e.BARE_LF_REQUEST_LINE_REASON,
    ),
    (
        "cr_inside_target",
        line(b"GET /a\rb HTTP/1.1"),
        e.InvalidRequestLineError,
        400,
        e.CR_IN_REQUEST_LINE_REASON,
    ),
    (
        "cr_cr_lf_request_line",
        line(b"GET / HTTP/1.1\r"),
        e.InvalidRequestLineError,
        400,
        e.CR_IN_REQUEST_LINE_REASON,
    ),
    # -- request-target (RFC 9112 §3.2)
    ("empty_target", line(b"GET  HTTP/1.1"), e.InvalidTargetError, 400, e.EMPTY_TARGET_REASON),
    ("ctl_in_target", line(b"GET /\x01 HTTP/1.1"), e.InvalidTargetError, 400, e.TARGET_BYTE_REASON),
    (
        "nul_in_target",
        line(b"GET /a\x00b HTTP/1.1"),
        e.InvalidTargetError,
        400,
        e.TARGET_BYTE_REASON,
    ),
    (
        "htab_in_target",
        line(b"GET /a\tb HTTP/1.1"),
        e.InvalidTargetError,
        400,
        e.TARGET_BYTE_REASON,
    ),
    ("del_in_target", line(b"GET /\x7f HTTP/1.1"), e.InvalidTargetError, 400, e.TARGET_BYTE_REASON),
    (
        "raw_utf8_in_target",
        line(b"GET /caf\xc3\xa9 HTTP/1.1"),
        e.InvalidTargetError,
        400,
        e.TARGET_BYTE_REASON,
    ),
    (
        "relative_target",
        line(b"GET a/b HTTP/1.1"),
        e.InvalidTargetError,
        400,
        e.InvalidTargetError.default_reason,
    ),
    (
        "asterisk_with_get",
        line(b"GET * HTTP/1.1"),
        e.InvalidTargetError,
        400,
        e.ASTERISK_TARGET_REASON,
    ),
    (
        "asterisk_with_suffix",
        line(b"OPTIONS *x HTTP/1.1"),
        e.InvalidTargetError,
        400,
        e.InvalidTargetError.default_reason,
    ),
    (
        "authority_form_with_get",
        line(b"GET example.com:80 HTTP/1.1"),
        e.InvalidTargetError,
        400,
        e.InvalidTargetError.default_reason,
    ),
    (
        "connect_origin_form",
        line(b"CONNECT / HTTP/1.1"),
        e.InvalidTargetError,
        400,
        e.CONNECT_TARGET_REASON,
    ),
    (
        "connect_asterisk",
        line(b"CONNECT * HTTP/1.1"),
        e.InvalidTargetError,
        400,
        e.CONNECT_TARGET_REASON,
    ),
    (
        "connect_without_port",
        line(b"CONNECT example.com HTTP/1.1"),
        e.InvalidTargetError,
        400,
        e.CONNECT_TARGET_REASON,
    ),
    (
        "connect_empty_port",
        line(b"CONNECT example.com: HTTP/1.1"),
        e.InvalidTargetError,
        400,
        e.CONNECT_TARGET_REASON,
    ),
    (
        "connect_non_digit_port",
        line(b"CONNECT example.com:https HTTP/1.1"),
        e.InvalidTargetError,
        400,
        e.CONNECT_TARGET_REASON,
    ),
    (
        "connect_empty_host",
        line(b"CONNECT :443 HTTP/1.1"),
        e.InvalidTargetError,
        400,
        e.CONNECT_TARGET_REASON,
    ),
    (
        "connect_userinfo",
        line(b"CONNECT u@h:443 HTTP/1.1"),
        e.InvalidTargetError,
        400,
        e.CONNECT_TARGET_REASON,
    ),
    (
        "connect_with_path",
        line(b"CONNECT h/x:443 HTTP/1.1"),
        e.InvalidTargetError,
        400,
        e.CONNECT_TARGET_REASON,
    ),
    (
        "connect_absolute_form",
        line(b"CONNECT http://h:443 HTTP/1.1"),
        e.InvalidTargetError,
        400,
        e.CONNECT_TARGET_REASON,
    ),
    (
        "lowercase_connect_authority",
        line(b"connect h:443 HTTP/1.1"),
        e.InvalidTargetError,
        400,
        e.InvalidTargetError.default_reason,
    ),
    (
        "absolute_empty_host",
        line(b"GET http:///p HTTP/1.1"),
        e.InvalidTargetError,
        400,
        e.EMPTY_HOST_REASON,
    ),
    (
        "absolute_userinfo_only",
        line(b"GET http://user@/p HTTP/1.1"),
        e.InvalidTargetError,
        400,
        e.EMPTY_HOST_REASON,
    ),
    (
        "absolute_port_only",
        line(b"GET http://:80/p HTTP/1.1"),
        e.InvalidTargetError,
        400,
        e.EMPTY_HOST_REASON,
    ),
    (
        "absolute_bad_scheme",
        line(b"GET 1http://h/ HTTP/1.1"),
        e.InvalidTargetError,
        400,
        e.InvalidTargetError.default_reason,
    ),
    (
        "absolute_single_slash",
        line(b"GET http:/h/p HTTP/1.1"),
        e.InvalidTargetError,
        400,
        e.InvalidTargetError.default_reason,
    ),
    # -- absolute-form authority (RFC 3986 §3.2): what werkzeug's access log must read too
    (
        "absolute_bracket_in_reg_name",
        line(b"PUT s://]ufd/: HTTP/1.1"),
        e.InvalidTargetError,
        400,
        e.HOST_REASON,
    ),
    (
        "absolute_lone_open_bracket",
        line(b"GET http://a[b/ HTTP/1.1"),
        e.InvalidTargetError,
        400,
        e.HOST_REASON,
    ),
    (
        "absolute_bad_pct_in_host",
        line(b"GET http://%zz/ HTTP/1.1"),
        e.InvalidTargetError,
        400,
        e.HOST_REASON,
    ),
    (
        "absolute_quote_in_host",
        line(b'GET http://a"b/ HTTP/1.1'),
        e.InvalidTargetError,
        400,
        e.HOST_REASON,
    ),
    (
        "absolute_unclosed_ip_literal",
        line(b"GET http://[::1/ HTTP/1.1"),
        e.InvalidTargetError,
        400,
        e.IP_LITERAL_REASON,
    ),
    (
        "absolute_ipv4_in_brackets",
        line(b"GET http://[1.2.3.4]/ HTTP/1.1"),
        e.InvalidTargetError,
        400,
        e.IP_LITERAL_REASON,
    ),
    (
        "absolute_ipv6_nine_groups",
        line(b"GET http://[1:2:3:4:5:6:7:8:9]/ HTTP/1.1"),
        e.InvalidTargetError,
        400,
        e.IP_LITERAL_REASON,
    ),
    (
        "absolute_ipv6_two_double_colons",
        line(b"GET http://[1::2::3]/ HTTP/1.1"),
        e.InvalidTargetError,
        400,
        e.IP_LITERAL_REASON,
    ),
    (
        "absolute_ipv6_zone_id",
        line(b"GET http://[fe80::1%25eth0]/ HTTP/1.1"),
        e.InvalidTargetError,
        400,
        e.IP_LITERAL_REASON,
    ),
    (
        "absolute_ipvfuture_upper_v",
        line(b"GET http://[V1.x]/ HTTP/1.1"),
        e.InvalidTargetError,
        400,
        e.IP_LITERAL_REASON,
    ),
    (
        "absolute_text_after_ip_literal",
        line(b"GET http://[::1]x/ HTTP/1.1"),
        e.InvalidTargetError,
        400,
        e.IP_LITERAL_REASON,
    ),
    (
        "absolute_port_not_digits",
        line(b"GET http://h:x/ HTTP/1.1"),
        e.InvalidTargetError,
        400,
        e.PORT_REASON,
    ),
    (
        "absolute_port_over_65535",
        line(b"GET http://h:65536/ HTTP/1.1"),
        e.InvalidTargetError,
        400,
        e.PORT_REASON,
    ),
    (
        "absolute_port_six_digits",
        line(b"GET http://h:000080/ HTTP/1.1"),
        e.InvalidTargetError,
        400,
        e.PORT_REASON,
    ),
    (
        "absolute_two_ports",
        line(b"GET http://h:80:81/ HTTP/1.1"),
        e.InvalidTargetError,
        400,
        e.PORT_REASON,
    ),
    (
        "absolute_lt_in_userinfo",
        line(b"GET http://a<b@h/ HTTP/1.1"),
        e.InvalidTargetError,
        400,
        e.USERINFO_REASON,
    ),
    (
        "absolute_bracket_in_userinfo",
        line(b"GET http://[u@h/ HTTP/1.1"),
        e.InvalidTargetError,
        400,
        e.USERINFO_REASON,
    ),
    (
        "absolute_invalid_punycode",
        line(b"GET http://xn--zz/ HTTP/1.1"),
        e.InvalidTargetError,
        400,
        e.IDNA_REASON,
    ),
    (
        "absolute_empty_punycode_label",
        line(b"GET http://xn--.example/ HTTP/1.1"),
        e.InvalidTargetError,
        400,
        e.IDNA_REASON,
    ),
    # -- HTTP-version (RFC 9112 §2.3)
    (
        "version_2_0",
        line(b"GET / HTTP/2.0"),
        e.UnsupportedVersionError,
        505,
        e.UnsupportedVersionError.default_reason,
    ),
    (
        "version_1_2",
        line(b"GET / HTTP/1.2"),
        e.UnsupportedVersionError,
        505,
        e.UnsupportedVersionError.default_reason,
    ),
    (
        "version_0_9",
        line(b"GET / HTTP/0.9"),
        e.UnsupportedVersionError,
        505,
        e.UnsupportedVersionError.default_reason,
    ),
    (
        "version_lowercase",
        line(b"GET / http/1.1"),
        e.InvalidVersionError,
        400,
        e.InvalidVersionError.default_reason,
    ),
    (
        "version_without_minor",
        line(b"GET / HTTP/1"),
        e.InvalidVersionError,
        400,
        e.InvalidVersionError.default_reason,
    ),
    (
        "version_two_digit_minor",
        line(b"GET / HTTP/1.10"),
        e.InvalidVersionError,
        400,
        e.InvalidVersionError.default_reason,
    ),
    (
        "version_empty",
        line(b"GET / "),
        e.InvalidVersionError,
        400,
        e.InvalidVersionError.default_reason,
    ),
    (
        "version_garbage",
        line(b"GET / FOO"),
        e.InvalidVersionError,
        400,
        e.InvalidVersionError.default_reason,
    ),
    # -- field lines (RFC 9110 §5.5, RFC 9112 §5)
    ("field_without_colon", head(b"X"), e.InvalidHeaderError, 400, e.NO_COLON_REASON),
    ("sp_before_colon", head(b"Host : x"), e.InvalidHeaderError, 400, e.FIELD_NAME_REASON),
    ("htab_before_colon", head(b"Host\t: x"), e.InvalidHeaderError, 400, e.FIELD_NAME_REASON),
    ("empty_field_name", head(b": x"), e.InvalidHeaderError, 400, e.EMPTY_FIELD_NAME_REASON),
    ("non_token_field_name", head(b"X(y): z"), e.InvalidHeaderError, 400, e.FIELD_NAME_REASON),
    ("non_ascii_field_name", head(b"X\xc3\xa9: z"), e.InvalidHeaderError, 400, e.FIELD_NAME_REASON),
    ("nul_in_value", head(b"X: a\x00b"), e.InvalidHeaderError, 400, e.FIELD_VALUE_REASON),
    ("ctl_in_value", head(b"X: a\x01b"), e.InvalidHeaderError, 400, e.FIELD_VALUE_REASON),
    ("vt_in_value", head(b"X: a\x0bb"), e.InvalidHeaderError, 400, e.FIELD_VALUE_REASON),
    ("del_in_value", head(b"X: a\x7fb"), e.InvalidHeaderError, 400, e.FIELD_VALUE_REASON),
    ("cr_in_value", head(b"X: a\rb"), e.InvalidHeaderError, 400, e.FIELD_VALUE_REASON),
    (
        "bare_lf_after_field",
        GET + b"X: a\n\r\n",
        e.InvalidHeaderError,
        400,
        e.BARE_LF_FIELDS_REASON,
    ),
    ("bare_lf_final_line", GET + b"X: a\r\n\n", e.InvalidHeaderError, 400, e.BARE_LF_FIELDS_REASON),
    ("obs_fold_first_field", head(b" folded"), e.InvalidHeaderError, 400, e.OBS_FOLD_FIRST_REASON),
    ("obs_fold_with_ctl", head(b"X: a", b" \x01"), e.InvalidHeaderError, 400, e.FIELD_VALUE_REASON),
    (
        "duplicate_host",
        head(b"Host: a", b"Host: a"),
        e.DuplicateHeaderError,
        400,
        e.DUPLICATE_HOST_REASON,
    ),
    (
        "duplicate_host_other_case",
        head(b"Host: a", b"hOST: b"),
        e.DuplicateHeaderError,
        400,
        e.DUPLICATE_HOST_REASON,
    ),
    (
        "duplicate_content_type",
        head(b"Content-Type: a", b"Content-Type: b"),
        e.DuplicateHeaderError,
        400,
        e.DUPLICATE_CONTENT_TYPE_REASON,
    ),
    # -- Content-Length (RFC 9110 §8.6, RFC 9112 §6.3)
    (
        "cl_negative",
        head(b"Content-Length: -1"),
        e.InvalidContentLengthError,
        400,
        e.InvalidContentLengthError.default_reason,
    ),
    (
        "cl_plus_sign",
        head(b"Content-Length: +1"),
        e.InvalidContentLengthError,
        400,
        e.InvalidContentLengthError.default_reason,
    ),
    (
        "cl_hex",
        head(b"Content-Length: 0x10"),
        e.InvalidContentLengthError,
        400,
        e.InvalidContentLengthError.default_reason,
    ),
    (
        "cl_empty",
        head(b"Content-Length:"),
        e.InvalidContentLengthError,
        400,
        e.InvalidContentLengthError.default_reason,
    ),
    (
        "cl_space_inside",
        head(b"Content-Length: 1 2"),
        e.InvalidContentLengthError,
        400,
        e.InvalidContentLengthError.default_reason,
    ),
    (
        "cl_decimal_point",
        head(b"Content-Length: 1.0"),
        e.InvalidContentLengthError,
        400,
        e.InvalidContentLengthError.default_reason,
    ),
    (
        "cl_differing_lines",
        head(b"Content-Length: 5", b"Content-Length: 6"),
        e.InvalidContentLengthError,
        400,
        e.CONTENT_LENGTH_DIFFERS_REASON,
    ),
    (
        "cl_differing_list",
        head(b"Content-Length: 5, 6"),
        e.InvalidContentLengthError,
        400,
        e.CONTENT_LENGTH_DIFFERS_REASON,
    ),
    (
        "cl_empty_list_element",
        head(b"Content-Length: 5,"),
        e.InvalidContentLengthError,
        400,
        e.InvalidContentLengthError.default_reason,
    ),
    (
        "cl_over_63_bits",
        head(b"Content-Length: 9223372036854775808"),
        e.InvalidContentLengthError,
        400,
        e.CONTENT_LENGTH_TOO_LARGE_REASON,
    ),
    (
        "cl_non_ascii_digit",
        head("Content-Length: \u0665".encode()),
        e.InvalidContentLengthError,
        400,
        e.InvalidContentLengthError.default_reason,
    ),
    # -- Transfer-Encoding (RFC 9112 §6.1, §6.3)
    (
        "te_unknown_coding",
        head(b"Transfer-Encoding: foo"),
        e.UnsupportedTransferEncodingError,
        501,
        e.UnsupportedTransferEncodingError.default_reason,
    ),
    (
        "te_unknown_after_chunked",
        head(b"Transfer-Encoding: chunked, foo"),
        e.UnsupportedTransferEncodingError,
        501,
        e.UnsupportedTransferEncodingError.default_reason,
    ),
    (
        "te_coding_with_params",
        head(b"Transfer-Encoding: chunked;q=1"),
        e.UnsupportedTransferEncodingError,
        501,
        e.UnsupportedTransferEncodingError.default_reason,
    ),
    (
        "te_gzip_not_chunked",
        head(b"Transfer-Encoding: gzip"),
        e.InvalidTransferEncodingError,
        400,
        e.CHUNKED_NOT_FINAL_REASON,
    ),
    (
        "te_chunked_not_last",
        head(b"Transfer-Encoding: chunked, gzip"),
        e.InvalidTransferEncodingError,
        400,
        e.CHUNKED_NOT_FINAL_REASON,
    ),
    (
        "te_chunked_twice",
        head(b"Transfer-Encoding: chunked, chunked"),
        e.InvalidTransferEncodingError,
        400,
        e.CHUNKED_NOT_FINAL_REASON,
    ),
    (
        "te_chunked_twice_in_two_lines",
        head(b"Transfer-Encoding: chunked", b"Transfer-Encoding: chunked"),
        e.InvalidTransferEncodingError,
        400,
        e.CHUNKED_NOT_FINAL_REASON,
    ),
    (
        "te_empty",
        head(b"Transfer-Encoding:"),
        e.InvalidTransferEncodingError,
        400,
        e.EMPTY_TRANSFER_ENCODING_REASON,
    ),
    (
        "te_commas_only",
        head(b"Transfer-Encoding: , ,"),
        e.InvalidTransferEncodingError,
        400,
        e.EMPTY_TRANSFER_ENCODING_REASON,
    ),
    # -- limits (RFC 9112 §3, RFC 6585 §5), default values
    (
        "request_line_over_8190",
        b"GET /" + b"a" * 8190,
        e.RequestLineTooLongError,
        414,
        e.RequestLineTooLongError.default_reason,
    ),
    (
        "field_line_over_8190",
        GET + b"X: " + b"a" * 8190,
        e.HeaderFieldTooLargeError,
        431,
        e.HeaderFieldTooLargeError.default_reason,
    ),
    (
        "more_than_100_fields",
        head(*[b"X: a"] * 101),
        e.TooManyHeadersError,
        431,
        e.TooManyHeadersError.default_reason,
    ),
    (
        "head_over_65536",
        head(*[b"X: " + b"a" * 8000] * 9),
        e.HeadTooLargeError,
        431,
        e.HeadTooLargeError.default_reason,
    ),
    (
        "endless_empty_lines",
        b"\r\n" * 32769,
        e.HeadTooLargeError,
        431,
        e.HeadTooLargeError.default_reason,
    ),
]

assert len(CASES) >= 60
assert len({case[0] for case in CASES}) == len(CASES), "duplicate ids"


def reasons_three_ways(impl: ModuleType, raw: bytes) -> set[str]:
    """``str(exc)`` of the error raised fed whole, byte by byte and pipelined."""
    reasons = set()
    for feed in ([raw], [raw[i : i + 1] for i in range(len(raw))], [raw + NEXT_REQUEST]):
        parser = impl.RequestParser()
        buf = b""
        with pytest.raises(e.HTTPParseError) as info:
            for piece in feed:
                buf += piece
                parser.parse(buf)
        reasons.add(str(info.value))
    return reasons


@pytest.mark.parametrize(
    ("raw", "error", "status", "reason"),
    [
        pytest.param(raw, error, status, reason, id=name)
        for name, raw, error, status, reason in CASES
    ],
)
def test_malformed_request_is_refused(
    parser_impl: ModuleType, raw: bytes, error: type[e.HTTPParseError], status: int, reason: str
) -> None:
    raises_three_ways(parser_impl, raw, error)
    with pytest.raises(error) as info:
        parser_impl.RequestParser().parse(raw)
    assert info.value.status == status
    assert isinstance(info.value, e.HTTPParseError)
    assert info.value.reason == str(info.value) == reason
    assert reasons_three_ways(parser_impl, raw) == {reason}


def test_every_reason_is_a_named_constant_or_a_default() -> None:
    """The table uses only reasons spelled in fastserve.errors, and every named reason of
    the request parser appears in it at least once."""
    named = {v for k, v in vars(e).items() if k.endswith("_REASON")}
    defaults = {cls.default_reason for cls in vars(e).values() if isinstance(cls, type)}
    used = {case[4] for case in CASES}
    assert used <= named | defaults
    request_side = named - {
        # raised by the ChunkedDecoder only: tests/parser/test_chunked.py
        e.BARE_LF_CHUNK_SIZE_REASON,
        e.BARE_LF_TRAILER_REASON,
        e.CHUNK_DATA_END_REASON,
        e.CHUNK_EXT_REASON,
        e.CHUNK_SIZE_MISSING_REASON,
        e.CHUNK_SIZE_TOO_LARGE_REASON,
    }
    assert request_side - used == set()


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
