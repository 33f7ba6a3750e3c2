"""Every target the parser accepts is one werkzeug's access log can read.

werkzeug 3.1's ``WSGIRequestHandler.log_request`` runs ``uri_to_iri`` on the
request target (fastserve sets ``handler.path`` to ``REQUEST_URI``); it raises
``ValueError`` for an authority ``urllib.parse.urlsplit`` cannot read (a lone
``[`` or ``]``, a port that is not 0-65535, an IPv4 address in brackets, an
``xn--`` label that is not IDNA). Such a request used to reach the app and fail
afterwards; now the absolute-form authority is validated (RFC 3986 §3.2,
docs/parsing.md) and refused with 400 before the app. Origin-form targets are
readable as they are: ``REQUEST_URI`` starts with exactly one ``/`` (a leading
run is collapsed), so ``urlsplit`` never finds a netloc in them.
"""

from __future__ import annotations

from types import ModuleType

import pytest
from helpers import environ_of
from hypothesis import example, given
from hypothesis import strategies as st
from test_differential import absolute_form, authority_form, origin_form
from werkzeug.urls import uri_to_iri

from fastserve.errors import InvalidTargetError

VISIBLE = "".join(chr(c) for c in range(0x21, 0x7F))
# the bytes that decide how urlsplit reads an authority
AUTHORITY_CHARS = "[]:@%/?#.v0189afAFxn-" + "!$&'()*+,;=_~<>\"\\^`{|}"
PREFIXES = ["/", "//", "///", "http://", "s://", "h://u@", "http://[", "http://xn--", "*"]

raw_targets = st.one_of(
    st.text(alphabet=VISIBLE, min_size=1, max_size=24),
    st.tuples(st.sampled_from(PREFIXES), st.text(alphabet=AUTHORITY_CHARS, max_size=16)).map(
        "".join
    ),
    origin_form,
    absolute_form,
)


def accepted_uri(impl: ModuleType, method: str, target: str) -> str | None:
    """REQUEST_URI of ``method target HTTP/1.1``, or None when the parser refuses it."""
    parser = impl.RequestParser()
    try:
        parser.parse(f"{method} {target} HTTP/1.1\r\nHost: x\r\n\r\n".encode("ascii"))
    except InvalidTargetError:
        return None
    except Exception as exc:  # another class: the target broke the request line's shape
        assert type(exc).__module__ == "fastserve.errors", exc
        return None
    return parser.environ["REQUEST_URI"]


@given(target=raw_targets, method=st.sampled_from(["GET", "PUT", "OPTIONS"]))
@example(target="s://]ufd/:", method="PUT")
@example(target="//]x/", method="GET")
@example(target="//[", method="GET")
@example(target="http://[::1/", method="GET")
@example(target="http://h:99999/", method="GET")
@example(target="http://xn--zz/", method="GET")
@example(target="http://[1.2.3.4]/", method="GET")
@example(target="*", method="OPTIONS")
def test_accepted_targets_are_readable_by_uri_to_iri(
    parser_impl: ModuleType, target: str, method: str
) -> None:
    uri = accepted_uri(parser_impl, method, target)
    if uri is not None:
        uri_to_iri(uri)  # must not raise


@given(target=authority_form)
def test_accepted_connect_targets_are_readable_by_uri_to_iri(
    parser_impl: ModuleType, target: str
) -> None:
    uri = accepted_uri(parser_impl, "CONNECT", target)
    if uri is not None:
        uri_to_iri(uri)


@pytest.mark.parametrize(
    ("target", "host"),
    [
        ("http://[::1]:8080/", "[::1]:8080"),
        ("http://[::ffff:1.2.3.4]/", "[::ffff:1.2.3.4]"),
        ("http://[1:2:3:4:5:6:7::]/", "[1:2:3:4:5:6:7::]"),
        ("http://[v7.a:b]/", "[v7.a:b]"),
        ("http://u:p@h:/", "h:"),
        ("http://h:0/", "h:0"),
        ("http://h:00080/", "h:00080"),
        ("http://1.2.3.4:65535/", "1.2.3.4:65535"),
        ("http://999.1.1.1/", "999.1.1.1"),  # a reg-name (RFC 3986 §3.2.2)
        ("http://%41b/", "%41b"),
        ("http://a.b-c_d~e!$&'()*+,;=/", "a.b-c_d~e!$&'()*+,;="),
        ("http://xn--bcher-kva.example/", "xn--bcher-kva.example"),
        ("http://u;x=1@h/", "h"),
        ("http://a@b@h/", "h"),
        ("http://h/p#frag[]", "h"),
        ("http://h?q=[]", "h"),
    ],
)
def test_valid_authorities_are_accepted(parser_impl: ModuleType, target: str, host: str) -> None:
    env = environ_of(parser_impl, f"GET {target} HTTP/1.1\r\n\r\n".encode("ascii"))
    assert env["HTTP_HOST"] == host
    uri_to_iri(env["REQUEST_URI"])


@pytest.mark.parametrize(
    ("target", "uri"),
    [("/[", "/["), ("//]x/", "/]x/"), ("///[", "/["), ("/a//[b]", "/a//[b]")],
)
def test_origin_form_stays_accepted_and_readable(
    parser_impl: ModuleType, target: str, uri: str
) -> None:
    """Accepted before the authority rule and readable: still accepted."""
    env = environ_of(parser_impl, f"GET {target} HTTP/1.1\r\n\r\n".encode("ascii"))
    assert env["REQUEST_URI"] == uri
    uri_to_iri(uri)
