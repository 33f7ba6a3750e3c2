"""Keep-alive and pipelining on one connection, driven over a socket pair
(``conn_driver``): which responses keep the connection, in which state the
connection then waits, and its idle and head deadlines."""

from __future__ import annotations

import re
from typing import Any

import pytest
from conn_driver import CLOSE, LINGER, PARK, get, log_lines, masked, post, split_responses
from server_helpers import LogCapture, hello_app

from fastserve import __version__

HELLO_HEAD = (
    b"HTTP/1.1 200 OK\r\nServer: *\r\nDate: *\r\nContent-Type: text/plain\r\n"
    b"Content-Length: 8\r\n\r\n"
)


def test_keep_alive_serves_requests_in_sequence(drive: Any) -> None:
    drv = drive(hello_app)
    for path in ("/a", "/b", "/c"):
        (resp,) = split_responses(drv.exchange(get(path)))
        assert masked(resp.head) == HELLO_HEAD
        assert resp.body == b"hello " + path.encode()
        assert drv.state == PARK and not drv.conn.buf
    assert drv.states_named() == ["PARK"] * 3


def test_server_and_date_fields_come_first(drive: Any) -> None:
    (resp,) = split_responses(drive(hello_app).exchange(get()))
    names = [name for name, _ in resp.headers]
    assert names[:2] == ["Server", "Date"]
    assert resp.header("Server").startswith(f"fastserve/{__version__} Python/")
    assert re.fullmatch(r"\w{3}, \d\d \w{3} \d{4} \d\d:\d\d:\d\d GMT", resp.header("Date"))


def test_pipelined_requests_answered_in_order_in_one_dispatch(drive: Any) -> None:
    drv = drive(hello_app)
    data = drv.exchange(b"".join(get(f"/{i}") for i in range(5)))
    assert [r.body for r in split_responses(data)] == [b"hello /%d" % i for i in range(5)]
    assert drv.states_named() == ["PARK"]


def test_request_split_anywhere_is_served_once_complete(drive: Any) -> None:
    drv = drive(hello_app)
    raw = get("/split") + get("/next")
    for i in range(len(raw)):
        assert drv.exchange(raw[i : i + 1]) == b"" or i in (len(get("/split")) - 1, len(raw) - 1)
    assert drv.state == PARK
    assert drv.states_named() == ["PARK"] * len(raw)


def test_pipelined_request_after_a_body_is_not_read_from_the_body(drive: Any) -> None:
    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        start_response("200 OK", [])
        return [environ["PATH_INFO"].encode()]  # never reads the body

    drv = drive(app)
    smuggled = b"GET /evil HTTP/1.1\r\nX: y\r\n\r\n"
    data = drv.exchange(post("/one", smuggled) + get("/two"))
    assert [r.body for r in split_responses(data)] == [b"/one", b"/two"]
    assert drv.state == PARK


def test_http10_request_without_keep_alive_is_closed(drive: Any) -> None:
    drv = drive(hello_app)
    data = drv.exchange(get("/", version="HTTP/1.0"))
    assert drv.state == CLOSE
    assert drv.client_sees_eof()
    (resp,) = split_responses(data, eof=True)
    assert masked(resp.head) == HELLO_HEAD.replace(
        b"Content-Length: 8\r\n", b"Content-Length: 7\r\nConnection: close\r\n"
    )


def test_http10_keep_alive_with_content_length(drive: Any) -> None:
    drv = drive(hello_app)
    for _ in range(2):
        (resp,) = split_responses(
            drv.exchange(get("/k", "Connection: keep-alive", version="HTTP/1.0"))
        )
        assert resp.header("Connection") == "keep-alive"
        assert resp.body == b"hello /k"
        assert drv.state == PARK


@pytest.mark.parametrize("fields", [(), ("Connection: keep-alive",)], ids=["plain", "keep-alive"])
def test_http10_generator_is_close_delimited(drive: Any, fields: tuple[str, ...]) -> None:
    def app(environ: dict[str, Any], start_response: Any) -> Any:
        start_response("200 OK", [])
        yield b"a"
        yield b"b"

    drv = drive(app)
    data = drv.exchange(get("/", *fields, version="HTTP/1.0"))
    assert data.startswith(b"HTTP/1.1 200 OK\r\n")  # the server's version, werkzeug's way
    assert drv.state == CLOSE
    (resp,) = split_responses(data, eof=True)
    assert resp.header("Connection") == "close"
    assert resp.header("Transfer-Encoding") is None and resp.header("Content-Length") is None
    assert resp.body == b"ab"


@pytest.mark.parametrize("value", ["close", "Close", "keep-alive, close"])
def test_client_connection_close_is_honoured(drive: Any, value: str) -> None:
    drv = drive(hello_app)
    data = drv.exchange(get("/", f"Connection: {value}") + get("/never"))
    # the pipelined request is not answered; what the client still sends is
    # read and discarded after a half-close, so it gets the response, not a reset
    assert drv.state == LINGER
    assert drv.client_sees_eof()
    (resp,) = split_responses(data)
    assert resp.header("Connection") == "close" and resp.body == b"hello /"
    drv.send(get("/ignored"))
    assert drv.run() == PARK and drv.conn.lingering  # discarded
    assert drv.read() == b""
    drv.expire()  # linger_timeout: closed without a 408
    assert drv.closed and drv.read() == b""


def test_last_request_with_connection_close_and_nothing_after_is_closed_at_once(
    drive: Any,
) -> None:
    drv = drive(hello_app)
    drv.exchange(get("/", "Connection: close"))
    assert drv.states_named() == ["CLOSE"]


def test_non_threaded_server_speaks_http10_and_closes(drive: Any) -> None:
    drv = drive(hello_app, threaded=False)
    data = drv.exchange(get("/"))
    assert drv.state == CLOSE
    assert data.startswith(b"HTTP/1.0 200 OK\r\n")
    assert b"\r\nConnection: close\r\n" in data


def test_server_stopping_says_connection_close(drive: Any) -> None:
    drv = drive(hello_app)
    drv.exchange(get("/before"))
    drv.server._closing = True  # a graceful stop began
    (resp,) = split_responses(drv.exchange(get("/during")))
    assert resp.header("Connection") == "close"
    assert drv.state == CLOSE


def test_idle_keep_alive_connection_is_closed_after_keep_alive_timeout(
    drive: Any, logs: LogCapture
) -> None:
    drv = drive(hello_app, keep_alive_timeout=30.0)
    drv.exchange(get())
    assert drv.state == PARK
    drv.sweep(now=1000.0)  # the first sweep that sees it idle starts its clock
    assert drv.conn.deadline == 1030.0
    assert not drv.sweep(now=1029.9)
    assert drv.sweep(now=1030.0)
    assert drv.read() == b"" and drv.client_sees_eof()  # closed without a word
    assert log_lines(logs) == ['"GET / HTTP/1.1" 200 -']


def test_request_after_idle_wait_is_served(drive: Any) -> None:
    drv = drive(hello_app, keep_alive_timeout=30.0)
    drv.exchange(get("/a"))
    drv.sweep(now=1000.0)
    assert not drv.sweep(now=1010.0)
    (resp,) = split_responses(drv.exchange(get("/b")))
    assert resp.body == b"hello /b"


def test_partial_head_deadline_counts_from_its_first_byte(drive: Any) -> None:
    drv = drive(hello_app, request_head_timeout=10.0)
    drv.exchange(b"GET / HTTP/1.1\r\nHo")
    started = drv.conn.head_started
    assert started > 0 and drv.conn.deadline == started + 10.0
    drv.exchange(b"st: x\r\nX-More: 1\r\n")  # more bytes do not move it
    assert drv.conn.deadline == started + 10.0
    assert not drv.sweep(started + 9.9)
    (resp,) = split_responses(drv.exchange(b"\r\n"))
    assert resp.status == 200 and drv.state == PARK


def test_partial_head_times_out_with_408(drive: Any, logs: LogCapture) -> None:
    drv = drive(hello_app, request_head_timeout=10.0)
    assert drv.exchange(get("/first") + b"GET /second HTTP/1.1\r\nHost") != b""
    drv.expire()
    (resp,) = split_responses(drv.read(), eof=True)
    assert resp.status == 408
    assert resp.body == b"Request Timeout: request head not complete in time\n"
    assert resp.header("Connection") == "close"
    assert drv.client_sees_eof()
    # the access line shows what arrived of the request line (werkzeug's requestline)
    assert log_lines(logs) == [
        '"GET /first HTTP/1.1" 200 -',
        "code 408, message Request head not complete in time",
        '"GET /second HTTP/1.1" 408 -',
    ]


def test_many_requests_on_one_connection_leave_no_buffer_behind(drive: Any) -> None:
    drv = drive(hello_app)
    raw = b"".join(get(f"/{i}", f"X-Pad: {'p' * i}") for i in range(100))
    data = drv.exchange(raw)
    assert len(split_responses(data)) == 100
    assert drv.conn.buf == b"" and drv.state == PARK
