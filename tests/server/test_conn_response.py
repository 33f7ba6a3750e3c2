"""Response framing and the WSGI response protocol (start_response, write,
exc_info, close), and responses the client does not read, on one connection
driven over a socket pair (``conn_driver``)."""

from __future__ import annotations

import socket
import sys
from collections.abc import Iterator
from typing import Any

import pytest
from conn_driver import (
    CLOSE,
    LINGER,
    PARK,
    WRITE,
    get,
    log_lines,
    masked,
    split_responses,
)
from server_helpers import LogCapture

BIG_PIECE = bytes(range(256)) * 256  # 64 KiB


def app_returning(status: str, headers: list[tuple[str, str]], body: Any) -> Any:
    def app(environ: dict[str, Any], start_response: Any) -> Any:
        start_response(status, headers)
        return body() if callable(body) else body

    return app


def test_list_body_gets_content_length(drive: Any) -> None:
    drv = drive(app_returning("200 OK", [("Content-Type", "text/plain")], [b"one", b"two"]))
    data = drv.exchange(get())
    assert masked(data) == (
        b"HTTP/1.1 200 OK\r\nServer: *\r\nDate: *\r\nContent-Type: text/plain\r\n"
        b"Content-Length: 6\r\n\r\nonetwo"
    )
    assert drv.state == PARK


def test_empty_list_body_is_an_empty_content_length_body(drive: Any) -> None:
    drv = drive(app_returning("200 OK", [], []))
    (resp,) = split_responses(drv.exchange(get()))
    assert resp.header("Content-Length") == "0" and resp.body == b""
    assert drv.state == PARK


def test_generator_body_is_chunked_on_http11(drive: Any) -> None:
    def body() -> Iterator[bytes]:
        yield b"0\n"
        yield b""  # no empty chunk: it would end the body
        yield b"1\n"

    drv = drive(app_returning("200 OK", [], body))
    data = drv.exchange(get())
    assert masked(data) == (
        b"HTTP/1.1 200 OK\r\nServer: *\r\nDate: *\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"2\r\n0\n\r\n2\r\n1\n\r\n0\r\n\r\n"
    )
    assert drv.state == PARK


def test_generator_body_close_delimited_on_http10_server(drive: Any) -> None:
    def body() -> Iterator[bytes]:
        yield b"0\n"
        yield b"1\n"

    drv = drive(app_returning("200 OK", [], body), threaded=False)
    data = drv.exchange(get())
    assert drv.state == CLOSE
    assert masked(data) == (
        b"HTTP/1.0 200 OK\r\nServer: *\r\nDate: *\r\nConnection: close\r\n\r\n0\n1\n"
    )


def test_generator_with_content_length_is_not_chunked(drive: Any) -> None:
    drv = drive(app_returning("200 OK", [("Content-Length", "4")], lambda: iter([b"ab", b"cd"])))
    responses = split_responses(drv.exchange(get() + get()))
    assert [(r.header("Transfer-Encoding"), r.body) for r in responses] == [(None, b"abcd")] * 2
    assert drv.state == PARK


def test_app_transfer_encoding_is_close_delimited(drive: Any) -> None:
    drv = drive(app_returning("200 OK", [("Transfer-Encoding", "gzip")], lambda: iter([b"zz"])))
    data = drv.exchange(get())
    assert drv.state == CLOSE
    (resp,) = split_responses(data, eof=True)
    assert resp.header("Connection") == "close" and resp.body == b"zz"


def test_head_sends_no_body(drive: Any) -> None:
    drv = drive(app_returning("200 OK", [("Content-Length", "5")], [b"hello"]))
    data = drv.exchange(get(method="HEAD") + get())
    head, follow = split_responses(data, methods=["HEAD", "GET"])
    assert head.header("Content-Length") == "5" and head.body == b""
    assert follow.body == b"hello"  # no stray body bytes between the two
    assert drv.state == PARK


def test_head_of_a_generator_is_neither_chunked_nor_closed(drive: Any) -> None:
    drv = drive(app_returning("200 OK", [], lambda: iter([b"a", b"b"])))
    data = drv.exchange(get(method="HEAD"))
    assert masked(data) == b"HTTP/1.1 200 OK\r\nServer: *\r\nDate: *\r\n\r\n"
    assert drv.state == PARK


@pytest.mark.parametrize("status", ["204 No Content", "304 Not Modified"])
def test_no_body_statuses_send_no_body_and_keep_alive(drive: Any, status: str) -> None:
    drv = drive(app_returning(status, [], [b"ignored"]))
    data = drv.exchange(get() * 2)
    assert masked(data) == (b"HTTP/1.1 %s\r\nServer: *\r\nDate: *\r\n\r\n" % status.encode()) * 2
    assert drv.state == PARK


def test_write_callable_streams_before_the_iterable(drive: Any) -> None:
    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        write = start_response("200 OK", [])
        write(b"first ")
        write(b"")
        return [b"second"]

    drv = drive(app)
    data = drv.exchange(get() + get())
    assert [r.body for r in split_responses(data)] == [b"first second"] * 2
    assert data.count(b"Transfer-Encoding: chunked") == 2
    assert drv.state == PARK


def test_exc_info_before_headers_sent_replaces_the_status(drive: Any) -> None:
    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        start_response("200 OK", [("X-A", "1")])
        try:
            raise ValueError("x")
        except ValueError:
            start_response("500 Oops", [("X-B", "2")], sys.exc_info())
        return [b"err"]

    (resp,) = split_responses(drive(app).exchange(get()))
    assert resp.status == 500 and resp.reason == "Oops"
    assert resp.header("X-A") is None and resp.header("X-B") == "2"


def test_exc_info_after_headers_sent_reraises_and_truncates(drive: Any, logs: LogCapture) -> None:
    def app(environ: dict[str, Any], start_response: Any) -> Iterator[bytes]:
        start_response("200 OK", [])
        yield b"partial"
        try:
            raise ValueError("late")
        except ValueError:
            start_response("500 Oops", [], sys.exc_info())
        yield b"never"

    drv = drive(app)
    data = drv.exchange(get())
    assert drv.state == CLOSE
    (resp,) = split_responses(data, eof=True)
    assert resp.status == 200 and resp.body == b"partial" and not resp.complete
    error = [m for m in logs.messages if m.startswith("Error on request:")]
    assert len(error) == 1 and "ValueError: late" in error[0]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("twice", "AssertionError: Headers already set"),
        ("before", "AssertionError: write() before start_response"),
        ("text", "AssertionError: applications must write bytes"),
        ("crlf", "ValueError"),
        ("status", "Error on request"),
    ],
)
def test_app_mistakes_before_the_head_are_a_500(
    drive: Any, logs: LogCapture, body: str, message: str
) -> None:
    def app(environ: dict[str, Any], start_response: Any) -> list[Any]:
        if body == "twice":
            start_response("200 OK", [])
            start_response("200 OK", [])
        elif body == "text":
            start_response("200 OK", [])
            return ["text"]
        elif body == "crlf":
            start_response("200 OK", [("X-Evil", "a\r\nSet-Cookie: stolen=1")])
        elif body == "status":
            start_response("abc def", [])
        return [b"body"] if body != "before" else ["not bytes"]

    drv = drive(app)
    data = drv.exchange(get() + get("/never"))
    assert drv.state == CLOSE  # the pipelined request is not answered
    (resp,) = split_responses(data)
    assert resp.status == 500 and resp.reason == "INTERNAL SERVER ERROR"
    assert resp.header("Connection") == "close"
    assert b"stolen" not in data
    errors = [m for m in logs.messages if m.startswith("Error on request:\nTraceback")]
    assert len(errors) == 1 and message in errors[0]


def test_app_error_before_first_byte_is_a_500_page(drive: Any, logs: LogCapture) -> None:
    def body() -> Iterator[bytes]:
        yield b""
        raise RuntimeError("boom")

    drv = drive(app_returning("200 OK", [("X-Never", "1")], body))
    data = drv.exchange(get())
    assert drv.state == CLOSE
    (resp,) = split_responses(data)
    assert resp.status == 500 and resp.reason == "INTERNAL SERVER ERROR"
    assert b"Internal Server Error" in resp.body
    assert resp.header("X-Never") is None
    assert resp.header("Connection") == "close"
    lines = log_lines(logs)
    assert lines[0] == '"GET / HTTP/1.1" 500 -'  # the access line first, as werkzeug
    assert lines[1].startswith("Error on request:\nTraceback")
    assert "RuntimeError: boom" in lines[1]
    assert len(lines) == 2


def test_app_error_after_the_head_closes_the_connection(drive: Any, logs: LogCapture) -> None:
    def body() -> Iterator[bytes]:
        yield b"first"
        raise RuntimeError("midway")

    drv = drive(app_returning("200 OK", [], body))
    data = drv.exchange(get() + get("/never"))
    assert drv.state == CLOSE
    # the chunked body has no last chunk: the client sees the truncation
    assert masked(data) == (
        b"HTTP/1.1 200 OK\r\nServer: *\r\nDate: *\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"5\r\nfirst\r\n"
    )
    lines = log_lines(logs)
    assert lines[0] == '"GET / HTTP/1.1" 200 -'
    assert lines[1].startswith("Error on request:") and "RuntimeError: midway" in lines[1]


def test_status_without_reason_phrase(drive: Any) -> None:
    (resp,) = split_responses(drive(app_returning("299", [], [b""])).exchange(get()))
    assert resp.status == 299 and resp.head.startswith(b"HTTP/1.1 299\r\n")


def test_app_connection_close_is_honoured(drive: Any) -> None:
    drv = drive(app_returning("200 OK", [("Connection", "close")], [b"bye"]))
    data = drv.exchange(get() + get())
    assert drv.state == LINGER
    assert data.count(b"HTTP/1.1 200") == 1
    assert data.count(b"Connection: close") == 1


class Closing:
    def __init__(self, parts: list[bytes], fail: bool = False) -> None:
        self.parts = parts
        self.fail = fail
        self.closed = 0

    def __iter__(self) -> Iterator[bytes]:
        yield from self.parts
        if self.fail:
            raise RuntimeError("in the middle")

    def close(self) -> None:
        self.closed += 1


@pytest.mark.parametrize("fail", [False, True])
def test_iterable_close_is_called_once(drive: Any, fail: bool) -> None:
    body = Closing([b"a", b"b"], fail=fail)
    drv = drive(app_returning("200 OK", [], body))
    drv.exchange(get())
    assert drv.state == (CLOSE if fail else PARK)
    assert body.closed == 1


def test_close_raising_after_a_cut_is_logged(drive: Any, logs: LogCapture) -> None:
    class BadClose(Closing):
        def close(self) -> None:
            raise RuntimeError("close failed")

    drv = drive(app_returning("200 OK", [], BadClose([b"a"], fail=True)))
    drv.exchange(get())
    assert drv.state == CLOSE
    assert any(
        m.startswith("Error closing the response:") and "close failed" in m for m in logs.messages
    )


@pytest.mark.parametrize(
    ("returns", "sent", "received", "lines"),
    [
        # a list: the whole body is known when the head is built, so the line
        # comes first, and a short body is announced with Connection: close
        (
            "list",
            b"12345",
            b"12345",
            [
                "The application sent 5 bytes of its Content-Length 10; the connection is closed",
                '"GET / HTTP/1.1" 200 -',
            ],
        ),
        (
            "list",
            b"x" * 20,
            b"x" * 10,
            [
                "The application sent 20 bytes of its Content-Length 10; the connection is closed",
                '"GET / HTTP/1.1" 200 -',
            ],
        ),
        (
            "generator",
            b"12345",
            b"12345",
            [
                '"GET / HTTP/1.1" 200 -',
                "The application sent 5 bytes of its Content-Length 10; the connection is closed",
            ],
        ),
        (
            "generator",
            b"x" * 20,
            b"x" * 10,
            [
                '"GET / HTTP/1.1" 200 -',
                "The application sent more than its Content-Length 10; the connection is closed",
            ],
        ),
    ],
    ids=["list-too-short", "list-too-long", "generator-too-short", "generator-too-long"],
)
def test_content_length_mismatch_closes_with_one_log_line(
    drive: Any, logs: LogCapture, returns: str, sent: bytes, received: bytes, lines: list[str]
) -> None:
    body = [sent] if returns == "list" else lambda: iter([sent])
    drv = drive(app_returning("200 OK", [("Content-Length", "10")], body))
    data = drv.exchange(get())
    assert drv.state == CLOSE  # at once, not after keep_alive_timeout
    (resp,) = split_responses(data, eof=True)
    assert resp.status == 200 and resp.body == received
    if returns == "list" and len(sent) < 10:
        assert resp.header("Connection") == "close"
    assert log_lines(logs) == lines


@pytest.mark.parametrize("method", ["GET", "HEAD"])
def test_large_list_body_goes_out_whole_with_its_length(drive: Any, method: str) -> None:
    # more than JOIN_LIMIT: sent piece by piece as the socket drains
    pieces = [BIG_PIECE, b"middle", BIG_PIECE, BIG_PIECE]
    drv = drive(app_returning("200 OK", [], pieces), sndbuf=16384)
    drv.send(get(method=method) * 2)  # pipelined
    drv.run()
    if method == "GET":
        assert drv.state == WRITE and drv.conn.writing
    data = drv.read_while_writing()
    assert drv.state == PARK
    responses = split_responses(data, methods=[method] * 2)
    assert len(responses) == 2
    for resp in responses:
        if method == "GET":
            assert resp.header("Content-Length") == str(sum(map(len, pieces)))
            assert resp.body == b"".join(pieces)
        else:  # as for a small list: no framing headers, no body
            assert resp.header("Content-Length") is None
            assert resp.body == b""


def test_large_list_body_longer_than_declared_is_cut(drive: Any) -> None:
    drv = drive(app_returning("200 OK", [("Content-Length", "70000")], [BIG_PIECE, BIG_PIECE]))
    drv.send(get() + get())
    drv.run()
    data = drv.read_while_writing()
    assert drv.state in (CLOSE, LINGER)
    (resp,) = split_responses(data)
    assert resp.header("Connection") == "close"
    assert resp.body == (BIG_PIECE * 2)[:70000]


def test_large_list_with_a_non_bytes_piece_is_a_500(drive: Any) -> None:
    drv = drive(app_returning("200 OK", [], [BIG_PIECE, BIG_PIECE, "text"]))
    (resp,) = split_responses(drv.exchange(get()))
    assert resp.status == 500


class Recording:
    """A response iterable of ``count`` pieces that records how far it was pulled."""

    def __init__(self, count: int, piece: bytes = BIG_PIECE) -> None:
        self.count = count
        self.piece = piece
        self.pulled = 0
        self.closed = 0

    def __iter__(self) -> Iterator[bytes]:
        for i in range(self.count):
            self.pulled += 1
            yield self.piece[:-1] + bytes([i])

    def close(self) -> None:
        self.closed += 1


def test_a_client_not_reading_parks_the_response_and_pulls_no_further(drive: Any) -> None:
    stream = Recording(32)
    drv = drive(app_returning("200 OK", [], stream), sndbuf=16384)
    drv.send(get())
    assert drv.run() == WRITE
    assert drv.conn.writing and drv.conn.parked
    pulled = stream.pulled
    assert 1 <= pulled < 32
    # at most the head plus the piece yielded last wait in the connection
    assert sum(len(d) for d in drv.conn.out) <= len(BIG_PIECE) + 4096
    assert not drv.ready()  # nothing drained: the engine does not wake it
    assert stream.pulled == pulled
    data = drv.read_while_writing()
    assert drv.state == PARK and stream.closed == 1
    (resp,) = split_responses(data)
    assert resp.body == b"".join(BIG_PIECE[:-1] + bytes([i]) for i in range(32))


def test_a_stalled_response_is_cut_at_its_deadline(drive: Any, logs: LogCapture) -> None:
    stream = Recording(32)
    drv = drive(app_returning("200 OK", [], stream), sndbuf=16384, send_timeout=20.0)
    drv.send(get())
    assert drv.run() == WRITE
    stalled = drv.conn.stalled_since
    assert drv.conn.deadline == stalled + 20.0
    assert not drv.sweep(stalled + 19.9)
    drv.expire()
    assert stream.closed == 1
    assert log_lines(logs) == [
        '"GET / HTTP/1.1" 200 -',
        "Client did not read the response in time; closing the connection",
    ]
    data = drv.read_to_eof()
    assert len(data) < 32 * len(BIG_PIECE)


def test_progress_moves_the_send_deadline_by_the_minimum_rate(drive: Any) -> None:
    body = b"z" * (1 << 20)  # one piece: the same stall until it is all sent
    drv = drive(
        app_returning("200 OK", [], lambda: iter([body])),
        sndbuf=16384,
        send_timeout=20.0,
        send_min_rate=500.0,
    )
    drv.send(get())
    assert drv.run() == WRITE
    conn = drv.conn
    stalled = conn.stalled_since
    assert conn.deadline == stalled + 20.0
    received = len(drv.read())
    assert drv.run() == WRITE  # writable again: more was sent, the rest waits
    assert conn.stalled_since == stalled and conn.stalled_sent > 0
    assert conn.deadline == stalled + 20.0 + conn.stalled_sent / 500.0
    received += len(drv.read_while_writing())
    assert drv.state == PARK
    assert received > len(body)


def test_pipelined_responses_never_lose_bytes_while_the_client_is_slow(drive: Any) -> None:
    """Every byte the application wrote (write() and the iterable, list and
    generator) arrives, in order, while the connection goes back and forth
    between WRITE and serving the next pipelined request."""

    def app(environ: dict[str, Any], start_response: Any) -> Any:
        n = int(environ["PATH_INFO"][1:])
        write = start_response("200 OK", [])
        write(b"w%d:" % n)
        piece = bytes([65 + n]) * 50_000
        if n % 2:
            return [piece, piece]
        return iter([piece, b"", piece, b"end"])

    drv = drive(app, sndbuf=8192)
    drv.send(b"".join(get(f"/{n}") for n in range(6)))
    drv.run()
    data = drv.read_while_writing()
    assert drv.state == PARK
    assert WRITE in drv.states
    responses = split_responses(data)
    assert len(responses) == 6
    for n, resp in enumerate(responses):
        piece = bytes([65 + n]) * 50_000
        tail = b"end" if n % 2 == 0 else b""
        assert resp.body == b"w%d:" % n + piece + piece + tail


def test_iterable_body_completing_its_content_length_is_one_send(drive: Any) -> None:
    """Flask's response (a ClosingIterator, Content-Length set): head and body
    go out in one send, and the exhausted iterator sends nothing more (over a
    socket pair that keeps the server's sends apart)."""
    drv = drive(
        app_returning(
            "200 OK",
            [("Content-Type", "text/plain"), ("Content-Length", "5")],
            lambda: iter([b"hello"]),
        ),
        socktype=socket.SOCK_SEQPACKET,
    )
    for _ in range(2):
        drv.send(get())
        drv.run()
        (sent,) = drv.sends()
        assert sent.startswith(b"HTTP/1.1 200 OK\r\n")
        assert sent.endswith(b"\r\n\r\nhello")


def test_passthrough_errors_reraise_and_the_connection_is_dropped(drive: Any) -> None:
    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        raise KeyError("through")

    drv = drive(app, passthrough_errors=True)
    drv.send(get())
    with pytest.raises(KeyError, match="through"):
        drv.run()
    assert drv.closed
    assert drv.read_to_eof() == b""


def test_a_slow_steady_reader_is_not_cut(
    drive: Any, logs: LogCapture, monkeypatch: pytest.MonkeyPatch
) -> None:
    """At the deadline, what the kernel delivered from its send queue counts as
    progress (SIOCOUTQ: the socket stays unwritable until a large kernel buffer
    has half drained, so the server's own sends undercount a steady reader)."""
    from fastserve import _transport

    queued = [8 << 20]
    reading = [True]

    def fake_queued_bytes(sock: socket.socket) -> int:
        if reading[0]:
            queued[0] -= 4096  # the client took 4 KiB since the last look
        return queued[0]

    monkeypatch.setattr(_transport, "queued_bytes", fake_queued_bytes)
    drv = drive(
        app_returning("200 OK", [], [BIG_PIECE] * 128),
        sndbuf=16384,
        send_timeout=0.2,
        send_min_rate=500,
    )
    drv.send(get())
    assert drv.run() == WRITE
    conn = drv.conn
    for _ in range(3):  # sweeps past the deadline while the client reads
        deadline = conn.deadline
        assert not drv.sweep(deadline + 0.001)
        assert conn.deadline > deadline  # moved by the bytes delivered
    assert "did not read the response in time" not in logs.text()
    reading[0] = False  # now it stops reading
    assert drv.sweep(conn.deadline + 0.001)
    assert log_lines(logs)[-1] == (
        "Client did not read the response in time; closing the connection"
    )


def _writer_app(size: int) -> Any:
    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        write = start_response("200 OK", [("Content-Length", str(size))])
        write(b"w" * size)  # blocks this thread until the socket took it
        return []

    return app


def test_write_callable_blocks_until_a_slow_client_took_it(drive: Any) -> None:
    size = 1 << 20
    drv = drive(_writer_app(size), sndbuf=16384)
    received: list[bytes] = []

    def client(sock: Any) -> None:
        received.append(recv_response(sock, size))

    drv.send(get())
    drv.client_thread(client)
    assert drv.run() == PARK
    drv.join_clients()
    (resp,) = split_responses(received[0])
    assert resp.body == b"w" * size


def recv_response(sock: Any, size: int) -> bytes:
    """The client reads a head and a ``size``-byte body (a timeout per read)."""
    sock.settimeout(5.0)
    data = b""
    while b"\r\n\r\n" not in data or len(data) - data.index(b"\r\n\r\n") - 4 < size:
        chunk = sock.recv(65536)
        assert chunk, data[:200]
        data += chunk
    return data


def test_write_callable_to_a_client_not_reading_is_cut_at_send_timeout(
    drive: Any, logs: LogCapture
) -> None:
    """A real wait of send_timeout (0.2 s): write() blocks the application's
    thread, the client takes nothing, the connection is dropped with a line."""
    drv = drive(_writer_app(1 << 20), sndbuf=16384, send_timeout=0.2)
    drv.send(get())
    assert drv.run() == CLOSE
    lines = log_lines(logs)
    assert lines[0] == '"GET / HTTP/1.1" 200 -'
    assert lines[1] == (
        "Client disconnected while sending the response: timed out sending the response"
    )
    assert len(lines) == 2
