"""The request line (RFC 9112 §3): method, request-target forms, version, empty lines."""

from __future__ import annotations

from types import ModuleType

import pytest
from helpers import feed_three_ways, raises_three_ways

from fastserve import errors as e

TCHARS = "!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"


def request(line: bytes) -> bytes:
    return line + b"\r\nHost: example.com\r\n\r\n"


@pytest.mark.parametrize(
    "method",
    [
        "GET",
        "POST",
        "HEAD",
        "PUT",
        "DELETE",
        "PATCH",
        "M-SEARCH",
        "PROPFIND",
        "get",
        "X!#$%&'*+-.^_`|~9",
        TCHARS,
    ],
)
def test_method_is_any_token_case_kept(parser_impl: ModuleType, method: str) -> None:
    """RFC 9110 §9.1: method = token, case-sensitive; any token is accepted."""
    parser = feed_three_ways(parser_impl, request(method.encode() + b" / HTTP/1.1"))[0]
    assert parser.method == method
    assert parser.environ["REQUEST_METHOD"] == method


@pytest.mark.parametrize("byte", sorted(set(range(256)) - set(TCHARS.encode()) - {0x20, 0x0D}))
def test_every_non_tchar_byte_in_method_is_refused_at_once(
    parser_impl: ModuleType, byte: int
) -> None:
    """The byte is refused when it arrives, before any line end (the TLS case in general)."""
    raw = b"GE" + bytes([byte]) + b"T / HTTP/1.1\r\n\r\n"
    assert raises_three_ways(parser_impl, raw, e.InvalidMethodError) == 3


@pytest.mark.parametrize("version", ["HTTP/1.0", "HTTP/1.1"])
def test_supported_versions(parser_impl: ModuleType, version: str) -> None:
    parser = feed_three_ways(parser_impl, request(b"GET / " + version.encode()))[0]
    assert parser.version == version
    assert parser.environ["SERVER_PROTOCOL"] == version


@pytest.mark.parametrize(
    "version", [b"HTTP/2.0", b"HTTP/3.0", b"HTTP/1.9", b"HTTP/0.9", b"HTTP/9.9"]
)
def test_well_formed_other_versions_get_505(parser_impl: ModuleType, version: bytes) -> None:
    """RFC 9110 §15.6.6."""
    raises_three_ways(parser_impl, request(b"GET / " + version), e.UnsupportedVersionError)


@pytest.mark.parametrize(
    "version",
    [b"HTTP/1.1x", b"HTTP/1.", b"HTTP/a.b", b"HTTPS/1.1", b"HTTP/1.1.1", b"HTTP 1.1", b"Http/1.1"],
)
def test_malformed_versions_get_400(parser_impl: ModuleType, version: bytes) -> None:
    """RFC 9112 §2.3: HTTP-version = HTTP-name "/" DIGIT "." DIGIT (case-sensitive)."""
    error = e.InvalidRequestLineError if b" " in version else e.InvalidVersionError
    raises_three_ways(parser_impl, request(b"GET / " + version), error)


def test_origin_form(parser_impl: ModuleType) -> None:
    """RFC 9112 §3.2.1."""
    env = feed_three_ways(parser_impl, request(b"GET /a/b?c=d HTTP/1.1"))[0].environ
    assert (env["PATH_INFO"], env["QUERY_STRING"], env["REQUEST_URI"]) == (
        "/a/b",
        "c=d",
        "/a/b?c=d",
    )


def test_target_accepts_every_visible_ascii_byte(parser_impl: ModuleType) -> None:
    """Browsers send raw ``|{}^`` and more: 0x21-0x7E are all accepted."""
    target = b"/" + bytes(range(0x21, 0x7F)).replace(b"#", b"").replace(b"?", b"")
    env = feed_three_ways(parser_impl, request(b"GET " + target + b" HTTP/1.1"))[0].environ
    assert env["REQUEST_URI"] == target.decode()


@pytest.mark.parametrize("byte", [*range(0x21), 0x7F, 0x80, 0xFF])
def test_target_refuses_bytes_outside_visible_ascii(parser_impl: ModuleType, byte: int) -> None:
    raw = request(b"GET /a" + bytes([byte]) + b"b HTTP/1.1")
    if byte == 0x20:
        expected: type[Exception] = e.InvalidRequestLineError  # a third SP
    elif byte in (0x0A, 0x0D):
        expected = e.InvalidRequestLineError  # bare LF / CR not followed by LF
    else:
        expected = e.InvalidTargetError
    raises_three_ways(parser_impl, raw, expected)


def test_absolute_form(parser_impl: ModuleType) -> None:
    """RFC 9112 §3.2.2: the authority becomes HTTP_HOST, overriding the Host field."""
    parser = feed_three_ways(parser_impl, request(b"GET http://h.test:8080/p/q?x=1 HTTP/1.1"))[0]
    env = parser.environ
    assert env["HTTP_HOST"] == "h.test:8080"
    assert (env["PATH_INFO"], env["QUERY_STRING"]) == ("/p/q", "x=1")
    assert env["REQUEST_URI"] == "http://h.test:8080/p/q?x=1"


@pytest.mark.parametrize("scheme", [b"http", b"https", b"HTTP", b"ws", b"a+b-c.d", b"x1"])
def test_absolute_form_schemes(parser_impl: ModuleType, scheme: bytes) -> None:
    """RFC 3986 §3.1: scheme = ALPHA *( ALPHA / DIGIT / "+" / "-" / "." )."""
    env = feed_three_ways(parser_impl, request(b"GET " + scheme + b"://h/p HTTP/1.1"))[0].environ
    assert (env["HTTP_HOST"], env["PATH_INFO"]) == ("h", "/p")


def test_absolute_form_without_path(parser_impl: ModuleType) -> None:
    env = feed_three_ways(parser_impl, request(b"GET http://h.test HTTP/1.1"))[0].environ
    assert (env["HTTP_HOST"], env["PATH_INFO"], env["QUERY_STRING"]) == ("h.test", "", "")


def test_absolute_form_query_without_path(parser_impl: ModuleType) -> None:
    env = feed_three_ways(parser_impl, request(b"GET http://h.test?a=b HTTP/1.1"))[0].environ
    assert (env["HTTP_HOST"], env["PATH_INFO"], env["QUERY_STRING"]) == ("h.test", "", "a=b")


def test_absolute_form_ipv6_host(parser_impl: ModuleType) -> None:
    env = feed_three_ways(parser_impl, request(b"GET http://[::1]:80/ HTTP/1.1"))[0].environ
    assert env["HTTP_HOST"] == "[::1]:80"


def test_authority_form_with_connect(parser_impl: ModuleType) -> None:
    """RFC 9112 §3.2.3: only CONNECT, and CONNECT only with it."""
    parser = feed_three_ways(parser_impl, request(b"CONNECT example.com:443 HTTP/1.1"))[0]
    env = parser.environ
    assert parser.method == "CONNECT"
    assert (env["PATH_INFO"], env["QUERY_STRING"], env["REQUEST_URI"]) == (
        "",
        "",
        "example.com:443",
    )
    assert env["HTTP_HOST"] == "example.com"  # the Host field, not the target


def test_authority_form_ipv6(parser_impl: ModuleType) -> None:
    env = feed_three_ways(parser_impl, request(b"CONNECT [::1]:443 HTTP/1.1"))[0].environ
    assert env["REQUEST_URI"] == "[::1]:443"


def test_asterisk_form_with_options(parser_impl: ModuleType) -> None:
    """RFC 9112 §3.2.4."""
    env = feed_three_ways(parser_impl, request(b"OPTIONS * HTTP/1.1"))[0].environ
    assert (env["PATH_INFO"], env["QUERY_STRING"], env["REQUEST_URI"]) == ("*", "", "*")


def test_options_with_origin_form(parser_impl: ModuleType) -> None:
    env = feed_three_ways(parser_impl, request(b"OPTIONS /x HTTP/1.1"))[0].environ
    assert env["PATH_INFO"] == "/x"


def test_empty_lines_before_request_line_are_skipped(parser_impl: ModuleType) -> None:
    """RFC 9112 §2.2; the returned length includes them."""
    raw = b"\r\n\r\n\r\n" + request(b"GET /skip HTTP/1.1")
    parser = feed_three_ways(parser_impl, raw)[0]
    assert parser.environ["PATH_INFO"] == "/skip"


def test_cr_at_line_start_waits_for_next_byte(parser_impl: ModuleType) -> None:
    """A lone CR may be the start of an empty line: no verdict until the next byte."""
    parser = parser_impl.RequestParser()
    assert parser.parse(b"\r") == 0
    assert parser.parse(b"\r\n") == 0
    assert parser.parse(b"\r\nGET / HTTP/1.1\r\n\r\n") == 20


def test_cr_in_method_position_is_refused_when_it_arrives(parser_impl: ModuleType) -> None:
    """``GET\\r`` cannot become a request line: refused before the LF (docs: order of checks)."""
    assert raises_three_ways(parser_impl, b"GET\r\n", e.InvalidMethodError) == 4


def test_request_line_checks_go_left_to_right(parser_impl: ModuleType) -> None:
    """A bad target is reported before a bad version; a stray CR before both."""
    raises_three_ways(parser_impl, request(b"GET /\x01 HTTP/2.0"), e.InvalidTargetError)
    raises_three_ways(parser_impl, request(b"GET /\x01 HTTP/1.1\rx"), e.InvalidRequestLineError)


def test_no_host_field_is_accepted(parser_impl: ModuleType) -> None:
    """werkzeug and gunicorn serve a Host-less request; SERVER_NAME stands in later."""
    env = feed_three_ways(parser_impl, b"GET / HTTP/1.1\r\n\r\n")[0].environ
    assert "HTTP_HOST" not in env


def test_minimal_http10_request(parser_impl: ModuleType) -> None:
    parser = feed_three_ways(parser_impl, b"GET / HTTP/1.0\r\n\r\n")[0]
    assert (parser.version, parser.keep_alive, parser.content_length) == ("HTTP/1.0", False, 0)
