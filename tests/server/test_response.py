"""Response framing and the WSGI response protocol (start_response, write,
exc_info, close), over loopback sockets."""

from __future__ import annotations

import http.client
import re
import socket
import sys
import threading
import time
from typing import Any

import pytest
from server_helpers import Reader, recv_all

pytestmark = pytest.mark.live


def get(srv: Any, path: str = "/", method: str = "GET", extra: str = "") -> Any:
    with srv.connect() as s:
        s.sendall(f"{method} {path} HTTP/1.1\r\nHost: x\r\n{extra}\r\n".encode())
        return Reader(s).response(head_only=method == "HEAD")


def test_list_body_gets_content_length_date_and_server(serve: Any) -> None:
    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"one", b"two"]

    resp = get(serve(app))
    assert resp.body == b"onetwo"
    assert resp.header("Content-Length") == "6"
    assert resp.header("Server").startswith("fastserve/")
    assert re.fullmatch(r"\w{3}, \d\d \w{3} \d{4} \d\d:\d\d:\d\d GMT", resp.header("Date"))
    names = [k for k, _ in resp.headers]
    assert names[:2] == ["Server", "Date"]


def test_generator_body_is_chunked_on_http11(serve: Any) -> None:
    def app(environ: dict[str, Any], start_response: Any) -> Any:
        start_response("200 OK", [])
        yield b"0\n"
        yield b""
        yield b"1\n"

    resp = get(serve(app))
    assert resp.header("Transfer-Encoding") == "chunked"
    assert resp.body == b"0\n1\n"


def test_generator_body_close_delimited_on_http10_server(serve: Any) -> None:
    def app(environ: dict[str, Any], start_response: Any) -> Any:
        start_response("200 OK", [])
        yield b"0\n"
        yield b"1\n"

    srv = serve(app, threaded=False)
    with srv.connect() as s:
        s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        data = recv_all(s)
    head, _, body = data.partition(b"\r\n\r\n")
    assert b"Connection: close" in head and b"Transfer-Encoding" not in head
    assert body == b"0\n1\n"


def test_head_sends_no_body(serve: Any) -> None:
    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        start_response("200 OK", [("Content-Length", "5")])
        return [b"hello"]

    srv = serve(app)
    with srv.connect() as s:
        reader = Reader(s)
        s.sendall(b"HEAD / HTTP/1.1\r\nHost: x\r\n\r\nGET / HTTP/1.1\r\nHost: x\r\n\r\n")
        head = reader.response(head_only=True)
        assert head.header("Content-Length") == "5"
        follow = reader.response()
        assert follow.body == b"hello"  # no stray body bytes between the two


@pytest.mark.parametrize("status", ["204 No Content", "304 Not Modified"])
def test_no_body_statuses_send_no_body_and_keep_alive(serve: Any, status: str) -> None:
    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        start_response(status, [])
        return [b"ignored"]

    srv = serve(app)
    with srv.connect() as s:
        reader = Reader(s)
        s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n" * 2)
        for _ in range(2):
            resp = reader.response()
            assert resp.status == int(status[:3])
            assert resp.header("Content-Length") is None
            assert resp.header("Transfer-Encoding") is None


def test_write_callable_streams_before_the_iterable(serve: Any) -> None:
    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        write = start_response("200 OK", [])
        write(b"first ")
        return [b"second"]

    resp = get(serve(app))
    assert resp.body == b"first second"


def test_exc_info_before_headers_sent_replaces_the_status(serve: Any) -> None:
    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        start_response("200 OK", [("X-A", "1")])
        try:
            raise ValueError("x")
        except ValueError:
            start_response("500 Oops", [("X-B", "2")], sys.exc_info())
        return [b"err"]

    resp = get(serve(app))
    assert resp.status == 500 and resp.reason == "Oops"
    assert resp.header("X-A") is None and resp.header("X-B") == "2"


def test_exc_info_after_headers_sent_reraises_and_truncates(serve: Any, logs: Any) -> None:
    def app(environ: dict[str, Any], start_response: Any) -> Any:
        start_response("200 OK", [])
        yield b"partial"
        try:
            raise ValueError("late")
        except ValueError:
            start_response("500 Oops", [], sys.exc_info())
        yield b"never"

    srv = serve(app)
    conn = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=5)
    conn.request("GET", "/")
    resp = conn.getresponse()
    assert resp.status == 200
    with pytest.raises(http.client.IncompleteRead) as exc:
        resp.read()
    assert exc.value.partial == b"partial"
    conn.close()
    assert "ValueError: late" in logs.wait_for("Error on request")


def test_start_response_twice_without_exc_info_is_an_error(serve: Any, logs: Any) -> None:
    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        start_response("200 OK", [])
        start_response("200 OK", [])
        return [b""]

    resp = get(serve(app))
    assert resp.status == 500
    logs.wait_for("AssertionError: Headers already set")


def test_write_before_start_response_is_an_error(serve: Any, logs: Any) -> None:
    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        return ["not bytes"]  # type: ignore[list-item]

    resp = get(serve(app))
    assert resp.status == 500
    logs.wait_for("write() before start_response")


def test_non_bytes_body_is_an_error(serve: Any, logs: Any) -> None:
    def app(environ: dict[str, Any], start_response: Any) -> list[str]:
        start_response("200 OK", [])
        return ["text"]

    resp = get(serve(app))
    assert resp.status == 500
    logs.wait_for("applications must write bytes")


BIG_PIECE = bytes(range(256)) * 256  # 64 KiB


@pytest.mark.parametrize("method", ["GET", "HEAD"])
def test_large_list_body_goes_out_whole_with_its_length(serve: Any, method: str) -> None:
    # more than JOIN_LIMIT: sent piece by piece, still framed by Content-Length
    pieces = [BIG_PIECE, b"middle", BIG_PIECE, BIG_PIECE]

    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        start_response("200 OK", [])
        return pieces

    srv = serve(app)
    with srv.connect() as s:
        s.sendall(f"{method} / HTTP/1.1\r\nHost: x\r\n\r\n".encode() * 2)  # pipelined
        reader = Reader(s)
        for _ in range(2):
            resp = reader.response(head_only=method == "HEAD")
            if method == "GET":
                assert resp.header("Content-Length") == str(sum(map(len, pieces)))
                assert resp.body == b"".join(pieces)
            else:  # as for a small list: no framing headers, no body
                assert resp.header("Content-Length") is None
                assert resp.body == b""


def test_large_list_body_longer_than_declared_is_cut(serve: Any) -> None:
    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        start_response("200 OK", [("Content-Length", "70000")])
        return [BIG_PIECE, BIG_PIECE]

    srv = serve(app)
    with srv.connect() as s:
        s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        data = recv_all(s)
    head, _, body = data.partition(b"\r\n\r\n")
    assert b"Connection: close" in head
    assert body == (BIG_PIECE * 2)[:70000]


def test_large_list_with_a_non_bytes_piece_is_a_500(serve: Any, logs: Any) -> None:
    def app(environ: dict[str, Any], start_response: Any) -> list[Any]:
        start_response("200 OK", [])
        return [BIG_PIECE, BIG_PIECE, "text"]

    assert get(serve(app)).status == 500


def _big_list_app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
    start_response("200 OK", [])
    return [BIG_PIECE] * 128  # 8 MiB: more than the kernel's send buffer takes


def _stalled_client(srv: Any) -> socket.socket:
    sock = srv.connect()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    return sock


def test_a_client_not_reading_a_large_list_holds_no_thread(serve: Any) -> None:
    srv = serve(_big_list_app)
    with _stalled_client(srv):
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:  # the response waits in the poller
            engine = srv.server._engine  # None until serve_forever() has begun
            if engine is None:
                time.sleep(0.01)
                continue
            with engine.lock:
                waiting = [c for c in engine.conns.values() if c.writing]
                if waiting and all(c.parked for c in waiting):
                    break
            time.sleep(0.01)
        else:
            raise AssertionError("the stalled response still holds a thread")
        for _ in range(3):  # others are served meanwhile
            resp = get(srv)
            assert resp.status == 200 and len(resp.body) == len(BIG_PIECE) * 128


def test_a_slow_steady_reader_is_not_cut(
    serve: Any, logs: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # the socket stays unwritable until the kernel's (large) send queue half
    # drains; what the kernel delivered counts as progress (SIOCOUTQ)
    from fastserve import _transport

    queued = [8 << 20]
    reading = [True]

    def fake_queued_bytes(sock: socket.socket) -> int:
        if reading[0]:
            queued[0] -= 4096  # the client took 4 KiB since the last look
        return queued[0]

    monkeypatch.setattr(_transport, "queued_bytes", fake_queued_bytes)
    srv = serve(_big_list_app, send_timeout=0.2, send_min_rate=500)
    with _stalled_client(srv):
        time.sleep(2.5)  # past the deadline twice over: the sweep looked (once a second)
        assert queued[0] < 8 << 20
        assert "did not read the response in time" not in logs.text()
        reading[0] = False  # now it stops reading
        logs.wait_for("Client did not read the response in time", timeout=10)


class Closing:
    def __init__(self, parts: list[bytes], fail: bool = False) -> None:
        self.parts = parts
        self.fail = fail
        self.closed = threading.Event()

    def __iter__(self) -> Any:
        yield from self.parts
        if self.fail:
            raise RuntimeError("in the middle")

    def close(self) -> None:
        assert not self.closed.is_set()
        self.closed.set()


@pytest.mark.parametrize("fail", [False, True])
def test_iterable_close_is_always_called(serve: Any, fail: bool) -> None:
    body = Closing([b"a", b"b"], fail=fail)

    def app(environ: dict[str, Any], start_response: Any) -> Closing:
        start_response("200 OK", [])
        return body

    srv = serve(app)
    with srv.connect() as s:
        s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        recv_all(s, timeout=2) if fail else Reader(s).response()
    assert body.closed.wait(5)


def test_app_error_before_first_byte_is_a_500_page(serve: Any, logs: Any) -> None:
    def app(environ: dict[str, Any], start_response: Any) -> Any:
        start_response("200 OK", [("X-Never", "1")])
        yield b""
        raise RuntimeError("boom")

    resp = get(serve(app))
    assert resp.status == 500
    assert resp.reason == "INTERNAL SERVER ERROR"
    assert b"Internal Server Error" in resp.body
    assert resp.header("X-Never") is None
    assert resp.header("Connection") == "close"
    logs.wait_for("Error on request")
    msgs = logs.messages
    access = [i for i, m in enumerate(msgs) if '" 500 -' in m]
    error = [i for i, m in enumerate(msgs) if m.startswith("Error on request:\nTraceback")]
    assert access and error and access[0] < error[0]
    assert "RuntimeError: boom" in msgs[error[0]]


def test_header_with_crlf_from_the_app_is_refused(serve: Any, logs: Any) -> None:
    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        start_response("200 OK", [("X-Evil", "a\r\nSet-Cookie: stolen=1")])
        return [b"body"]

    srv = serve(app)
    with srv.connect() as s:
        s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        data = recv_all(s)
    assert data.startswith(b"HTTP/1.1 500 ")
    assert b"stolen" not in data
    logs.wait_for("Error on request")


def test_declared_length_longer_than_body_closes_connection(serve: Any) -> None:
    def app(environ: dict[str, Any], start_response: Any) -> Any:
        start_response("200 OK", [("Content-Length", "10")])
        yield b"short"

    srv = serve(app)
    with srv.connect() as s:
        s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        data = recv_all(s)
    assert data.endswith(b"\r\n\r\nshort")  # and then the connection closed


def test_body_longer_than_declared_length_is_cut(serve: Any) -> None:
    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        start_response("200 OK", [("Content-Length", "3")])
        return [b"abcdef"]

    srv = serve(app)
    with srv.connect() as s:
        s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\nGET / HTTP/1.1\r\nHost: x\r\n\r\n")
        data = recv_all(s)
    assert data.endswith(b"\r\n\r\nabc")
    assert data.count(b"HTTP/1.1 200") == 1


def test_app_connection_close_is_honoured(serve: Any) -> None:
    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        start_response("200 OK", [("Connection", "close")])
        return [b"bye"]

    srv = serve(app)
    with srv.connect() as s:
        s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\nGET / HTTP/1.1\r\nHost: x\r\n\r\n")
        data = recv_all(s)
    assert data.count(b"HTTP/1.1 200") == 1
    assert data.count(b"Connection: close") == 1


def test_status_without_reason_phrase(serve: Any) -> None:
    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        start_response("299", [])
        return [b""]

    assert get(serve(app)).status == 299


def test_invalid_status_is_a_clean_500(serve: Any) -> None:
    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        start_response("abc def", [])
        return [b""]

    resp = get(serve(app))
    assert resp.status == 500


def test_passthrough_errors_reraise_on_the_plain_server(serve: Any) -> None:
    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        raise KeyError("through")

    srv = serve(app, threaded=False, passthrough_errors=True)
    with srv.connect() as s:
        s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        assert recv_all(s, timeout=5) == b""
    srv.thread.join(5)
    assert isinstance(srv.error, KeyError)
    assert srv.server.socket.fileno() == -1  # serve_forever's finally closed the server


def test_passthrough_errors_on_a_threaded_server_keep_serving(serve: Any) -> None:
    import threading as _threading

    seen: list[BaseException] = []

    def hook(args: Any) -> None:
        seen.append(args.exc_value)

    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        if environ["PATH_INFO"] == "/crash":
            raise KeyError("through")
        start_response("200 OK", [])
        return [b"alive"]

    old_hook = _threading.excepthook
    _threading.excepthook = hook
    try:
        srv = serve(app, passthrough_errors=True)
        with srv.connect() as s:
            s.sendall(b"GET /crash HTTP/1.1\r\nHost: x\r\n\r\n")
            assert recv_all(s, timeout=5) == b""
        with srv.connect() as s:
            s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            assert Reader(s).response().body == b"alive"
        # the client saw the close before the dying thread reached the hook
        deadline = time.monotonic() + 10
        while not seen and time.monotonic() < deadline:
            time.sleep(0.01)
    finally:
        _threading.excepthook = old_hook
    assert len(seen) == 1 and isinstance(seen[0], KeyError)


def test_iterable_body_completing_its_content_length_is_one_send(
    serve: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Flask's response (a ClosingIterator, Content-Length set): head and body
    go out in one send, and the exhausted iterator sends nothing more (no
    empty segment, no extra syscall)."""
    sends: list[bytes] = []
    real_send = socket.socket.send

    def counting_send(sock: socket.socket, data: Any, *flags: int) -> int:
        if threading.current_thread() is not threading.main_thread():
            sends.append(bytes(data))
        return real_send(sock, data, *flags)

    def app(environ: dict[str, Any], start_response: Any) -> Any:
        start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "5")])
        return iter([b"hello"])

    srv = serve(app)
    monkeypatch.setattr(socket.socket, "send", counting_send)
    with srv.connect() as s:
        reader = Reader(s)
        for _ in range(2):
            s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            assert reader.response().body == b"hello"
    assert len(sends) == 2
    assert all(
        data.startswith(b"HTTP/1.1 200 OK\r\n") and data.endswith(b"hello") for data in sends
    )
