"""Successive heads on one parser: each gives what a new parser gives for it alone.

A keep-alive connection parses all its heads with one ``RequestParser``. The compiled
parser keeps what it built for the previous head (docs/parsing.md, "Successive heads"):
the value strs (reused when a value comes again byte for byte), the keys of the fields,
and, once two heads in a row had the same names in the same order, the environ's shape.
None of that may show: every head must give exactly what a new parser would (results,
environ, key order), whatever came before it, whatever the app did to the previous
environ, and whatever ``set_base`` was given between heads. The pure-Python twin keeps
nothing; both run every test.
"""

from __future__ import annotations

from types import ModuleType
from typing import Any

from helpers import summary
from hypothesis import given
from hypothesis import strategies as st

from fastserve.errors import HTTPParseError

BASE: dict[str, Any] = {
    "wsgi.version": (1, 0),
    "wsgi.url_scheme": "http",
    "SERVER_NAME": "127.0.0.1",
    "SERVER_PORT": "5000",
    "REMOTE_ADDR": "127.0.0.1",
    "REMOTE_PORT": 54321,
}
OTHER_BASE: dict[str, Any] = {**BASE, "REMOTE_ADDR": "10.0.0.7", "REMOTE_PORT": 40000}

CHROME = [
    (b"Host", b"www.example.com"),
    (b"Connection", b"keep-alive"),
    (b"User-Agent", b"Mozilla/5.0 (X11; Linux x86_64) Chrome/124.0.0.0"),
    (b"Accept", b"text/html,*/*;q=0.8"),
    (b"X-Custom-Thing", b"one"),
    (b"Accept-Language", b"en-US,en;q=0.9"),
    (b"Cookie", b"sessionid=k3j4h5g6f7d8s9a0"),
]


def head(fields: list[tuple[bytes, bytes]], target: bytes = b"/", method: bytes = b"GET") -> bytes:
    lines = [method + b" " + target + b" HTTP/1.1"]
    lines += [name + b": " + value for name, value in fields]
    return b"\r\n".join(lines) + b"\r\n\r\n"


def outcome(parser: Any, data: bytes) -> Any:
    """The results of one complete head (with the environ's key order), or its error."""
    try:
        consumed = parser.parse(data)
    except HTTPParseError as exc:
        parser.reset()
        return ("error", type(exc), str(exc))
    assert consumed == len(data)
    return summary(parser), list(parser.environ)


def fresh(impl: ModuleType, data: bytes, base: dict[str, Any] | None = BASE) -> Any:
    parser = impl.RequestParser()
    if base is not None:
        parser.set_base(base)
    return outcome(parser, data)


def assert_each_as_new(impl: ModuleType, heads: list[bytes]) -> None:
    parser = impl.RequestParser()
    parser.set_base(BASE)
    for i, data in enumerate(heads):
        assert outcome(parser, data) == fresh(impl, data), (i, data)


def test_the_same_head_again_and_again(parser_impl: ModuleType) -> None:
    data = head(CHROME, b"/poll?since=5")
    assert_each_as_new(parser_impl, [data] * 5)


def test_each_environ_is_a_new_dict_whatever_the_app_did_to_the_last(
    parser_impl: ModuleType,
) -> None:
    data = head(CHROME, b"/a?b=1")
    expected = fresh(parser_impl, data)
    parser = parser_impl.RequestParser()
    parser.set_base(BASE)
    previous = None
    for _ in range(4):
        assert outcome(parser, data) == expected
        environ = parser.environ
        assert environ is not previous
        # what apps and middleware do to their environ
        environ["HTTP_ACCEPT"] = "changed"
        environ["PATH_INFO"] = "/rewritten"
        del environ["HTTP_COOKIE"]
        environ["werkzeug.request"] = object()
        previous = environ


def test_values_that_change_at_the_same_length_or_another(parser_impl: ModuleType) -> None:
    heads = []
    for i in range(6):
        fields = list(CHROME)
        fields[3] = (b"Accept", b"text/html,*/*;q=0." + str(i % 3).encode())  # same length
        fields[6] = (b"Cookie", b"sessionid=" + b"x" * i)  # another length
        if i % 2:
            fields[4] = (b"X-Custom-Thing", b"\xe9t\xe9")  # obs-text
        heads.append(head(fields, b"/item/%d?page=%d" % (i % 2, i)))
    assert_each_as_new(parser_impl, heads)


def test_a_value_changed_once_then_repeated(parser_impl: ModuleType) -> None:
    fields = list(CHROME)
    changed = [*fields[:6], (b"Cookie", b"sessionid=new")]
    heads = [head(fields)] * 3 + [head(changed)] * 3 + [head(fields)] * 2
    assert_each_as_new(parser_impl, heads)


def test_names_added_removed_moved_or_recased(parser_impl: ModuleType) -> None:
    fields = list(CHROME)
    heads = [
        head(fields),
        head(fields),
        head(fields[:-1]),  # one less
        head(fields[:-1]),
        head([*fields, (b"Referer", b"https://www.example.com/")]),  # one more
        head([fields[1], fields[0], *fields[2:]]),  # two swapped
        head([(name.upper(), value) for name, value in fields]),  # the same keys
        head([(name.lower(), value) for name, value in fields]),
        head([(b"X-Other-Thing" if n == b"X-Custom-Thing" else n, v) for n, v in fields]),
        head(fields),
    ]
    assert_each_as_new(parser_impl, heads)


def test_repeated_dropped_and_folded_fields_between_plain_heads(parser_impl: ModuleType) -> None:
    fields = list(CHROME)
    plain = head(fields)
    repeated = head([*fields, (b"Accept", b"image/webp")])  # joined with ","
    dropped = head([*fields[:4], (b"X_Custom_Thing", b"two"), *fields[5:]])  # the same key
    folded = plain.replace(b"Cookie: ", b"Cookie:\r\n  ")
    heads = [plain, plain, repeated, repeated, plain, plain, dropped, dropped, plain, plain]
    heads += [folded, folded, plain, plain, plain]
    assert_each_as_new(parser_impl, heads)


def test_framing_fields_are_read_from_every_head(parser_impl: ModuleType) -> None:
    fields = [(b"Host", b"h"), (b"Content-Length", b"5"), (b"Connection", b"keep-alive")]
    heads = [head(fields, method=b"POST")] * 3
    heads += [head([fields[0], (b"Content-Length", b"7"), (b"Connection", b"close")])] * 2
    heads += [head([fields[0], (b"Content-Length", b"5, 5"), fields[2]])] * 2
    heads += [head([fields[0], (b"Content-Length", b"x"), fields[2]])]  # 400
    heads += [head(fields, method=b"POST")] * 2
    heads += [head([fields[0], (b"Expect", b"100-continue"), fields[2]])] * 2
    assert_each_as_new(parser_impl, heads)


def test_the_request_line_of_every_head(parser_impl: ModuleType) -> None:
    heads = [
        head(CHROME, b"/a?x=1"),
        head(CHROME, b"/a?x=1"),
        head(CHROME, b"/a"),  # the query gone
        head(CHROME, b"/a%20b?x=1"),
        head(CHROME, b"/a?x=1", b"POST"),
        head(CHROME, b"http://other.example/a?x=1"),  # its authority replaces Host
        head(CHROME, b"*", b"OPTIONS"),
        head(CHROME, b"/a?x=1").replace(b"HTTP/1.1", b"HTTP/1.0", 1),
        head(CHROME, b"/a?x=1"),
    ]
    assert_each_as_new(parser_impl, heads)


def test_set_base_between_heads(parser_impl: ModuleType) -> None:
    data = head(CHROME)
    parser = parser_impl.RequestParser()
    parser.set_base(BASE)
    for _ in range(3):
        assert outcome(parser, data) == fresh(parser_impl, data)
    parser.set_base(OTHER_BASE)
    for _ in range(3):
        assert outcome(parser, data) == fresh(parser_impl, data, OTHER_BASE)
    parser.set_base({})
    assert outcome(parser, data) == fresh(parser_impl, data, None)


def test_more_fields_than_are_kept(parser_impl: ModuleType) -> None:
    fields = [(b"X-Field-%d" % i, b"value %d" % i) for i in range(40)]
    heads = [head(fields)] * 3 + [head([*fields[:35], (b"X-Field-35", b"other")])] * 2
    assert_each_as_new(parser_impl, heads)


# --- generated: what one client sends on one connection --------------------------------------

NAMES = [
    b"Host",
    b"User-Agent",
    b"Accept",
    b"accept",
    b"Cookie",
    b"Referer",
    b"Connection",
    b"Content-Type",
    b"Expect",
    b"X-Request-Id",
    b"X-Custom",
    b"x-custom",
    b"X_Custom",
]
values = st.one_of(
    st.sampled_from([b"", b"a", b"b", b"ab", b"keep-alive", b"close", b"100-continue"]),
    st.binary(max_size=6).map(lambda v: bytes(c for c in v if c >= 0x20 and c != 0x7F)),
)
targets = st.sampled_from([b"/", b"/a", b"/a?q", b"/a?r", b"/%41", b"//x", b"http://h/a"])


@st.composite
def connections(draw: st.DrawFn) -> list[bytes]:
    """A client's heads: each one most often the last with a value or two changed, now and
    then with a field added, removed or moved, or the target changed."""
    fields = draw(st.lists(st.tuples(st.sampled_from(NAMES), values), min_size=1, max_size=8))
    target = draw(targets)
    heads = []
    for _ in range(draw(st.integers(2, 8))):
        edit = draw(st.sampled_from(["same", "same", "value", "value", "add", "remove", "move"]))
        if edit == "value":
            at = draw(st.integers(0, len(fields) - 1))
            fields[at] = (fields[at][0], draw(values))
        elif edit == "add":
            at = draw(st.integers(0, len(fields)))
            fields.insert(at, (draw(st.sampled_from(NAMES)), draw(values)))
        elif edit == "remove" and len(fields) > 1:
            del fields[draw(st.integers(0, len(fields) - 1))]
        elif edit == "move":
            fields.append(fields.pop(draw(st.integers(0, len(fields) - 1))))
        if draw(st.integers(0, 4)) == 0:
            target = draw(targets)
        heads.append(head(fields, target))
    return heads


@given(heads=connections())
def test_generated_connections(parser_impl: ModuleType, heads: list[bytes]) -> None:
    assert_each_as_new(parser_impl, heads)
