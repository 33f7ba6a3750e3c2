"""Requests refused before the application sees them, on one connection
driven over a socket pair (``conn_driver``): the status and its short
``text/plain`` page, ``Connection: close``, a half-close (LINGER), the error
and access log lines, and the application never called."""

from __future__ import annotations

import ssl
from typing import Any

import pytest
from conn_driver import LINGER, PARK, get, log_lines, masked, split_responses
from server_helpers import LogCapture


class Counting:
    def __init__(self) -> None:
        self.paths: list[str] = []

    def __call__(self, environ: dict[str, Any], start_response: Any) -> list[bytes]:
        self.paths.append(environ["PATH_INFO"])
        start_response("200 OK", [])
        return [b"ok"]


BAD_REQUESTS = [
    pytest.param(
        b"GET / HTTP/1.1\r\nBad Header: 1\r\n\r\n",
        400,
        "Invalid field name",
        id="space-in-field-name",
    ),
    pytest.param(b"GET / HTTP/2.0\r\n\r\n", 505, None, id="http-2-version"),
    pytest.param(b"GET /" + b"a" * 9000 + b" HTTP/1.1\r\n\r\n", 414, None, id="long-request-line"),
    pytest.param(b"GET / HTTP/1.1\r\nX: " + b"a" * 9000 + b"\r\n\r\n", 431, None, id="long-field"),
    pytest.param(b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400, None, id="two-hosts"),
    pytest.param(
        b"POST / HTTP/1.1\r\nTransfer-Encoding: foo, chunked\r\n\r\n",
        501,
        None,
        id="unknown-coding",
    ),
    pytest.param(b"POST / HTTP/1.1\r\nContent-Length: -1\r\n\r\n", 400, None, id="negative-length"),
    pytest.param(b"GET / HTTP/1.1\nHost: x\n\n", 400, None, id="bare-lf"),
]


@pytest.mark.parametrize(("raw", "status", "reason"), BAD_REQUESTS)
def test_bad_request_refused_before_the_app(
    drive: Any, logs: LogCapture, raw: bytes, status: int, reason: str | None
) -> None:
    app = Counting()
    drv = drive(app)
    data = drv.exchange(raw)
    assert app.paths == []
    assert drv.state == LINGER and drv.client_sees_eof()
    (resp,) = split_responses(data)
    assert resp.status == status
    assert resp.header("Connection") == "close"
    assert resp.header("Content-Type") == "text/plain; charset=utf-8"
    lines = log_lines(logs)
    assert len(lines) == 2
    assert lines[0].startswith(f"code {status}, message ")
    assert logs.messages[0].startswith("127.0.0.1 - - [")
    assert lines[1].endswith(f" {status} -")
    page_reason = lines[0].partition(", message ")[2]
    assert resp.body == f"{resp.reason}: {page_reason}\n".encode()
    if reason is not None:
        assert page_reason == reason


def test_refusal_page_bytes(drive: Any) -> None:
    data = drive(Counting()).exchange(b"GET / HTTP/2.0\r\n\r\n")
    body = b"HTTP Version Not Supported: HTTP Version Not Supported\n"
    assert masked(data) == (
        b"HTTP/1.1 505 HTTP Version Not Supported\r\nServer: *\r\nDate: *\r\n"
        b"Content-Type: text/plain; charset=utf-8\r\n"
        b"Content-Length: %d\r\nConnection: close\r\n\r\n%s" % (len(body), body)
    )


def test_refusal_on_the_http10_server_says_http10(drive: Any) -> None:
    data = drive(Counting(), threaded=False).exchange(b"GET / HTTP/2.0\r\n\r\n")
    assert data.startswith(b"HTTP/1.0 505 ")


def test_bad_request_fed_byte_by_byte_is_refused_when_its_line_ends(drive: Any) -> None:
    app = Counting()
    drv = drive(app)
    raw = b"GET / HTTP/1.1\r\nHost: x\r\nBad Header: 1\r\n\r\n"
    end = raw.index(b"\n", raw.index(b"Bad Header"))
    for i in range(end):
        assert drv.exchange(raw[i : i + 1]) == b""
        assert drv.state == PARK
    data = drv.exchange(raw[end : end + 1])
    assert data.startswith(b"HTTP/1.1 400 ") and drv.state == LINGER
    assert app.paths == []


def test_bad_request_after_good_ones_answers_those_first(drive: Any, logs: LogCapture) -> None:
    app = Counting()
    drv = drive(app)
    data = drv.exchange(get("/one") + get("/two") + b"GET / HTTP/9.9\r\n\r\n" + get("/never"))
    assert app.paths == ["/one", "/two"]
    assert [r.status for r in split_responses(data)] == [200, 200, 505]
    assert drv.state == LINGER
    assert log_lines(logs)[-2].startswith("code 505, message ")


def test_what_the_client_sends_after_a_refusal_is_discarded_then_closed(drive: Any) -> None:
    drv = drive(Counting(), linger_timeout=2.0)
    drv.exchange(b"GET / HTTP/2.0\r\n\r\n")
    assert drv.conn.lingering and drv.deadline_set_in_last_run(2.0)
    drv.send(get("/more") * 10)
    assert drv.run() == PARK and drv.read() == b""
    drv.expire()  # linger_timeout: closed, nothing more written (no 408)
    assert drv.closed and drv.read() == b""


def _client_hello() -> bytes:
    """The first bytes a TLS client sends (no socket needed)."""
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    tls = ctx.wrap_bio(incoming, outgoing, server_hostname="localhost")
    with pytest.raises(ssl.SSLWantReadError):
        tls.do_handshake()
    return outgoing.read()


def test_tls_client_hello_on_plain_port_gets_400_without_traceback(
    drive: Any, logs: LogCapture
) -> None:
    app = Counting()
    drv = drive(app)
    data = drv.exchange(_client_hello())
    assert data.startswith(b"HTTP/1.1 400 ") and drv.state == LINGER
    assert app.paths == []
    assert log_lines(logs)[0].startswith("code 400, message ")
    assert "Traceback" not in logs.text()
