"""The compiled parser and its pure-Python twin agree on everything (hypothesis).

``fastserve._parser_py`` is the executable spec (docs/parsing.md); the compiled
``fastserve._parser`` must give, for any input and any way of splitting it, the
same trace: the same return value of every call, the same results after a
complete head (environ, method, version, framing flags), or the same error:
class, status and reason (``str(exc)``: reasons reach response bodies and log
lines, so they must not depend on the build). Inputs are generated valid
requests (methods, targets with %-escapes, queries, fragments and
absolute-form, 0-30 field lines with obs-text, repeats,
obs-folds and Content-Length / Transfer-Encoding combinations) and mutations of
them (byte flips, insertions, deletions, truncation), fed in random pieces, with
random limits. The same for :class:`ChunkedDecoder` and
:func:`serialize_response_head`.

These tests compare the two modules directly instead of taking ``parser_impl``,
so they are marked ``c_extension``: they fail when the compiled module is
missing and are deselected only under ``FASTSERVE_NO_EXTENSIONS=1``.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from types import ModuleType
from typing import Any

import pytest
from helpers import summary
from hypothesis import given
from hypothesis import strategies as st

from fastserve import _abnf
from fastserve.errors import HTTPParseError

pytestmark = pytest.mark.c_extension

Trace = list[Any]


def _implementations() -> tuple[ModuleType, ModuleType]:
    """(compiled, pure-Python); importing the compiled one must not fail."""
    return importlib.import_module("fastserve._parser"), importlib.import_module(
        "fastserve._parser_py"
    )


# --- building blocks -------------------------------------------------------------------------

TCHARS = "".join(sorted(chr(c) for c in _abnf.TCHAR))
VALUE_BYTES = sorted(_abnf.FIELD_VALUE_CHAR)
# path characters: unreserved, sub-delims, ":" "@", and raw characters browsers send
PCHARS = "abcxyzABCXYZ0189-._~!$&'()*+,;=:@|{}^`[]\"<>\\"

token = st.text(alphabet=TCHARS, min_size=1, max_size=10)

methods = st.one_of(
    st.sampled_from(["GET", "POST", "HEAD", "PUT", "DELETE", "OPTIONS", "CONNECT", "PATCH", "get"]),
    st.sampled_from(["GET", "POST"]),
    token,
)

escapes = st.one_of(
    st.integers(0, 255).map(lambda b: f"%{b:02X}"),
    st.integers(0, 255).map(lambda b: f"%{b:02x}"),
    st.sampled_from(
        ["%C3%A9", "%E2%82%AC", "%F0%9F%98%80", "%", "%4", "%zz", "%G0", "%%41", "%2F"]
    ),
)
segment = st.lists(st.one_of(st.text(alphabet=PCHARS, max_size=6), escapes), max_size=4).map(
    "".join
)
path = st.tuples(st.sampled_from(["/", "/", "//", "///"]), st.lists(segment, max_size=4)).map(
    lambda t: t[0] + "/".join(t[1])
)
query = st.one_of(st.just(""), st.text(alphabet=PCHARS + "/?%", max_size=12).map(lambda q: "?" + q))
fragment = st.one_of(
    st.just(""), st.text(alphabet=PCHARS + "/?#", max_size=8).map(lambda f: "#" + f)
)
host = st.one_of(
    st.sampled_from(["example.com", "h", "[::1]", "127.0.0.1", "xn--bcher-kva.example"]),
    st.text(alphabet="abcz019.-", min_size=1, max_size=12),
    st.sampled_from(["", ":80"]),  # empty host: refused
)
port = st.one_of(st.just(""), st.integers(0, 70000).map(lambda p: f":{p}"), st.just(":"))
userinfo = st.one_of(st.just(""), st.sampled_from(["user@", "u:p@", "a@b@", "@", "a:b:c@"]))
scheme = st.one_of(
    st.sampled_from(["http", "https", "HTTP", "svn+ssh", "a.b-c", "h"]),
    st.sampled_from(["1http", "-x", ""]),  # not a scheme
)
origin_form = st.tuples(path, query, fragment).map("".join)
absolute_form = st.tuples(
    scheme,
    st.one_of(st.just("://"), st.sampled_from([":/", ":", "//"])),
    userinfo,
    host,
    port,
    st.one_of(st.just(""), path),
    query,
    fragment,
).map("".join)
authority_form = st.tuples(host, port).map("".join)
versions = st.one_of(
    st.sampled_from(["HTTP/1.1", "HTTP/1.0"]),
    st.sampled_from(["HTTP/1.1", "HTTP/1.0"]),
    st.sampled_from(
        ["HTTP/2.0", "HTTP/1.2", "HTTP/0.9", "http/1.1", "HTTP/1.10", "HTTP/1", "HTTP"]
    ),
)

FIELD_NAMES = [
    "Host",
    "host",
    "User-Agent",
    "Accept",
    "Accept-Encoding",
    "Cookie",
    "Referer",
    "Connection",
    "content-type",
    "Content-Type",
    "Content-Length",
    "content-length",
    "Transfer-Encoding",
    "transfer-encoding",
    "Expect",
    "X-Forwarded-For",
    "X_Forwarded_For",
    "Sec-Fetch-Dest",
    "TE",
]
SPECIAL_VALUES = {
    "content-length": [
        "0",
        "5",
        "007",
        "5, 5",
        "5,6",
        "",
        "abc",
        "-1",
        "+5",
        " 7 ",
        "5,",
        str((1 << 63) - 1),
        str(1 << 63),
        "99999999999999999999999",
    ],
    "transfer-encoding": [
        "chunked",
        "gzip, chunked",
        "chunked, chunked",
        "gzip",
        "identity,chunked",
        "br",
        "",
        " , chunked",
        "Chunked",
        "chunked,",
        "x-gzip ,\tCHUNKED",
    ],
    "connection": [
        "close",
        "keep-alive",
        "Keep-Alive, Upgrade",
        "upgrade",
        "close, keep-alive",
        "",
    ],
    "expect": ["100-continue", "100-Continue ", "foo", " 100-continue"],
}
ows = st.sampled_from([b"", b"", b" ", b"\t", b"  ", b" \t"])
value_bytes = st.lists(st.sampled_from(VALUE_BYTES), max_size=24).map(bytes)


@st.composite
def field_lines(draw: st.DrawFn) -> bytes:
    """One field line (CRLF included), possibly followed by obs-fold lines."""
    name = draw(st.one_of(st.sampled_from(FIELD_NAMES), token))
    special = SPECIAL_VALUES.get(name.lower())
    if special is not None and draw(st.booleans()):
        value = draw(st.sampled_from(special)).encode("latin-1")
    else:
        value = draw(value_bytes)
    line = name.encode("ascii") + b":" + draw(ows) + value + draw(ows) + b"\r\n"
    for fold in draw(st.lists(value_bytes, max_size=2)):
        line += draw(st.sampled_from([b" ", b"\t", b"  "])) + fold + b"\r\n"
    return line


framing = st.sampled_from(
    [
        [],
        [b"Content-Length: 5\r\n"],
        [b"content-length: 0\r\n"],
        [b"Content-Length: 12 \r\n", b"Content-Length: 12\r\n"],
        [b"Transfer-Encoding: chunked\r\n"],
        [b"Transfer-Encoding: gzip\r\n", b"Transfer-Encoding: chunked\r\n"],
        [b"Transfer-Encoding: chunked\r\n", b"Content-Length: invalid\r\n"],
        [b"Connection: close\r\n"],
        [b"Connection: keep-alive\r\n", b"Expect: 100-continue\r\n"],
    ]
)


@st.composite
def requests(draw: st.DrawFn) -> bytes:
    """A request head that is mostly valid (plus, sometimes, a body or a pipelined request)."""
    method = draw(methods)
    form = draw(
        st.sampled_from(["origin", "origin", "origin", "absolute", "authority", "asterisk"])
    )
    if method == "CONNECT" and draw(st.integers(0, 3)):
        form = "authority"
    elif method == "OPTIONS" and draw(st.booleans()):
        form = "asterisk"
    target = draw(
        {
            "origin": origin_form,
            "absolute": absolute_form,
            "authority": authority_form,
            "asterisk": st.just("*"),
        }[form]
    )
    if form == "authority" and draw(st.integers(0, 3)):
        method = "CONNECT"
    elif form == "asterisk" and draw(st.integers(0, 3)):
        method = "OPTIONS"
    head = b"\r\n" * draw(st.integers(0, 2))
    head += f"{method} {target} {draw(versions)}\r\n".encode("ascii")
    count = draw(st.sampled_from([0, 1, 3, 10, 30]))
    fields = draw(st.lists(field_lines(), min_size=count // 3, max_size=count))
    # framing fields (RFC 9112 §6), mostly well-formed, at random places
    for line in draw(framing):
        fields.insert(draw(st.integers(0, len(fields))), line)
    head += b"".join(fields) + b"\r\n"
    head += draw(st.sampled_from([b"", b"", b"hello", b"GET /next HTTP/1.1\r\nHost: n\r\n\r\n"]))
    return head


INTERESTING = b'\r\n \t:;,/?#%@"\\\x00\x01\x7f\x80\xff0aA'


@st.composite
def mutated(draw: st.DrawFn, source: st.SearchStrategy[bytes]) -> bytes:
    """``source`` with a few random byte flips, insertions, deletions and a truncation."""
    data = bytearray(draw(source))
    for _ in range(draw(st.integers(1, 4))):
        op = draw(st.sampled_from(["flip", "flip", "insert", "delete", "truncate"]))
        # a fraction of the length: plain integers would cluster at the start
        at = round(draw(st.floats(0, 1)) * len(data))
        byte = draw(st.one_of(st.sampled_from(INTERESTING), st.integers(0, 255)))
        if op == "flip" and at < len(data):
            data[at] = byte
        elif op == "insert":
            data[at:at] = bytes([byte])
        elif op == "delete" and at < len(data):
            del data[at]
        elif op == "truncate":
            del data[at:]
    return bytes(data)


@st.composite
def pieces(draw: st.DrawFn, data: bytes) -> list[bytes]:
    """``data`` cut into consecutive pieces: whole, byte by byte, or at random points."""
    how = draw(st.sampled_from(["whole", "bytes", "random", "random"]))
    if how == "whole" or not data:
        return [data]
    if how == "bytes":
        return [data[i : i + 1] for i in range(len(data))]
    cuts = sorted(draw(st.sets(st.integers(1, len(data) - 1), max_size=8))) if len(data) > 1 else []
    bounds = [0, *cuts, len(data)]
    return [data[a:b] for a, b in zip(bounds, bounds[1:], strict=False)]


request_limits = st.one_of(
    st.just({}),
    st.fixed_dictionaries(
        {},
        optional={
            "max_request_line": st.integers(0, 80),
            "max_field_line": st.integers(0, 40),
            "max_head": st.integers(0, 300),
            "max_fields": st.integers(0, 8),
        },
    ),
)
trailer_limits = st.one_of(
    st.just({}),
    st.fixed_dictionaries(
        {},
        optional={
            "max_field_line": st.integers(0, 30),
            "max_head": st.integers(0, 60),
            "max_fields": st.integers(0, 4),
        },
    ),
)
buffer_types: st.SearchStrategy[Callable[[bytes], Any]] = st.sampled_from(
    [bytes, bytearray, memoryview]
)


# --- running an implementation ---------------------------------------------------------------


def error_outcome(exc: HTTPParseError) -> tuple[str, type, int, str]:
    """What both builds must agree on for a refused input: class, status and reason."""
    return ("error", type(exc), exc.status, str(exc))


def parse_trace(
    impl: ModuleType,
    chunks: list[bytes],
    limits: dict[str, int],
    wrap: Callable[[bytes], Any],
    base: dict[str, Any] | None = None,
) -> Trace:
    """Feed ``chunks`` like a server: the buffer grows; after a complete head the rest of it
    is the next request's start. Records every return value, the results after each
    complete head (and the environ's key order), and the first error (class, status,
    reason). ``base``: given to ``set_base`` first."""
    parser = impl.RequestParser(**limits)
    if base is not None:
        parser.set_base(base)
    trace: Trace = []
    buf = b""
    for chunk in chunks:
        buf += chunk
        while True:
            try:
                consumed = parser.parse(wrap(buf))
            except HTTPParseError as exc:
                trace.append(error_outcome(exc))
                return trace
            trace.append(consumed)
            if not consumed:
                break
            trace.append(summary(parser))
            trace.append(("order", list(parser.environ)))
            buf = buf[consumed:]
            if not buf:
                break
    return trace


def decode_trace(
    impl: ModuleType, chunks: list[bytes], limits: dict[str, int], wrap: Callable[[bytes], Any]
) -> Trace:
    """Feed ``chunks`` like a server: unconsumed bytes are passed again with the next ones."""
    decoder = impl.ChunkedDecoder(**limits)
    trace: Trace = []
    pending = b""
    for chunk in chunks:
        pending += chunk
        try:
            body, consumed = decoder.decode(wrap(pending))
        except HTTPParseError as exc:
            trace.append(error_outcome(exc))
            return trace
        assert type(body) is bytes
        trace.append((body, consumed, decoder.done))
        pending = pending[consumed:]
    return trace


def assert_same_parse(
    data: bytes,
    chunks: list[bytes],
    limits: dict[str, int],
    wrap: Callable[[bytes], Any],
    base: dict[str, Any] | None = None,
) -> Trace:
    c_impl, py_impl = _implementations()
    expected = parse_trace(py_impl, chunks, limits, wrap, base)
    assert parse_trace(c_impl, chunks, limits, wrap, base) == expected, (data, limits)
    return expected


def with_base(trace: Trace, base: dict[str, Any]) -> Trace:
    """What a trace without a base becomes with ``base`` (docs/parsing.md, "Base
    entries"): each environ updated with it; the request line's keys, then the base's,
    then the fields'."""
    out: Trace = []
    for step in trace:
        if isinstance(step, dict):
            step = {**step, "environ": {**step["environ"], **base}}
        elif isinstance(step, tuple) and step[0] == "order":
            fields = [k for k in step[1] if k not in _abnf.REQUEST_LINE_KEYS]
            step = ("order", [*_abnf.REQUEST_LINE_KEYS, *base, *fields])
        out.append(step)
    return out


# --- RequestParser ---------------------------------------------------------------------------


@given(data=requests(), limits=request_limits, wrap=buffer_types, st_data=st.data())
def test_parsers_agree_on_generated_requests(
    data: bytes, limits: dict[str, int], wrap: Callable[[bytes], Any], st_data: st.DataObject
) -> None:
    assert_same_parse(data, st_data.draw(pieces(data)), limits, wrap)


@given(data=requests())
def test_parsers_agree_on_generated_requests_whatever_the_split(data: bytes) -> None:
    """Whole, byte by byte: one trace per split, both implementations equal on each, and
    the outcome (results or error class) does not depend on the split."""
    whole = assert_same_parse(data, [data], {}, bytes)
    trickled = assert_same_parse(data, [data[i : i + 1] for i in range(len(data))], {}, bytearray)
    assert [step for step in trickled if step != 0] == [step for step in whole if step != 0]


@given(data=mutated(requests()), limits=request_limits, wrap=buffer_types, st_data=st.data())
def test_parsers_agree_on_mutated_requests(
    data: bytes, limits: dict[str, int], wrap: Callable[[bytes], Any], st_data: st.DataObject
) -> None:
    assert_same_parse(data, st_data.draw(pieces(data)), limits, wrap)


@given(data=st.binary(max_size=64), st_data=st.data())
def test_parsers_agree_on_random_bytes(data: bytes, st_data: st.DataObject) -> None:
    assert_same_parse(data, st_data.draw(pieces(data)), {}, bytes)


# set_base: what fastserve._environ.connection_environ gives (11 entries, 12 with a TLS
# client certificate), none, and more than the compiled parser's presized template holds
_SOCKET = object()
_SERVER_BASE: dict[str, Any] = {
    "wsgi.version": (1, 0),
    "wsgi.url_scheme": "http",
    "wsgi.multithread": True,
    "wsgi.multiprocess": False,
    "wsgi.run_once": False,
    "SERVER_SOFTWARE": "fastserve/test",
    "SERVER_NAME": "127.0.0.1",
    "SERVER_PORT": "5000",
    "werkzeug.socket": _SOCKET,
    "REMOTE_ADDR": "127.0.0.1",
    "REMOTE_PORT": 54321,
}
bases = st.sampled_from(
    [
        _SERVER_BASE,
        {**_SERVER_BASE, "SSL_CLIENT_CERT": "-----BEGIN CERTIFICATE-----"},
        {},
        {f"x.{i}": i for i in range(40)},
    ]
)


@given(
    data=st.one_of(requests(), mutated(requests())),
    limits=request_limits,
    wrap=buffer_types,
    base=bases,
    st_data=st.data(),
)
def test_base_entries_give_the_head_environ_updated_with_them(
    data: bytes,
    limits: dict[str, int],
    wrap: Callable[[bytes], Any],
    base: dict[str, Any],
    st_data: st.DataObject,
) -> None:
    """set_base + parse (what the server does now) gives, in both builds, what parse +
    ``environ.update(base)`` gave (what it did before), the same results and errors
    otherwise; and the builds agree, key order included."""
    chunks = st_data.draw(pieces(data))
    with_it = assert_same_parse(data, chunks, limits, wrap, base)
    for impl in _implementations():
        assert with_it == with_base(parse_trace(impl, chunks, limits, wrap), base), impl


# --- ChunkedDecoder --------------------------------------------------------------------------

chunk_ext = st.lists(
    st.tuples(
        ows,
        token,
        st.one_of(
            st.just(b""),
            token.map(lambda t: b"=" + t.encode("ascii")),
            st.sampled_from([b'="q"', b'=""', b'="a\\"b"', b'="\\\\"', b' = "x y"', b'="\xe9"']),
        ),
    ).map(lambda t: t[0] + b";" + t[1].encode("ascii") + t[2]),
    max_size=2,
).map(b"".join)
trailer = st.tuples(st.sampled_from(["Expires", "X-Checksum", "x_under", "Host"]), value_bytes).map(
    lambda t: t[0].encode("ascii") + b": " + t[1] + b"\r\n"
)


@st.composite
def chunked_bodies(draw: st.DrawFn) -> bytes:
    """A chunked body: chunks with sizes in varied spellings and extensions, the last chunk,
    trailers (obs-folds too), the final CRLF, and sometimes pipelined bytes after it."""
    out = b""
    for chunk in draw(st.lists(st.binary(max_size=40), max_size=5)):
        if not chunk:
            continue
        size = f"{len(chunk):x}"
        size = draw(st.sampled_from([size, size.upper(), "00" + size]))
        out += size.encode("ascii") + draw(chunk_ext) + b"\r\n" + chunk + b"\r\n"
    out += draw(st.sampled_from([b"0", b"000"])) + draw(chunk_ext) + b"\r\n"
    for line in draw(st.lists(trailer, max_size=3)):
        out += line
        if draw(st.integers(0, 5)) == 0:
            out += b"\t" + draw(value_bytes) + b"\r\n"
    out += b"\r\n"
    out += draw(st.sampled_from([b"", b"GET / HTTP/1.1\r\n\r\n", b"\r\n"]))
    return out


def assert_same_decode(
    data: bytes, chunks: list[bytes], limits: dict[str, int], wrap: Callable[[bytes], Any]
) -> Trace:
    c_impl, py_impl = _implementations()
    expected = decode_trace(py_impl, chunks, limits, wrap)
    assert decode_trace(c_impl, chunks, limits, wrap) == expected, (data, limits)
    return expected


@given(data=chunked_bodies(), limits=trailer_limits, wrap=buffer_types, st_data=st.data())
def test_decoders_agree_on_generated_bodies(
    data: bytes, limits: dict[str, int], wrap: Callable[[bytes], Any], st_data: st.DataObject
) -> None:
    assert_same_decode(data, st_data.draw(pieces(data)), limits, wrap)


@given(data=chunked_bodies())
def test_generated_bodies_decode_to_their_data(data: bytes) -> None:
    """Sanity of the generator and of both decoders: a complete body decodes, ``done``."""
    trace = assert_same_decode(data, [data], {}, bytes)
    body, consumed, done = trace[-1]
    assert done and consumed <= len(data)
    assert data[consumed:] in (b"", b"GET / HTTP/1.1\r\n\r\n", b"\r\n")


@given(data=mutated(chunked_bodies()), limits=trailer_limits, wrap=buffer_types, st_data=st.data())
def test_decoders_agree_on_mutated_bodies(
    data: bytes, limits: dict[str, int], wrap: Callable[[bytes], Any], st_data: st.DataObject
) -> None:
    assert_same_decode(data, st_data.draw(pieces(data)), limits, wrap)


# --- serialize_response_head -----------------------------------------------------------------

latin1_text = st.text(alphabet=st.characters(max_codepoint=0xFF), max_size=12)
any_text = st.text(max_size=12)
reasons = st.sampled_from(["", " OK", " ", " Not Found", " caf\xe9", " \x01"])
statuses = st.one_of(
    st.tuples(st.integers(100, 999), reasons).map(lambda t: f"{t[0]}{t[1]}"),
    st.tuples(st.integers(100, 999), reasons).map(lambda t: f"{t[0]}{t[1]}"),
    st.tuples(st.integers(0, 1200), reasons).map(lambda t: f"{t[0]:02d}{t[1]}"),
    st.sampled_from(
        ["200 OK\r\nX: y", "2OO OK", "200OK", " 200", "200\x00", "200 \u20ac", "\uff12\uff10\uff10"]
    ),
    any_text,
)
good_headers = st.one_of(
    st.tuples(
        st.sampled_from(["Content-Length", "content-length"]),
        st.sampled_from(["0", "12", " 12 ", "\t7", str((1 << 63) - 1)]),
    ),
    st.tuples(
        st.sampled_from(["Connection", "connection"]),
        st.sampled_from(
            ["close", "Keep-Alive, close", "CLOSE", "closed", "upgrade,close ", "keep-alive"]
        ),
    ),
    st.tuples(st.just("Transfer-Encoding"), st.just("chunked")),
    st.tuples(
        token,
        st.text(
            alphabet=st.characters(max_codepoint=0xFF, exclude_characters="\r\n\x00"), max_size=12
        ),
    ),
)
bad_headers = st.one_of(
    st.tuples(st.sampled_from(["", "Bad Name", "X:Y", "N\xe9", "\u20ac"]), st.just("v")),
    st.tuples(
        st.sampled_from(["Content-Length", "X"]),
        st.sampled_from(
            ["-1", "1.5", "", "1e3", str(1 << 63), "\xb2", "a\r\nb", "a\nb", "a\x00", "\u20ac"]
        ),
    ),
    st.tuples(st.text(max_size=8), st.text(max_size=8)),
    st.tuples(st.one_of(st.just(b"X"), st.none(), st.integers()), st.just("v")),
    st.tuples(token, st.one_of(st.just(b"v"), st.none(), st.integers())),
)
headers = st.tuples(
    st.lists(good_headers, max_size=6),
    st.one_of(st.just([]), st.just([]), st.lists(bad_headers, min_size=1, max_size=2)),
    st.randoms(use_true_random=False),
).map(lambda t: t[2].sample(t[0] + t[1], len(t[0]) + len(t[1])))


def serialize_outcome(impl: ModuleType, *args: Any) -> Any:
    try:
        return impl.serialize_response_head(*args)
    except (ValueError, TypeError) as exc:
        return ("error", type(exc))


@given(
    version=st.sampled_from([b"HTTP/1.1", b"HTTP/1.0"]),
    status=statuses,
    headers=headers,
    preamble=st.sampled_from(
        [b"", b"Server: fastserve\r\nDate: Tue, 25 Nov 2025 18:00:00 GMT\r\n"]
    ),
)
def test_serializers_agree(
    version: bytes, status: str, headers: list[tuple[Any, Any]], preamble: bytes
) -> None:
    c_impl, py_impl = _implementations()
    assert serialize_outcome(c_impl, version, status, headers, preamble) == serialize_outcome(
        py_impl, version, status, headers, preamble
    )


@pytest.mark.parametrize("status", [None, 200, b"200 OK"])
def test_serializers_agree_on_a_non_str_status(status: Any) -> None:
    c_impl, py_impl = _implementations()
    args = (b"HTTP/1.1", status, [], b"")
    assert (
        serialize_outcome(c_impl, *args)
        == serialize_outcome(py_impl, *args)
        == ("error", TypeError)
    )


# Field names one case-fold away from common names: the compiled parser recognises known
# names eight bytes at a time, letting only letters differ in case (a "-" and CR differ in
# bit 0x20 alone, so do "5" and 0x15).
NEAR_MISS_NAMES = [
    b"Accept\x0dEncoding",
    b"accept\x0dencoding",
    b"X-Real\x0dIP",
    b"Sec-CH-UA\x0dMobile",
    b"Content-MD\x15",
    b"Content\x0dLength",
    b"Transfer\x0dEncoding",
    b"HOST",
    b"hOsT",
    b"USER-AGENT",
    b"user-agent",
    b"User-Agent ",
    b"User-Agen",
    b"User-Agentt",
    b"Sec-GPC",
    b"sec_gpc",
    b"X-CSRFToken",
    b"X-CSRF\x0dToken",
    b"TE",
    b"te",
    b"DNT",
    b"D\x0eT",
    b"Referer",
    b"Re\x06erer",
]


@pytest.mark.parametrize(
    "name", NEAR_MISS_NAMES, ids=lambda n: n.decode("latin-1").encode("unicode_escape").decode()
)
def test_parsers_agree_on_names_near_common_ones(name: bytes) -> None:
    data = b"GET / HTTP/1.1\r\n" + name + b": v\r\n\r\n"
    assert_same_parse(data, [data], {}, bytes)
    assert_same_parse(data, [data[i : i + 1] for i in range(len(data))], {}, bytes)
