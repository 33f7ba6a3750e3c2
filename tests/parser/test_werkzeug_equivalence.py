"""On valid requests, fastserve's environ entries equal werkzeug's own.

The reference is werkzeug 3.1.9's dev-server path (``parse_request`` +
``make_environ``) run socket-free by :mod:`werkzeug_harness`. Only the entries
a request head determines are compared (:data:`werkzeug_harness.HEAD_KEYS` and
``HTTP_*``), and they must match exactly: same keys, same values.

"Valid" means accepted by both werkzeug and fastserve's strict parser
(docs/parsing.md). Requests where fastserve deliberately differs are left out:
leading empty lines (skipped by us, RFC 9112 §2.2; werkzeug drops the
connection), CONNECT's authority-form (``PATH_INFO`` ``""`` here; werkzeug's
``urlsplit`` reads ``host:443`` as a scheme), duplicate Host/Content-Type (400
here), Content-Length lists (``5, 5`` becomes ``5`` here). One difference is
applied to werkzeug's result instead: in absolute-form, userinfo never reaches
``HTTP_HOST`` (issue 2).
"""

from __future__ import annotations

import string
from types import ModuleType
from typing import Any
from urllib.parse import urlsplit

import pytest
from helpers import NEXT_REQUEST, feed_three_ways
from hypothesis import given, settings
from hypothesis import strategies as st
from werkzeug_harness import werkzeug_head_entries

import fastserve
import fastserve.parser


def _request(line: str, *fields: str | bytes) -> bytes:
    """A request head: ``line`` and ``fields`` joined with CRLF, plus the empty line."""
    parts = [line.encode("ascii")]
    parts += [f if isinstance(f, bytes) else f.encode("latin-1") for f in fields]
    return b"\r\n".join(parts) + b"\r\n\r\n"


CHROME_FIELDS = (
    "Host: shop.example.com",
    "Connection: keep-alive",
    'sec-ch-ua: "Chromium";v="124", "Google Chrome";v="124", "Not-A.Brand";v="99"',
    "sec-ch-ua-mobile: ?0",
    'sec-ch-ua-platform: "Linux"',
    "Upgrade-Insecure-Requests: 1",
    "User-Agent: Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/124.0.0.0 Safari/537.36",
    "Accept: text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,"
    "image/apng,*/*;q=0.8,application/signed-exchange;v=b3;q=0.7",
    "Sec-Fetch-Site: same-origin",
    "Sec-Fetch-Mode: navigate",
    "Sec-Fetch-User: ?1",
    "Sec-Fetch-Dest: document",
    "Referer: https://shop.example.com/products/shoes?color=blue",
    "Accept-Encoding: gzip, deflate, br, zstd",
    "Accept-Language: en-US,en;q=0.9,de;q=0.8",
    "Cookie: sessionid=8a7d9f6e5c4b3a29; csrftoken=QmFzZTY0IGlzIG5vdCBlbmNyeXB0aW9u; theme=dark",
)

# (id, request head). Every one is valid for werkzeug and for docs/parsing.md.
VALID: list[tuple[str, bytes]] = [
    # request line: methods (RFC 9110 §9.1: case-sensitive tokens)
    ("tiny", _request("GET / HTTP/1.1", "Host: x")),
    ("http10-no-host", _request("GET /old HTTP/1.0")),
    ("http11-no-host", _request("GET /nohost HTTP/1.1")),
    ("head", _request("HEAD /h HTTP/1.1", "Host: x")),
    ("delete", _request("DELETE /items/7 HTTP/1.1", "Host: x")),
    ("lowercase-method", _request("get /lower HTTP/1.1", "Host: x")),
    ("mixed-case-method", _request("Patch /p HTTP/1.1", "Host: x")),
    ("custom-method", _request("M-SEARCH /upnp HTTP/1.1", "Host: x")),
    ("method-all-tchars", _request("PURGE!#$%&'*+-.^_`|~09 /x HTTP/1.1", "Host: x")),
    ("lowercase-connect-is-plain-method", _request("connect /x HTTP/1.1", "Host: x")),
    ("options-asterisk", _request("OPTIONS * HTTP/1.1", "Host: x")),
    ("options-path", _request("OPTIONS /api HTTP/1.1", "Host: x")),
    # origin-form paths (RFC 9112 §3.2.1) and percent-decoding of PATH_INFO
    ("pct-space", _request("GET /a%20b HTTP/1.1", "Host: x")),
    ("pct-2F-decoded-to-slash", _request("GET /a%2Fb/%2f HTTP/1.1", "Host: x")),
    ("pct-utf8", _request("GET /caf%C3%A9/%e2%82%AC HTTP/1.1", "Host: x")),
    ("pct-invalid-utf8", _request("GET /%FF%FE/x%C3 HTTP/1.1", "Host: x")),
    ("pct-overlong-utf8", _request("GET /%C0%AF HTTP/1.1", "Host: x")),
    ("pct-invalid-escapes-kept", _request("GET /%zz/%4/%/%%41 HTTP/1.1", "Host: x")),
    ("pct-nul-and-ctl", _request("GET /a%00b%0D%0A HTTP/1.1", "Host: x")),
    ("double-slash", _request("GET //double-slash/x HTTP/1.1", "Host: x")),
    ("triple-slash-inner-kept", _request("GET ///a//b HTTP/1.1", "Host: x")),
    ("only-slashes", _request("GET // HTTP/1.1", "Host: x")),
    ("double-slash-with-query", _request("GET //x?y=//z HTTP/1.1", "Host: x")),
    ("raw-browser-chars", _request("GET /a|b{c}^d`e[f]?x=[1]&y={2} HTTP/1.1", "Host: x")),
    ("sub-delims-in-path", _request("GET /a;b=c/d:e@f!$&'()*+,~ HTTP/1.1", "Host: x")),
    ("query", _request("GET /search?q=hello+world&lang=en HTTP/1.1", "Host: x")),
    ("query-escapes-raw", _request("GET /s?q=%20%2F%FF&x HTTP/1.1", "Host: x")),
    ("empty-query", _request("GET /p? HTTP/1.1", "Host: x")),
    ("query-with-question", _request("GET /p?a?b=c?? HTTP/1.1", "Host: x")),
    ("fragment", _request("GET /p#frag HTTP/1.1", "Host: x")),
    ("query-and-fragment", _request("GET /p?q=1#frag?not=query HTTP/1.1", "Host: x")),
    ("fragment-before-question", _request("GET /p#f?q HTTP/1.1", "Host: x")),
    ("long-target", _request("GET /" + "a" * 8000 + " HTTP/1.1", "Host: x")),
    # absolute-form (RFC 9112 §3.2.2): HTTP_HOST from the authority
    ("absolute", _request("GET http://example.com/p?q=1 HTTP/1.1", "Host: example.com")),
    ("absolute-port", _request("GET http://example.com:8080/p HTTP/1.1")),
    ("absolute-no-path", _request("GET http://example.com HTTP/1.1")),
    ("absolute-query-no-path", _request("GET http://example.com?x=1 HTTP/1.1")),
    ("absolute-fragment-no-path", _request("GET http://example.com#f HTTP/1.1")),
    ("absolute-uppercase-scheme", _request("GET HTTPS://Example.COM:443/A HTTP/1.1")),
    ("absolute-odd-scheme", _request("GET a+b.c-1://h/x HTTP/1.1")),
    ("absolute-overrides-host", _request("GET http://real.example/x HTTP/1.1", "Host: other")),
    ("absolute-userinfo", _request("GET http://user:pass@example.com:8080/x HTTP/1.1")),
    ("absolute-userinfo-many-at", _request("GET http://a@b:c@host.example/x HTTP/1.1")),
    ("absolute-ipv6", _request("GET http://[::1]:8080/x HTTP/1.1")),
    ("absolute-double-slash-path", _request("GET http://h//x//y HTTP/1.1")),
    ("absolute-escapes", _request("GET http://h/%2F%C3%A9%zz?%41 HTTP/1.1")),
    # body framing fields (RFC 9112 §6)
    (
        "content-type-and-length",
        _request(
            "POST /form HTTP/1.1",
            "Host: x",
            "Content-Type: application/x-www-form-urlencoded",
            "Content-Length: 7",
        ),
    ),
    (
        "multipart-content-type",
        _request(
            "POST /up HTTP/1.1",
            "Content-Type: multipart/form-data; boundary=----WebKitFormBoundary7MA4YWxkTrZu0gW",
            "Content-Length: 1234",
        ),
    ),
    ("content-length-trailing-ows-kept", _request("POST /p HTTP/1.1", "Content-Length: 5 \t")),
    ("content-length-leading-ows", _request("POST /p HTTP/1.1", "Content-Length:    5")),
    ("content-length-zero", _request("POST /p HTTP/1.1", "Content-Length: 0")),
    ("content-length-leading-zeros", _request("POST /p HTTP/1.1", "Content-Length: 007")),
    ("content-length-63-bit", _request("PUT /p HTTP/1.1", f"Content-Length: {(1 << 63) - 1}")),
    (
        "content-length-identical-repeats",
        _request("POST /p HTTP/1.1", "Content-Length: 5", "content-length: 5"),
    ),
    (
        "chunked-with-invalid-content-length",
        _request(
            "POST /c HTTP/1.1",
            "Host: x",
            "Transfer-Encoding: chunked",
            "Content-Length: invalid",
        ),
    ),
    ("chunked-case-insensitive", _request("POST /c HTTP/1.1", "Transfer-Encoding: Chunked")),
    ("gzip-then-chunked", _request("POST /c HTTP/1.1", "Transfer-Encoding: gzip, chunked")),
    (
        "transfer-encoding-over-two-lines",
        _request("POST /c HTTP/1.1", "Transfer-Encoding: gzip", "Transfer-Encoding: chunked"),
    ),
    ("chunked-http10", _request("POST /c HTTP/1.0", "Transfer-Encoding: chunked")),
    (
        "expect-100-continue",
        _request("PUT /up HTTP/1.1", "Host: x", "Expect: 100-continue", "Content-Length: 3"),
    ),
    ("connection-close", _request("GET / HTTP/1.1", "Host: x", "Connection: close")),
    ("http10-keep-alive", _request("GET / HTTP/1.0", "Connection: Keep-Alive")),
    # field lines (RFC 9110 §5.5, RFC 9112 §5)
    (
        "repeated-fields-joined-trailing-ows-kept",
        _request("GET / HTTP/1.1", "XYZ: a ", "XYZ:  b", "XYZ: c ", "XYZ: d"),
    ),
    (
        "repeated-cookie",
        _request("GET / HTTP/1.1", "Host: x", "Cookie: a=1", "Other: o", "cookie: b=2"),
    ),
    (
        "obs-fold",
        _request("GET / HTTP/1.1", "Host: x", "X-Folded: first", "\tsecond", "\tthird"),
    ),
    ("obs-fold-spaces-kept", _request("GET / HTTP/1.1", "X: a  ", "   b  ", "\t c")),
    ("obs-fold-empty-first-line", _request("GET / HTTP/1.1", "X:", " folded")),
    ("obs-fold-whitespace-only", _request("GET / HTTP/1.1", "X: a", " ", "Y: b")),
    ("obs-text", _request("GET / HTTP/1.1", "Host: x", b"X-Name: caf\xc3\xa9 \x80\x85\xa0\xff")),
    ("obs-text-cookie", _request("GET / HTTP/1.1", b"Cookie: name=J\xc3\xbcrgen; x=\xe9")),
    (
        "underscore-names-dropped",
        _request(
            "GET / HTTP/1.1",
            "Host: x",
            "X_Forwarded_For: spoofed",
            "X-Forwarded-For: 10.0.0.1",
            "Content_Type: nope",
            "_: underscore-only",
        ),
    ),
    ("empty-values", _request("GET / HTTP/1.1", "X-Empty:", "X-Blank:    ", "X-Tab:\t")),
    (
        "repeated-empty-values-joined",
        _request("GET / HTTP/1.1", "X:", "X:  ", "Y: a", "Y:", "Z:", "Z: b"),
    ),
    ("no-space-after-colon", _request("GET / HTTP/1.1", "Host:x", "X:y")),
    ("tabs-around-value", _request("GET / HTTP/1.1", "X:\t\tval ue\t")),
    (
        "name-case",
        _request("POST / HTTP/1.1", "hOsT: x", "content-TYPE: text/plain", "x-MiXeD: v"),
    ),
    ("tchar-names", _request("GET / HTTP/1.1", "X-!#$%&'*+.^`|~: v", "0: zero")),
    ("value-with-colons-quotes", _request("GET / HTTP/1.1", 'X: "a:b", c=d; e="f\\"g"')),
    ("host-with-port", _request("GET / HTTP/1.1", "Host: localhost:5000")),
    ("host-unix-socket-path", _request("GET / HTTP/1.1", "Host: /run/app.sock")),
    ("host-ipv6", _request("GET / HTTP/1.1", "Host: [::1]:8080")),
    ("host-empty", _request("GET / HTTP/1.1", "Host:")),
    ("long-field-value", _request("GET / HTTP/1.1", "X-Long: " + "v" * 8000)),
    ("99-fields", _request("GET / HTTP/1.1", *(f"X-F{i}: {i}" for i in range(99)))),
    ("chrome-navigation", _request("GET /products/shoes?color=blue HTTP/1.1", *CHROME_FIELDS)),
]


def expected_entries(raw: bytes) -> dict[str, Any]:
    """werkzeug's head entries for ``raw``, with fastserve's one deliberate difference."""
    expected = werkzeug_head_entries(raw)
    assert expected is not None, f"werkzeug refused a request the test treats as valid: {raw!r}"
    target = raw.lstrip(b"\r\n").split(b"\r\n", 1)[0].split(b" ")[1].decode("ascii")
    if not target.startswith("/") and (netloc := urlsplit(target).netloc):
        # absolute-form; issue 2 / docs/parsing.md: userinfo never leaks into HTTP_HOST
        expected["HTTP_HOST"] = netloc.rpartition("@")[2]
    return expected


def test_case_list_is_large_and_unique() -> None:
    ids = [case_id for case_id, _ in VALID]
    assert len(ids) >= 40
    assert len(set(ids)) == len(ids)


@pytest.mark.parametrize("raw", [raw for _, raw in VALID], ids=[i for i, _ in VALID])
def test_environ_equals_werkzeug(parser_impl: ModuleType, raw: bytes) -> None:
    expected = expected_entries(raw)
    for parser in feed_three_ways(parser_impl, raw):
        assert parser.environ == expected


@pytest.mark.parametrize("raw", [raw for _, raw in VALID], ids=[i for i, _ in VALID])
def test_parse_request_equals_werkzeug(
    parser_impl: ModuleType, monkeypatch: pytest.MonkeyPatch, raw: bytes
) -> None:
    # fastserve.parse_request uses the chosen implementation; point it at the one under test
    monkeypatch.setattr(fastserve.parser, "RequestParser", parser_impl.RequestParser)
    assert fastserve.parse_request(raw + NEXT_REQUEST) == expected_entries(raw)


# --- generated requests -------------------------------------------------------------

# RFC 9110 §5.6.2 tchar
TCHARS = "!#$%&'*+-.^_`|~" + string.digits + string.ascii_letters
# RFC 9112 §3.2 as docs/parsing.md widens it: any visible ASCII in the target
VISIBLE = "".join(map(chr, range(0x21, 0x7F)))
# RFC 9110 §5.5 field-value characters: SP, HTAB, VCHAR, obs-text (as latin-1 text)
VALUE_CHARS = " \t" + VISIBLE + "".join(map(chr, range(0x80, 0x100)))
# RFC 3986 §3.2 reg-name / userinfo characters, without "%" and the brackets that
# urlsplit checks for IPv6 (werkzeug would raise on unbalanced ones)
REG_NAME = string.ascii_letters + string.digits + "-._~!$&'()*+,;="
# fields the strategy places itself (each at most once, with valid values)
SPECIAL_FIELDS = {"host", "content-type", "content-length", "transfer-encoding"}

tokens = st.text(TCHARS, min_size=1, max_size=12)
# names with a meaning, and underscore names werkzeug drops, besides random tokens
field_names = st.one_of(
    st.sampled_from(["Cookie", "accept", "Expect", "Connection", "X-Forwarded-For", "X_Real_IP"]),
    tokens,
).filter(lambda n: n.lower() not in SPECIAL_FIELDS)
hexdig = st.sampled_from(string.hexdigits)
pct_escape = st.builds(lambda a, b: f"%{a}{b}", hexdig, hexdig)
target_text = st.lists(st.one_of(st.text(VISIBLE, max_size=8), pct_escape), max_size=6).map("".join)
origin_form = target_text.map(lambda rest: "/" + rest)


@st.composite
def absolute_form(draw: st.DrawFn) -> str:
    scheme = draw(st.sampled_from(["http", "https", "HTTP", "ws", "a+b.c-1"]))
    userinfo = draw(
        st.one_of(st.just(""), st.text(REG_NAME + ":@", max_size=8).map(lambda u: u + "@"))
    )
    host = draw(st.one_of(st.text(REG_NAME, min_size=1, max_size=12), st.just("[::1]")))
    port = draw(st.one_of(st.just(""), st.integers(0, 65535).map(lambda p: f":{p}")))
    path = draw(st.one_of(st.just(""), origin_form)).replace("?", "").replace("#", "")
    query = draw(st.one_of(st.just(""), target_text.map(lambda q: "?" + q.replace("#", ""))))
    fragment = draw(st.one_of(st.just(""), target_text.map(lambda f: "#" + f)))
    return f"{scheme}://{userinfo}{host}{port}{path}{query}{fragment}"


field_value = st.text(VALUE_CHARS, max_size=24)
fold_line = st.builds(lambda ws, v: ws + v, st.text(" \t", min_size=1, max_size=3), field_value)


@st.composite
def valid_requests(draw: st.DrawFn) -> bytes:
    """A request head both werkzeug and fastserve's strict parser accept."""
    method = draw(st.one_of(st.sampled_from(["GET", "POST", "OPTIONS", "get", "PROPFIND"]), tokens))
    if method == "CONNECT":  # authority-form only: left out (see module docstring)
        method = "GET"
    if method == "OPTIONS" and draw(st.booleans()):
        target = "*"
    else:
        target = draw(st.one_of(origin_form, absolute_form()))
    version = draw(st.sampled_from(["HTTP/1.0", "HTTP/1.1"]))

    lines: list[str] = []
    for name in draw(st.lists(field_names, max_size=8)):
        lines.append(f"{name}:{draw(field_value)}")
        # obs-fold (RFC 9112 §5.2): continuation lines glued to this field line
        lines[-1] += "".join("\r\n" + f for f in draw(st.lists(fold_line, max_size=2)))
    if draw(st.booleans()):
        lines.append(f"{draw(st.sampled_from(['Host', 'host', 'HOST']))}: {draw(field_value)}")
    if draw(st.booleans()):
        lines.append(f"Content-Type: {draw(field_value)}")
    framing = draw(st.sampled_from(["none", "length", "chunked"]))
    if framing == "length":
        length = draw(st.integers(0, (1 << 63) - 1))
        lines.append(f"Content-Length:{draw(st.sampled_from(['', ' ', chr(9)]))}{length}")
    elif framing == "chunked":
        lines.append(
            f"Transfer-Encoding: {draw(st.sampled_from(['chunked', 'gzip, chunked', 'CHUNKED']))}"
        )
        if draw(st.booleans()):
            # with Transfer-Encoding, Content-Length is passed through unchecked
            lines.append(f"Content-Length: {draw(field_value)}")
    lines = draw(st.permutations(lines))
    return _request(f"{method} {target} {version}", *lines)


@settings(deadline=None)
@given(raw=valid_requests())
def test_generated_environ_equals_werkzeug(parser_impl: ModuleType, raw: bytes) -> None:
    expected = expected_entries(raw)
    parser = parser_impl.RequestParser()
    assert parser.parse(raw) == len(raw)
    assert parser.environ == expected
