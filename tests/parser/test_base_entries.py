"""``RequestParser.set_base``: the per-connection entries every environ starts with.

The server used to update each request's environ with the connection's entries;
now the parser copies them in as the dict's template (docs/parsing.md, "Base
entries"). The environ must be the same as before for every head: the head's
entries updated with the base's, in the documented order (request line, base,
fields). tests/parser/test_differential.py checks the same on generated heads.
"""

from __future__ import annotations

import sys
from collections import OrderedDict
from types import ModuleType
from typing import Any

import pytest
from helpers import NEXT_REQUEST, feed_three_ways, summary

from fastserve import _abnf
from fastserve.errors import HTTPParseError, InvalidHeaderError

SOCKET = object()
# what fastserve._environ.connection_environ gives a plain TCP connection
BASE: dict[str, Any] = {
    "wsgi.version": (1, 0),
    "wsgi.url_scheme": "http",
    "wsgi.multithread": True,
    "wsgi.multiprocess": False,
    "wsgi.run_once": False,
    "SERVER_SOFTWARE": "fastserve/test",
    "SERVER_NAME": "127.0.0.1",
    "SERVER_PORT": "5000",
    "werkzeug.socket": SOCKET,
    "REMOTE_ADDR": "127.0.0.1",
    "REMOTE_PORT": 54321,
}


def head(request_line: bytes, *fields: bytes) -> bytes:
    return request_line + b"\r\n" + b"".join(f + b"\r\n" for f in fields) + b"\r\n"


def many(n: int) -> list[bytes]:
    return [b"X-F%d: v%d" % (i, i) for i in range(n)]


HEADS = [
    head(b"GET / HTTP/1.1"),
    head(b"GET / HTTP/1.0", b"Connection: keep-alive"),
    head(b"HEAD /a%20b?x=1#f HTTP/1.1", b"Host: h", b"X-A: 1", b"x-a: 2"),
    head(b"POST //p/q?%41 HTTP/1.1", b"Content-Type: t", b"Content-Length: 5, 5"),
    head(b"PUT /u HTTP/1.1", b"Transfer-Encoding: chunked", b"Content-Length: 3"),
    head(b"OPTIONS * HTTP/1.1", b"Host: x"),
    head(b"CONNECT example.com:443 HTTP/1.1", b"Host: example.com:443"),
    head(b"GET http://user@proxy.example:8080/p?q HTTP/1.1", b"Host: other"),
    head(b"BREW /pot HTTP/1.1", b"X_Under: dropped", b"Fold: a", b" b", b"\tc"),
    head(b"GET /caf%C3%A9 HTTP/1.1", b"X-Latin: caf\xe9", b"Expect: 100-continue"),
    # around the presized template (19 fields) and beyond 64 slots
    head(b"GET /19 HTTP/1.1", *many(19)),
    head(b"GET /20 HTTP/1.1", *many(20)),
    head(b"GET /26 HTTP/1.1", *many(26)),
    head(b"GET /99 HTTP/1.1", *many(99)),
]


def expected_order(plain: dict[str, Any], base: dict[str, Any]) -> list[str]:
    """docs/parsing.md: the request line's entries, the base's, then the fields'."""
    rest = [k for k in plain if k not in _abnf.REQUEST_LINE_KEYS]
    return [*_abnf.REQUEST_LINE_KEYS, *base, *rest]


@pytest.mark.parametrize(
    "base",
    [
        BASE,
        {},
        {**BASE, "SSL_CLIENT_CERT": "-----BEGIN CERTIFICATE-----"},
        {f"x.{i}": i for i in range(40)},  # more than the server's 16: a larger template
    ],
    ids=["server", "empty", "tls-client-cert", "large"],
)
@pytest.mark.parametrize("data", HEADS, ids=range(len(HEADS)))
def test_environ_is_the_head_environ_updated_with_the_base(
    parser_impl: ModuleType, data: bytes, base: dict[str, Any]
) -> None:
    """The old way (parse, then ``environ.update(base)``) and the new one agree, fed whole,
    byte by byte and pipelined."""
    plain = feed_three_ways(parser_impl, data)[0]
    old = summary(plain)
    old["environ"] = {**plain.environ, **base}

    whole = parser_impl.RequestParser()
    whole.set_base(base)
    assert whole.parse(data) == len(data)
    assert summary(whole) == old
    assert list(whole.environ) == expected_order(plain.environ, base)

    trickled = parser_impl.RequestParser()
    trickled.set_base(base)
    buf = b""
    for i in range(len(data)):
        buf += data[i : i + 1]
        assert trickled.parse(buf) == (len(data) if i == len(data) - 1 else 0)
    assert summary(trickled) == old

    pipelined = parser_impl.RequestParser()
    pipelined.set_base(base)
    assert pipelined.parse(data + NEXT_REQUEST) == len(data)
    assert summary(pipelined) == old
    assert pipelined.parse(NEXT_REQUEST) == len(NEXT_REQUEST)
    assert pipelined.environ == {**base, **feed_three_ways(parser_impl, NEXT_REQUEST)[0].environ}


def test_base_values_are_the_objects_given(parser_impl: ModuleType) -> None:
    parser = parser_impl.RequestParser()
    parser.set_base(BASE)
    parser.parse(HEADS[0])
    for key, value in BASE.items():
        assert parser.environ[key] is value


def test_every_request_gets_a_new_dict(parser_impl: ModuleType) -> None:
    """What the application does to one environ never reaches the next."""
    parser = parser_impl.RequestParser()
    parser.set_base(BASE)
    parser.parse(HEADS[2])
    first = parser.environ
    first["wsgi.errors"] = sys.stderr
    del first["REMOTE_ADDR"]
    first["SERVER_NAME"] = "changed"
    parser.parse(HEADS[2])
    assert parser.environ is not first
    assert parser.environ == {**feed_three_ways(parser_impl, HEADS[2])[0].environ, **BASE}


def test_base_is_copied_when_given(parser_impl: ModuleType) -> None:
    base = dict(BASE)
    parser = parser_impl.RequestParser()
    parser.set_base(base)
    base["REMOTE_ADDR"] = "10.0.0.1"
    base["late"] = True
    parser.parse(HEADS[0])
    assert parser.environ["REMOTE_ADDR"] == "127.0.0.1" and "late" not in parser.environ


def test_set_base_replaces_and_empty_removes(parser_impl: ModuleType) -> None:
    parser = parser_impl.RequestParser()
    plain = feed_three_ways(parser_impl, HEADS[3])[0].environ
    parser.set_base(BASE)
    parser.set_base({"only": 1})
    parser.parse(HEADS[3])
    assert parser.environ == {**plain, "only": 1}
    parser.set_base({})
    parser.parse(HEADS[3])
    assert parser.environ == plain


def test_reset_keeps_the_base(parser_impl: ModuleType) -> None:
    parser = parser_impl.RequestParser()
    parser.set_base(BASE)
    with pytest.raises(InvalidHeaderError):
        parser.parse(b"GET / HTTP/1.1\r\nBad Name: x\r\n\r\n")
    parser.reset()
    parser.parse(HEADS[0])
    assert parser.environ == {**feed_three_ways(parser_impl, HEADS[0])[0].environ, **BASE}


def test_a_refused_head_leaves_the_results_alone(parser_impl: ModuleType) -> None:
    parser = parser_impl.RequestParser()
    parser.set_base(BASE)
    parser.parse(HEADS[2])
    before = summary(parser)
    with pytest.raises(HTTPParseError):
        parser.parse(b"GET / HTTP/1.1\r\nContent-Length: x\r\n\r\n")
    assert summary(parser) == before


def test_set_base_between_the_pieces_of_a_head(parser_impl: ModuleType) -> None:
    """The base in force when the head completes is the one used."""
    data = HEADS[2]
    parser = parser_impl.RequestParser()
    parser.set_base({"first": 1})
    assert parser.parse(data[:10]) == 0
    parser.set_base(BASE)
    assert parser.parse(data) == len(data)
    assert "first" not in parser.environ and parser.environ["REMOTE_PORT"] == 54321


def test_a_dict_subclass_is_a_dict(parser_impl: ModuleType) -> None:
    parser = parser_impl.RequestParser()
    parser.set_base(OrderedDict(BASE))
    parser.parse(HEADS[0])
    assert type(parser.environ) is dict
    assert parser.environ == {**feed_three_ways(parser_impl, HEADS[0])[0].environ, **BASE}


@pytest.mark.parametrize("base", [None, [("a", 1)], "abc", BASE.items()], ids=repr)
def test_set_base_needs_a_dict(parser_impl: ModuleType, base: Any) -> None:
    parser = parser_impl.RequestParser()
    with pytest.raises(TypeError, match=r"set_base\(\) needs a dict"):
        parser.set_base(base)


@pytest.mark.parametrize(
    "key",
    [
        *_abnf.REQUEST_LINE_KEYS,
        "CONTENT_TYPE",
        "CONTENT_LENGTH",
        "HTTP_HOST",
        "HTTP_X_FORWARDED_FOR",
        "HTTP_",
    ],
)
def test_set_base_refuses_a_key_the_head_sets(parser_impl: ModuleType, key: str) -> None:
    """A head decides these: a base holding one would be overridden by some requests and
    not others, or joined with a field of the same name."""
    parser = parser_impl.RequestParser()
    parser.set_base({"ok": 1})
    with pytest.raises(ValueError, match=r"set_base\(\): .* is set by the request head"):
        parser.set_base({**BASE, key: "x"})
    parser.parse(HEADS[0])
    assert parser.environ["ok"] == 1  # the previous base stays


@pytest.mark.parametrize("key", ["http_host", "HTTP", "XHTTP_A", "CONTENT_MD5", 1, ("HTTP_",)])
def test_set_base_takes_keys_no_head_sets(parser_impl: ModuleType, key: Any) -> None:
    parser = parser_impl.RequestParser()
    parser.set_base({key: "v"})
    parser.parse(HEADS[2])
    assert parser.environ[key] == "v"


def test_request_key_rule_matches_the_parsers(parser_impl: ModuleType) -> None:
    """_abnf.is_request_key covers every key a parser set for the heads above."""
    for data in HEADS:
        for key in feed_three_ways(parser_impl, data)[0].environ:
            assert _abnf.is_request_key(key), key


def _connection_base(sock: object, port: int) -> dict[str, Any]:
    """A base as each connection of one server gets it: the same key objects, in the
    same order, with the connection's own values."""
    return {**BASE, "werkzeug.socket": sock, "REMOTE_PORT": port}


def test_bases_with_the_same_keys_get_their_own_values(parser_impl: ModuleType) -> None:
    """Connections of one server: each environ holds its own connection's values, in
    the base's order, whichever base was set before (the compiled parser reuses the
    template of the last base with the same keys)."""
    parsers = []
    for port in range(40000, 40004):
        parser = parser_impl.RequestParser()
        parser.set_base(_connection_base(object(), port))
        parsers.append(parser)
    for port, parser in zip(range(40000, 40004), parsers, strict=True):
        parser.parse(HEADS[2])
        base = _connection_base(parser.environ["werkzeug.socket"], port)
        assert parser.environ == {**feed_three_ways(parser_impl, HEADS[2])[0].environ, **base}
        assert [key for key in parser.environ if key in base] == list(base)


def test_the_same_keys_in_another_order_keep_that_order(parser_impl: ModuleType) -> None:
    first = parser_impl.RequestParser()
    first.set_base(BASE)
    reordered = dict(reversed(list(BASE.items())))
    parser = parser_impl.RequestParser()
    parser.set_base(reordered)
    parser.parse(HEADS[0])
    assert parser.environ == {**feed_three_ways(parser_impl, HEADS[0])[0].environ, **BASE}
    assert [key for key in parser.environ if key in BASE] == list(reordered)


def test_a_request_key_is_refused_after_a_base_was_kept(parser_impl: ModuleType) -> None:
    """A base that differs from the last one only by a request key is still checked."""
    parser_impl.RequestParser().set_base(dict(BASE))
    bad = dict(BASE)
    del bad["REMOTE_PORT"]
    bad["HTTP_HOST"] = "x"
    with pytest.raises(ValueError, match=r"set_base\(\): 'HTTP_HOST' is set by the request"):
        parser_impl.RequestParser().set_base(bad)


def test_a_connection_s_values_are_not_kept_for_the_next(parser_impl: ModuleType) -> None:
    """The template kept for the next connection holds none of this one's objects."""
    import gc
    import weakref

    class Sock:
        pass

    sock = Sock()
    gone = weakref.ref(sock)
    parser = parser_impl.RequestParser()
    parser.set_base(_connection_base(sock, 1))
    parser.parse(HEADS[0])
    del parser, sock
    gc.collect()
    assert gone() is None
    later = parser_impl.RequestParser()
    later.set_base(_connection_base(object(), 2))
    later.parse(HEADS[0])
    assert later.environ["REMOTE_PORT"] == 2
