"""Boundary agreement: fastserve frames exactly the messages nginx sends it.

Request smuggling needs a proxy and a server that disagree on where a request
ends. Each case below sends a smuggling-shaped request - the shapes of
``tests/parser/test_framing.py`` and ``test_malformed.py`` - to nginx on a fresh
connection, followed by ``GET /end`` with ``Connection: close``. nginx proxies to
a :class:`~nginx_helpers.Recorder` that keeps the bytes and passes them on to
fastserve. Then:

- nginx's access log says what nginx decided: each request's status, whether it
  went upstream, and the body nginx read;
- the bytes nginx wrote upstream, cut into messages by fastserve's parser (the
  ``parser_impl`` under test), are exactly the requests nginx forwarded: same
  number, same targets, same bodies, no byte left over;
- the app (the same parser, in the fastserve subprocess) saw exactly those
  requests;
- a request nginx refused sent no byte upstream and never reached the app.

The expected outcome of each case is nginx's own (Debian 12's nginx 1.22): it
refuses every ambiguous framing, and rewrites what it accepts into a framing of
its own (``Content-Length``, or its own chunks when it streams a body).
"""

from __future__ import annotations

import socket
from types import ModuleType
from typing import Any, NamedTuple

import pytest
from nginx_helpers import Fastserve, Nginx, Processes, Recorder, frame, recv_until_closed, wait_for

pytestmark = [pytest.mark.live, pytest.mark.nginx, pytest.mark.timeout(120)]

END = b"GET /end HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n"


class Case(NamedTuple):
    """``raw`` with ``/P1``, ``/P2`` standing for the case's targets; ``expected`` lists
    nginx's answer to each request: ``(status, body it forwards)``, ``None`` when refused."""

    raw: bytes
    expected: list[tuple[int, bytes | None]]


def post(fields: bytes, body: bytes, target: bytes = b"/P1", line_end: bytes = b"\r\n") -> bytes:
    return b"POST " + target + b" HTTP/1.1" + line_end + b"Host: h" + line_end + fields + body


CL5 = b"Content-Length: 5\r\n\r\n"
TE = b"Transfer-Encoding: chunked\r\n\r\n"
HELLO_CHUNKED = b"5\r\nhello\r\n0\r\n\r\n"
SMUGGLED = b"GET /smuggled HTTP/1.1\r\nHost: h\r\n\r\n"

FORWARDED = {
    "content_length": Case(post(CL5, b"hello"), [(200, b"hello")]),
    "chunked": Case(post(TE, HELLO_CHUNKED), [(200, b"hello")]),
    "bare_lf_head": Case(
        post(b"Content-Length: 5\n\n", b"hello", line_end=b"\n"), [(200, b"hello")]
    ),
    "bare_lf_chunked": Case(
        post(b"Transfer-Encoding: chunked\n\n", b"5\nhello\n0\n\n", line_end=b"\n"),
        [(200, b"hello")],
    ),
    "chunk_size_bare_lf": Case(post(TE, b"5\nhello\r\n0\r\n\r\n"), [(200, b"hello")]),
    "chunk_extensions": Case(post(TE, b'5;a=b;c\r\nhello\r\n0;x="y"\r\n\r\n'), [(200, b"hello")]),
    "chunk_trailer": Case(post(TE, b"5\r\nhello\r\n0\r\nX-Trailer: 1\r\n\r\n"), [(200, b"hello")]),
    "chunk_size_upper_hex_leading_zero": Case(
        post(TE, b"00A\r\n0123456789\r\n0\r\n\r\n"), [(200, b"0123456789")]
    ),
    "chunk_size_trailing_space": Case(post(TE, b"5 \r\nhello\r\n0\r\n\r\n"), [(200, b"hello")]),
    "body_looks_like_a_request": Case(
        post(b"Content-Length: %d\r\n\r\n" % len(SMUGGLED), SMUGGLED), [(200, SMUGGLED)]
    ),
    "chunk_looks_like_a_request": Case(
        post(TE, b"%x\r\n%s\r\n0\r\n\r\n" % (len(SMUGGLED), SMUGGLED)), [(200, SMUGGLED)]
    ),
    "chunk_holds_a_last_chunk": Case(
        post(TE, b"7\r\n0\r\n\r\nGE\r\n0\r\n\r\n"), [(200, b"0\r\n\r\nGE")]
    ),
    "pipelined_content_length_then_chunked": Case(
        post(CL5, b"hello") + post(TE, b"3\r\nabc\r\n0\r\n\r\n", target=b"/P2"),
        [(200, b"hello"), (200, b"abc")],
    ),
    "absolute_form": Case(
        post(CL5, b"hello", target=b"http://other.example/P1"), [(200, b"hello")]
    ),
    "expect_continue": Case(post(b"Expect: 100-continue\r\n" + CL5, b"hello"), [(200, b"hello")]),
    "get_with_body": Case(b"GET /P1 HTTP/1.1\r\nHost: h\r\n" + CL5 + b"hello", [(200, b"hello")]),
    "http10_keep_alive": Case(
        b"POST /P1 HTTP/1.0\r\nHost: h\r\nConnection: keep-alive\r\n" + CL5 + b"hello",
        [(200, b"hello")],
    ),
}

REFUSED = {
    "content_length_list": Case(post(b"Content-Length: 5, 5\r\n\r\n", b"hello"), [(400, None)]),
    "content_length_repeated": Case(
        post(b"Content-Length: 5\r\nContent-Length: 5\r\n\r\n", b"hello"), [(400, None)]
    ),
    "content_length_conflicting": Case(
        post(b"Content-Length: 5\r\nContent-Length: 6\r\n\r\n", b"hello!"), [(400, None)]
    ),
    "content_length_plus": Case(post(b"Content-Length: +5\r\n\r\n", b"hello"), [(400, None)]),
    "content_length_negative": Case(post(b"Content-Length: -1\r\n\r\n", b"hello"), [(400, None)]),
    "content_length_vtab": Case(post(b"Content-Length:\x0b5\r\n\r\n", b"hello"), [(400, None)]),
    "content_length_space_before_colon": Case(
        post(b"Content-Length : 5\r\n\r\n", b"hello"), [(400, None)]
    ),
    "content_length_obs_fold": Case(
        post(b"Content-Length:\r\n 5\r\n\r\n", b"hello"), [(400, None)]
    ),
    "te_and_content_length": Case(
        post(b"Content-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n", HELLO_CHUNKED),
        [(400, None)],
    ),
    "te_obs_fold": Case(
        post(b"Transfer-Encoding:\r\n chunked\r\n\r\n", HELLO_CHUNKED), [(400, None)]
    ),
    "te_space_before_colon": Case(
        post(b"Transfer-Encoding : chunked\r\n" + CL5, b"hello"), [(400, None)]
    ),
    "te_repeated": Case(
        post(b"Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n", HELLO_CHUNKED),
        [(400, None)],
    ),
    "te_in_http10": Case(b"POST /P1 HTTP/1.0\r\nHost: h\r\n" + TE + HELLO_CHUNKED, [(400, None)]),
    "te_gzip_chunked": Case(
        post(b"Transfer-Encoding: gzip, chunked\r\n\r\n", HELLO_CHUNKED), [(501, None)]
    ),
    "te_identity": Case(post(b"Transfer-Encoding: identity\r\n" + CL5, b"hello"), [(501, None)]),
    "te_xchunked": Case(post(b"Transfer-Encoding: xchunked\r\n\r\n", HELLO_CHUNKED), [(501, None)]),
    "te_trailing_comma": Case(
        post(b"Transfer-Encoding: chunked, \r\n\r\n", HELLO_CHUNKED), [(501, None)]
    ),
    "te_vtab": Case(post(b"Transfer-Encoding:\x0bchunked\r\n\r\n", HELLO_CHUNKED), [(501, None)]),
    "chunk_data_without_crlf": Case(post(TE, b"5\r\nhelloXX0\r\n\r\n"), [(400, None)]),
    "chunk_size_overflow": Case(
        post(TE, b"FFFFFFFFFFFFFFFFF1\r\nhello\r\n0\r\n\r\n"), [(400, None)]
    ),
    "host_obs_fold": Case(b"POST /P1 HTTP/1.1\r\nHost:\r\n h\r\n" + CL5 + b"hello", [(400, None)]),
    "host_repeated": Case(
        b"POST /P1 HTTP/1.1\r\nHost: h\r\nHost: i\r\n" + CL5 + b"hello", [(400, None)]
    ),
    "nul_in_field_value": Case(post(b"X-A: a\x00b\r\n" + CL5, b"hello"), [(400, None)]),
    "cr_in_field_value": Case(post(b"X-A: a\rb\r\n" + CL5, b"hello"), [(400, None)]),
    "body_over_client_max_body_size": Case(
        post(b"Content-Length: 20000000\r\n\r\n", b""), [(413, None)]
    ),
    "good_then_te_and_content_length": Case(
        post(CL5, b"hello")
        + post(b"Content-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n", HELLO_CHUNKED, b"/P2"),
        [(200, b"hello"), (400, None)],
    ),
}


class Through(NamedTuple):
    """What happened to one client connection's bytes."""

    log: list[dict[str, str]]  # nginx's access log entries
    upstream: list[bytes]  # bytes nginx wrote upstream, per upstream connection
    calls: list[dict[str, Any]]  # requests the app saw


@pytest.fixture(scope="module")
def recorded(module_processes: Processes) -> tuple[Nginx, Recorder, Fastserve]:
    server = module_processes.fastserve()
    recorder = module_processes.recorder(server)
    return module_processes.nginx(recorder), recorder, server


class Marks:
    """Where nginx's log, the recorded streams and the app's calls stood before a case."""

    def __init__(self, nginx: Nginx, recorder: Recorder, server: Fastserve) -> None:
        self.nginx, self.recorder, self.server = nginx, recorder, server
        self.log = len(nginx.access_log())
        self.streams = [len(stream) for stream in recorder.streams()]
        self.calls = len(server.calls())

    def since(self, log_entries: int) -> Through:
        """What happened since, once nginx has logged ``log_entries`` more requests."""
        wait_for(lambda: len(self.nginx.access_log()) >= self.log + log_entries, "nginx's log")
        streams = self.recorder.streams()
        marks = self.streams + [0] * (len(streams) - len(self.streams))
        return Through(
            log=self.nginx.access_log()[self.log :],
            upstream=[s[mark:] for s, mark in zip(streams, marks, strict=True) if s[mark:]],
            calls=self.server.calls()[self.calls :],
        )


def send(recorded: tuple[Nginx, Recorder, Fastserve], name: str, case: Case) -> Through:
    """``case`` then ``GET /end`` on a new connection to nginx, read until nginx closes.

    Once nginx has answered a request it refuses, the client ends its side: nginx
    then closes at once instead of lingering for more input (``lingering_timeout``).
    """
    nginx = recorded[0]
    marks = Marks(*recorded)
    raw = case.raw.replace(b"/P1", f"/{name}-1".encode()).replace(b"/P2", f"/{name}-2".encode())
    refusal = [b"HTTP/1.1 %d " % status for status, body in case.expected if body is None]
    with nginx.connect() as sock:
        sock.sendall(raw + END)
        received = b""
        while refusal and refusal[0] not in received:
            data = sock.recv(65536)
            assert data, f"nginx closed without {refusal[0]!r}: {received!r}"
            received += data
        if refusal:
            sock.shutdown(socket.SHUT_WR)
        recv_until_closed(sock)
    return marks.since(len(case.expected) + (0 if refusal else 1))


def forwarded_by_nginx(through: Through) -> list[tuple[str, bytes]]:
    return [(e["uri"], e["body"].encode("latin-1")) for e in through.log if e["upstream"]]


def framed(impl: ModuleType, through: Through) -> list[tuple[str, bytes]]:
    return [
        (target, body) for stream in through.upstream for _, target, body in frame(impl, stream)
    ]


def seen_by_app(through: Through) -> list[tuple[str, bytes]]:
    return [(call["uri"], call["body"].encode("latin-1")) for call in through.calls]


@pytest.mark.parametrize("name", FORWARDED)
def test_nginx_forwards_and_fastserve_frames_the_same(
    recorded: tuple[Nginx, Recorder, Fastserve], parser_impl: ModuleType, name: str
) -> None:
    case = FORWARDED[name]
    through = send(recorded, name, case)
    expected = [(f"/{name}-{i}", body) for i, (_, body) in enumerate(case.expected, 1)]
    expected.append(("/end", b""))
    assert [int(e["status"]) for e in through.log] == [200] * len(expected)
    assert forwarded_by_nginx(through) == expected
    assert framed(parser_impl, through) == expected
    assert seen_by_app(through) == expected


@pytest.mark.parametrize("name", REFUSED)
def test_what_nginx_refuses_never_reaches_fastserve(
    recorded: tuple[Nginx, Recorder, Fastserve], parser_impl: ModuleType, name: str
) -> None:
    case = REFUSED[name]
    through = send(recorded, name, case)
    assert [int(e["status"]) for e in through.log] == [status for status, _ in case.expected]
    # The requests before the refused one went through, framed alike; nothing after it did.
    expected = [
        (f"/{name}-{i}", body) for i, (_, body) in enumerate(case.expected, 1) if body is not None
    ]
    assert forwarded_by_nginx(through) == expected
    assert framed(parser_impl, through) == expected
    assert seen_by_app(through) == expected


def test_streamed_chunked_body_is_framed_as_nginx_chunks_it(
    recorded: tuple[Nginx, Recorder, Fastserve], parser_impl: ModuleType
) -> None:
    """Unbuffered, nginx forwards a body as it arrives, in chunks of its own.

    Each client chunk is sent only once nginx has forwarded everything before it, so
    nginx cannot know the length and must chunk; the chunk data holds what would end
    the message, or start another, to a parser that got the boundaries wrong.
    """
    nginx, recorder, _ = recorded
    marks = Marks(*recorded)
    pieces = [b"0\r\n\r\n", SMUGGLED, b"5\r\nhello\r\n", b"x" * 70000]
    target = "/unbuffered/streamed"
    upstream = lambda: sum(len(s) for s in recorder.streams()) - sum(marks.streams)  # noqa: E731
    with nginx.connect() as sock:
        sock.sendall(f"POST {target} HTTP/1.1\r\nHost: h\r\n".encode() + TE)
        wait_for(lambda: upstream() > 0, "nginx to forward the head")
        for piece in pieces:
            before = upstream()
            sock.sendall(b"%x\r\n%s\r\n" % (len(piece), piece))
            size = before + len(piece)
            wait_for(lambda size=size: upstream() >= size, "nginx to forward a chunk")
        sock.sendall(b"0\r\n\r\n" + END)
        recv_until_closed(sock)
    through = marks.since(2)
    body = b"".join(pieces)
    assert b"\r\nTransfer-Encoding: chunked\r\n" in b"".join(through.upstream)
    assert [int(e["status"]) for e in through.log] == [200, 200]
    assert framed(parser_impl, through) == [(target, body), ("/end", b"")]
    assert seen_by_app(through) == [(target, body), ("/end", b"")]


def test_every_upstream_byte_belongs_to_a_message(
    recorded: tuple[Nginx, Recorder, Fastserve], parser_impl: ModuleType
) -> None:
    """Each upstream connection's whole stream, all cases so far included, frames into
    exactly the requests the app saw."""
    name = "pipelined_content_length_then_chunked"
    send(recorded, name, FORWARDED[name])
    _, recorder, server = recorded
    streams = recorder.streams()
    messages = [(target, body) for s in streams for _, target, body in frame(parser_impl, s)]
    calls = [(c["uri"], c["body"].encode("latin-1")) for c in server.calls()]
    assert sorted(messages) == sorted(calls)
    assert not any("/smuggled" in target for target, _ in messages)
