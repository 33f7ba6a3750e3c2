"""serialize_response_head: the status line and the application's header lines."""

from __future__ import annotations

from collections.abc import Iterator
from types import ModuleType

import pytest


def test_good_head(parser_impl: ModuleType) -> None:
    head, code, length, flags = parser_impl.serialize_response_head(
        b"HTTP/1.1", "200 OK", [("Content-Type", "text/plain"), ("X-A", "1")], b"Server: s\r\n"
    )
    assert head == b"HTTP/1.1 200 OK\r\nServer: s\r\nContent-Type: text/plain\r\nX-A: 1\r\n"
    assert (code, length, flags) == (200, -1, 0)


def test_no_headers_no_preamble(parser_impl: ModuleType) -> None:
    assert parser_impl.serialize_response_head(b"HTTP/1.0", "404 Not Found", [], b"") == (
        b"HTTP/1.0 404 Not Found\r\n",
        404,
        -1,
        0,
    )


@pytest.mark.parametrize(
    ("status", "code"),
    [
        ("100 Continue", 100),
        ("204", 204),
        ("299 ", 299),
        ("999 Custom", 999),
        ("200 caf\xe9", 200),
        ("418 I'm a teapot\t!", 418),
    ],
)
def test_valid_statuses(parser_impl: ModuleType, status: str, code: int) -> None:
    head, got, _, _ = parser_impl.serialize_response_head(b"HTTP/1.1", status, [], b"")
    assert got == code
    assert head == b"HTTP/1.1 " + status.encode("latin-1") + b"\r\n"


@pytest.mark.parametrize(
    "status",
    [
        "",
        "20",
        "2000",
        "099 Low",
        "000",
        "abc",
        "200OK",
        " 200 OK",
        "200 O\r\nX: y",
        "200 O\nK",
        "200 O\x00K",
        "200 \u20ac",
        "\u0662\u0660\u0660 OK",
        "-20 OK",
    ],
)
def test_invalid_statuses(parser_impl: ModuleType, status: str) -> None:
    with pytest.raises(ValueError):
        parser_impl.serialize_response_head(b"HTTP/1.1", status, [], b"")


def test_status_must_be_str(parser_impl: ModuleType) -> None:
    with pytest.raises(TypeError):
        parser_impl.serialize_response_head(b"HTTP/1.1", b"200 OK", [], b"")


@pytest.mark.parametrize(
    "value", ["a\rb", "a\nb", "a\r\nSet-Cookie: x", "a\x00b", "\n", "caf\u20ac"]
)
def test_value_that_could_split_or_is_not_latin1_refused(
    parser_impl: ModuleType, value: str
) -> None:
    """RFC 9110 §5.5: never send a field that could split the response."""
    with pytest.raises(ValueError):
        parser_impl.serialize_response_head(b"HTTP/1.1", "200 OK", [("X", value)], b"")


@pytest.mark.parametrize(
    "name", ["", "X Y", "X:Y", "X\r\nY", "X\x00", "caf\xe9", "X\tY", "(x)", "\u20ac"]
)
def test_non_token_name_refused(parser_impl: ModuleType, name: str) -> None:
    with pytest.raises(ValueError):
        parser_impl.serialize_response_head(b"HTTP/1.1", "200 OK", [(name, "v")], b"")


@pytest.mark.parametrize("header", [(b"X", "v"), ("X", b"v"), ("X", 1), (None, "v")])
def test_non_str_name_or_value_is_type_error(
    parser_impl: ModuleType, header: tuple[object, object]
) -> None:
    with pytest.raises(TypeError):
        parser_impl.serialize_response_head(b"HTTP/1.1", "200 OK", [header], b"")


def test_values_keep_latin1_tabs_and_whitespace(parser_impl: ModuleType) -> None:
    head, *_ = parser_impl.serialize_response_head(
        b"HTTP/1.1", "200 OK", [("X", " caf\xe9\t1 ")], b""
    )
    assert head.endswith(b"X:  caf\xe9\t1 \r\n")


@pytest.mark.parametrize(
    ("headers", "flags"),
    [
        ([("Connection", "close")], 1),
        ([("connection", "Keep-Alive, CLOSE ")], 1),
        ([("Connection", "closed")], 0),
        ([("Connection", "keep-alive")], 0),
        ([("Transfer-Encoding", "chunked")], 2),
        ([("transfer-encoding", "gzip")], 2),
        ([("Content-Length", "0")], 4),
        ([("CONNECTION", "close"), ("TRANSFER-ENCODING", "chunked"), ("content-length", "1")], 7),
        ([("X-Connection", "close")], 0),
    ],
)
def test_flags(parser_impl: ModuleType, headers: list[tuple[str, str]], flags: int) -> None:
    assert parser_impl.serialize_response_head(b"HTTP/1.1", "200 OK", headers, b"")[3] == flags


@pytest.mark.parametrize(
    ("value", "length"),
    [("0", 0), ("42", 42), (" 7\t", 7), ("007", 7), ("9223372036854775807", 2**63 - 1)],
)
def test_content_length(parser_impl: ModuleType, value: str, length: int) -> None:
    head, _, got, flags = parser_impl.serialize_response_head(
        b"HTTP/1.1", "200 OK", [("Content-Length", value)], b""
    )
    assert (got, flags) == (length, 4)
    assert head.endswith(b"Content-Length: " + value.encode() + b"\r\n")


@pytest.mark.parametrize(
    "value", ["", "-1", "+1", "1.5", "0x10", "1 2", "abc", "9223372036854775808", "\u0661"]
)
def test_invalid_content_length_refused(parser_impl: ModuleType, value: str) -> None:
    with pytest.raises(ValueError):
        parser_impl.serialize_response_head(b"HTTP/1.1", "200 OK", [("Content-Length", value)], b"")


def test_last_content_length_counts(parser_impl: ModuleType) -> None:
    result = parser_impl.serialize_response_head(
        b"HTTP/1.1", "200 OK", [("Content-Length", "1"), ("content-length", "2")], b""
    )
    assert result[2] == 2


def test_pairs_that_are_not_tuples(parser_impl: ModuleType) -> None:
    """Lists and other two-item iterables are pairs too (the compiled loop unpacks a
    tuple directly and anything else as Python does)."""
    head, _, length, _ = parser_impl.serialize_response_head(
        b"HTTP/1.1", "200 OK", [["X-A", "1"], iter(("Content-Length", "5"))], b""
    )
    assert head == b"HTTP/1.1 200 OK\r\nX-A: 1\r\nContent-Length: 5\r\n"
    assert length == 5


def test_a_pair_whose_unpacking_changes_the_list(parser_impl: ModuleType) -> None:
    """Unpacking a pair that is not a tuple runs Python code; if that code changes the
    header list, both builds see the list as it is then (no read past its end)."""
    headers: list[object] = []

    class Shrinking:
        def __iter__(self) -> Iterator[str]:
            del headers[1:]
            return iter(("X-A", "1"))

    headers += [Shrinking(), ("X-B", "2"), ("X-C", "3")]
    head, *_ = parser_impl.serialize_response_head(b"HTTP/1.1", "200 OK", headers, b"")
    assert head == b"HTTP/1.1 200 OK\r\nX-A: 1\r\n"
