"""The environ entries a head determines, with werkzeug 3.1's values (docs/parsing.md)."""

from __future__ import annotations

from types import ModuleType
from urllib.parse import unquote

import pytest
from helpers import environ_of, feed_three_ways

from fastserve import _abnf

HEAD_KEYS = {
    "REQUEST_METHOD",
    "SCRIPT_NAME",
    "PATH_INFO",
    "QUERY_STRING",
    "REQUEST_URI",
    "RAW_URI",
    "SERVER_PROTOCOL",
}


def get(target: bytes, *fields: bytes) -> bytes:
    return b"GET " + target + b" HTTP/1.1\r\n" + b"".join(f + b"\r\n" for f in fields) + b"\r\n"


def test_minimal_request_entries(parser_impl: ModuleType) -> None:
    env = environ_of(parser_impl, b"GET / HTTP/1.1\r\n\r\n")
    assert env == {
        "REQUEST_METHOD": "GET",
        "SCRIPT_NAME": "",
        "PATH_INFO": "/",
        "QUERY_STRING": "",
        "REQUEST_URI": "/",
        "RAW_URI": "/",
        "SERVER_PROTOCOL": "HTTP/1.1",
    }


def test_every_value_is_str(parser_impl: ModuleType) -> None:
    env = environ_of(
        parser_impl, get(b"/a?b", b"Host: h", b"Content-Length: 1", b"Content-Type: t")
    )
    assert all(type(k) is str and type(v) is str for k, v in env.items())


@pytest.mark.parametrize(
    ("target", "path_info"),
    [
        (b"/plain", "/plain"),
        (b"/a%20b", "/a b"),
        (b"/%2Fslash", "//slash"),
        (b"/caf%C3%A9", "/café".encode().decode("latin-1")),
        (b"/%FF", "/\ufffd".encode().decode("latin-1")),
        (b"/%E2%82%AC", "/€".encode().decode("latin-1")),
        (b"/%zz", "/%zz"),
        (b"/%4", "/%4"),
        (b"/100%", "/100%"),
        (b"/a+b", "/a+b"),
        (b"/%25zz", "/%zz"),
        (b"/%00", "/\x00"),
    ],
)
def test_path_info_decoding(parser_impl: ModuleType, target: bytes, path_info: str) -> None:
    """Percent-decoded, UTF-8 with replacement, then latin-1 (werkzeug's wsgi string)."""
    env = environ_of(parser_impl, get(target))
    assert env["PATH_INFO"] == path_info
    assert env["PATH_INFO"] == unquote(target.decode()).encode().decode("latin-1")


@pytest.mark.parametrize(
    ("target", "path", "query"),
    [
        (b"/p?a=1&b=%20", "/p", "a=1&b=%20"),
        (b"/p?", "/p", ""),
        (b"/p?a?b", "/p", "a?b"),
        (b"/p?a#frag", "/p", "a"),
        (b"/p#frag?not-query", "/p", ""),
        (b"/p#", "/p", ""),
        (b"/%3F?q", "/?", "q"),
    ],
)
def test_query_string_raw_and_fragment_dropped(
    parser_impl: ModuleType, target: bytes, path: str, query: str
) -> None:
    env = environ_of(parser_impl, get(target))
    assert (env["PATH_INFO"], env["QUERY_STRING"]) == (path, query)
    assert env["REQUEST_URI"] == env["RAW_URI"] == target.decode()  # fragment kept


@pytest.mark.parametrize(
    ("target", "uri", "path"),
    [
        (b"//double-slash", "/double-slash", "/double-slash"),
        (b"///a//b", "/a//b", "/a//b"),
        (b"//", "/", "/"),
        (b"//?x=1", "/?x=1", "/"),
        (b"/a//b", "/a//b", "/a//b"),
    ],
)
def test_leading_slashes_collapsed(
    parser_impl: ModuleType, target: bytes, uri: str, path: str
) -> None:
    """werkzeug's test_double_slash_path: the segment never becomes a host."""
    env = environ_of(parser_impl, get(target, b"Host: real"))
    assert (env["REQUEST_URI"], env["RAW_URI"], env["PATH_INFO"]) == (uri, uri, path)
    assert env["HTTP_HOST"] == "real"


def test_absolute_form_sets_host_and_keeps_uri(parser_impl: ModuleType) -> None:
    """werkzeug's test_untrusted_host."""
    env = environ_of(
        parser_impl, get(b"http://missing.test:1337/index.html#ignore", b"Host: other")
    )
    assert env["HTTP_HOST"] == "missing.test:1337"
    assert env["PATH_INFO"] == "/index.html"
    assert env["QUERY_STRING"] == ""
    assert env["REQUEST_URI"] == "http://missing.test:1337/index.html#ignore"


@pytest.mark.parametrize(
    ("target", "host"),
    [
        (b"http://user:pass@h.test/p", "h.test"),
        (b"http://user@h.test:81/p", "h.test:81"),
        (b"http://a@b@h.test/p", "h.test"),
        (b"http://user@h.test?q", "h.test"),
    ],
)
def test_userinfo_never_reaches_host(parser_impl: ModuleType, target: bytes, host: str) -> None:
    env = environ_of(parser_impl, get(target))
    assert env["HTTP_HOST"] == host
    assert "user" not in env["HTTP_HOST"]


def test_absolute_form_path_not_collapsed(parser_impl: ModuleType) -> None:
    env = environ_of(parser_impl, get(b"http://h//a%20b?x#y"))
    assert (env["PATH_INFO"], env["QUERY_STRING"], env["HTTP_HOST"]) == ("//a b", "x", "h")


@pytest.mark.parametrize(
    ("name", "key"),
    [
        (b"Host", "HTTP_HOST"),
        (b"user-agent", "HTTP_USER_AGENT"),
        (b"X-Forwarded-For", "HTTP_X_FORWARDED_FOR"),
        (b"ACCEPT", "HTTP_ACCEPT"),
        (b"Content-Type", "CONTENT_TYPE"),
        (b"content-type", "CONTENT_TYPE"),
        (b"CONTENT-LENGTH", "CONTENT_LENGTH"),
        (b"Content-Typo", "HTTP_CONTENT_TYPO"),
        (b"X.Y", "HTTP_X.Y"),
        (b"a1-B2", "HTTP_A1_B2"),
    ],
)
def test_field_name_to_key(parser_impl: ModuleType, name: bytes, key: str) -> None:
    value = b"7" if name.lower() == b"content-length" else b"v"
    env = environ_of(parser_impl, get(b"/", name + b": " + value))
    assert env[key] == value.decode()
    assert set(env) - HEAD_KEYS == {key}


# a value each interpreted field accepts
_VALID_VALUE = {
    b"content-length": b"7",
    b"transfer-encoding": b"chunked",
    b"expect": b"100-continue",
}


@pytest.mark.parametrize(
    "name",
    [
        *sorted(_abnf.SINGLETON_FIELDS),
        *sorted(_abnf.FRAMING_FIELDS),
        b"Sec-CH-UA-Mobile",  # in the compiled parser's table of common names
        b"dnt",
        b"!#$%&'*+-.^`|~09azAZ",
        b"x-" + b"y" * 40,
    ],
)
def test_key_is_the_abnf_rule(parser_impl: ModuleType, name: bytes) -> None:
    """Both builds key a field by ``_abnf.environ_key``, the one rule (werkzeug's)."""
    value = _VALID_VALUE.get(name.lower(), b"v")
    env = environ_of(parser_impl, get(b"/", name + b": " + value))
    assert env[_abnf.environ_key(name)] == value.decode()


@pytest.mark.parametrize("name", [b"X_Forwarded_For", b"_", b"Content_Length", b"a_"])
def test_names_with_underscore_dropped(parser_impl: ModuleType, name: bytes) -> None:
    """werkzeug's anti-spoofing rule: ``X_Y`` would otherwise collide with ``X-Y``."""
    env = environ_of(parser_impl, get(b"/", name + b": spoofed", b"X-Forwarded-For: real"))
    assert env["HTTP_X_FORWARDED_FOR"] == "real"
    assert "spoofed" not in env.values()
    assert set(env) - HEAD_KEYS == {"HTTP_X_FORWARDED_FOR"}


def test_repeats_joined_with_trailing_ows_kept(parser_impl: ModuleType) -> None:
    """werkzeug's suite asserts ``a ,b,c ,d``."""
    env = environ_of(
        parser_impl, get(b"/", b"X-Multi: a ", b"X-Multi:b", b"X-Multi:  c ", b"x-multi: d")
    )
    assert env["HTTP_X_MULTI"] == "a ,b,c ,d"


def test_obs_fold_unfolded(parser_impl: ModuleType) -> None:
    env = environ_of(parser_impl, get(b"/", b"X-Fold: first", b"\tsecond", b"\tthird"))
    assert env["HTTP_X_FOLD"] == "first\tsecond\tthird"


def test_obs_text_value_is_latin1(parser_impl: ModuleType) -> None:
    env = environ_of(parser_impl, get(b"/", b"X: \xe9\xff"))
    assert env["HTTP_X"] == "\xe9\xff"


@pytest.mark.parametrize(
    ("fields", "content_length"),
    [
        ((b"Content-Length: 5",), "5"),
        ((b"Content-Length: 005",), "005"),
        ((b"Content-Length:   5 \t",), "5 \t"),
        ((b"Content-Length: 5", b"Content-Length: 5"), "5"),
        ((b"Content-Length: 5, 5",), "5"),
        ((b"Content-Length: 05, 5 ",), "5"),
        ((b"Content-Length: 5", b"Transfer-Encoding: chunked"), "5"),
        ((b"Content-Length: invalid", b"Transfer-Encoding: chunked"), "invalid"),
        ((b"Content-Length: 1", b"Content-Length: x ", b"Transfer-Encoding: chunked"), "x "),
    ],
    ids=[
        "plain",
        "leading_zeros_kept",
        "trailing_ows_kept",
        "repeat",
        "list",
        "list_normalised",
        "with_te",
        "invalid_with_te",
        "last_with_te",
    ],
)
def test_content_length_entry(
    parser_impl: ModuleType, fields: tuple[bytes, ...], content_length: str
) -> None:
    env = environ_of(parser_impl, get(b"/", *fields))
    assert env["CONTENT_LENGTH"] == content_length


def test_no_content_length_or_type_when_absent(parser_impl: ModuleType) -> None:
    env = environ_of(parser_impl, get(b"/", b"Transfer-Encoding: chunked"))
    assert "CONTENT_LENGTH" not in env and "CONTENT_TYPE" not in env


def test_new_environ_for_every_request(parser_impl: ModuleType) -> None:
    parser = parser_impl.RequestParser()
    first = get(b"/one", b"X: 1")
    assert parser.parse(first) == len(first)
    env1 = parser.environ
    second = get(b"/two")
    assert parser.parse(second) == len(second)
    assert parser.environ is not env1
    assert env1["PATH_INFO"] == "/one" and "HTTP_X" in env1
    assert parser.environ["PATH_INFO"] == "/two" and "HTTP_X" not in parser.environ


def test_method_and_protocol_as_sent(parser_impl: ModuleType) -> None:
    parser = feed_three_ways(parser_impl, b"purge /x HTTP/1.0\r\n\r\n")[0]
    assert (parser.environ["REQUEST_METHOD"], parser.environ["SERVER_PROTOCOL"]) == (
        "purge",
        "HTTP/1.0",
    )
