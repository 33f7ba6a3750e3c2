"""Field lines (RFC 9110 §5.5, RFC 9112 §5): names, values, obs-fold, duplicates."""

from __future__ import annotations

from types import ModuleType

import pytest
from helpers import environ_of, feed_three_ways, raises_three_ways

from fastserve import errors as e

TCHARS = b"!#$%&'*+-.^`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"


def head(*fields: bytes) -> bytes:
    return b"GET / HTTP/1.1\r\n" + b"".join(f + b"\r\n" for f in fields) + b"\r\n"


def test_field_name_may_be_any_token(parser_impl: ModuleType) -> None:
    """RFC 9110 §5.1: field-name = token (``_`` aside, see test_environ_entries)."""
    env = environ_of(parser_impl, head(TCHARS + b": v"))
    key = "HTTP_" + TCHARS.decode().upper().replace("-", "_")
    assert env[key] == "v"


@pytest.mark.parametrize("byte", sorted(set(range(256)) - set(TCHARS) - {ord("_"), ord(":")}))
def test_non_token_byte_in_name_is_refused(parser_impl: ModuleType, byte: int) -> None:
    raw = head(b"X" + bytes([byte]) + b"Y: v")
    expected = e.InvalidHeaderError
    raises_three_ways(parser_impl, raw, expected)


def test_value_may_hold_htab_sp_vchar_and_obs_text(parser_impl: ModuleType) -> None:
    """RFC 9110 §5.5: field-vchar = VCHAR / obs-text, with SP/HTAB inside; latin-1 text."""
    value = b"a\tb c" + bytes(range(0x21, 0x7F)) + bytes(range(0x80, 0x100)) + b"z"
    env = environ_of(parser_impl, head(b"X-V: " + value))
    assert env["HTTP_X_V"] == value.decode("latin-1")


def test_raw_utf8_cookie_is_latin1_text(parser_impl: ModuleType) -> None:
    env = environ_of(parser_impl, head("Cookie: name=café".encode()))
    assert env["HTTP_COOKIE"] == "name=café".encode().decode("latin-1")


@pytest.mark.parametrize("byte", [b for b in range(0x20) if b != 0x09] + [0x7F])
def test_control_bytes_in_value_are_refused(parser_impl: ModuleType, byte: int) -> None:
    """NUL, CR, LF, other CTLs and DEL (RFC 9110 §5.5)."""
    raw = head(b"X: a" + bytes([byte]) + b"b")
    raises_three_ways(parser_impl, raw, e.InvalidHeaderError)


def test_leading_ows_removed_trailing_kept(parser_impl: ModuleType) -> None:
    """werkzeug's suite asserts trailing whitespace survives in the environ."""
    env = environ_of(parser_impl, head(b"X:  \t value \t "))
    assert env["HTTP_X"] == "value \t "


def test_empty_value(parser_impl: ModuleType) -> None:
    env = environ_of(parser_impl, head(b"X:", b"Y:   "))
    assert (env["HTTP_X"], env["HTTP_Y"]) == ("", "")


def test_colon_in_value_is_kept(parser_impl: ModuleType) -> None:
    env = environ_of(parser_impl, head(b"X: a:b::c"))
    assert env["HTTP_X"] == "a:b::c"


def test_obs_fold_keeps_whitespace(parser_impl: ModuleType) -> None:
    """RFC 9112 §5.2: the CRLF is removed, the fold's whitespace kept."""
    env = environ_of(parser_impl, head(b"X: first", b"\tsecond", b"  third"))
    assert env["HTTP_X"] == "first\tsecond  third"


def test_obs_fold_of_dropped_field_does_not_leak(parser_impl: ModuleType) -> None:
    env = environ_of(parser_impl, head(b"X: a", b"Y_Z: hidden", b" more", b"W: b"))
    assert (env["HTTP_X"], env["HTTP_W"]) == ("a", "b")
    assert not any("hidden" in v or "more" in v for v in env.values())


def test_obs_fold_counts_as_a_field_line(parser_impl: ModuleType) -> None:
    raw = head(b"X: a", b" b", b" c")
    feed_three_ways(parser_impl, raw, max_fields=3)
    raises_three_ways(parser_impl, raw, e.TooManyHeadersError, max_fields=2)


def test_repeated_fields_joined_in_order(parser_impl: ModuleType) -> None:
    env = environ_of(parser_impl, head(b"Accept: a", b"X: 1", b"accept: b", b"ACCEPT: c"))
    assert env["HTTP_ACCEPT"] == "a,b,c"


def test_host_value_not_syntax_checked(parser_impl: ModuleType) -> None:
    """Unix-socket clients send a path as Host; only the control-character rule applies."""
    env = environ_of(parser_impl, head(b"Host: /tmp/app.sock"))
    assert env["HTTP_HOST"] == "/tmp/app.sock"


@pytest.mark.parametrize(
    "fields",
    [
        (b"Host: a", b"Host: a"),
        (b"Host: a", b"host: b"),
        (b"Host: a", b"X: 1", b"HOST: a"),
    ],
    ids=["same", "lower", "apart"],
)
def test_second_host_refused(parser_impl: ModuleType, fields: tuple[bytes, ...]) -> None:
    """RFC 9112 §3.2: a request with more than one Host field gets 400."""
    raises_three_ways(parser_impl, head(*fields), e.DuplicateHeaderError)


def test_second_content_type_refused(parser_impl: ModuleType) -> None:
    raw = head(b"Content-Type: text/plain", b"content-type: text/plain")
    raises_three_ways(parser_impl, raw, e.DuplicateHeaderError)


def test_duplicate_reported_before_a_later_defect(parser_impl: ModuleType) -> None:
    """Lines are judged in arrival order: the duplicate comes first."""
    raises_three_ways(
        parser_impl, head(b"Host: a", b"Host: b", b"Bad Name: x"), e.DuplicateHeaderError
    )


def test_host_in_underscore_name_is_not_a_host(parser_impl: ModuleType) -> None:
    env = environ_of(parser_impl, head(b"Host: a", b"Host_: b"))
    assert env["HTTP_HOST"] == "a"


def test_bad_field_after_good_ones_refused(parser_impl: ModuleType) -> None:
    raises_three_ways(parser_impl, head(b"A: 1", b"B: 2", b"C 3"), e.InvalidHeaderError)


def test_expect_100_continue(parser_impl: ModuleType) -> None:
    """RFC 9110 §10.1.1: case-insensitive, OWS ignored."""
    assert feed_three_ways(parser_impl, head(b"Expect:  100-Continue \t"))[0].expect_continue
    assert not feed_three_ways(parser_impl, head(b"Expect: 100-continue-x"))[0].expect_continue
    assert not feed_three_ways(parser_impl, head())[0].expect_continue
    assert feed_three_ways(parser_impl, head(b"Expect: foo", b"Expect: 100-continue"))[
        0
    ].expect_continue


def test_expect_in_environ(parser_impl: ModuleType) -> None:
    env = environ_of(parser_impl, head(b"Expect: 100-continue "))
    assert env["HTTP_EXPECT"] == "100-continue "
