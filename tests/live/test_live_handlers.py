"""``request_handler`` subclasses through real clients: werkzeug's own handler class (the
compatibility path, which closes every connection) and a subclass of ours that silences the
access log (which must keep keep-alive)."""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable

import pytest
import requests
from live_helpers import LiveServer

pytestmark = [pytest.mark.live, pytest.mark.timeout(120)]

TRANSPORTS = [
    pytest.param({}, id="tcp"),
    pytest.param({"hostname": "unix"}, id="unix"),
    pytest.param({"ssl_context": "adhoc"}, id="tls"),
]


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_werkzeug_handler_subclass(
    start_server: Callable[..., LiveServer], transport: dict[str, str]
) -> None:
    server = start_server("echo", request_handler="werkzeug-quiet", **transport)
    mark = server.log_mark()
    payload = os.urandom(50_000)
    conn = server.connect()
    try:
        conn.request(
            "POST", "/wz/upload", body=iter([payload[:10], payload[10:]]), encode_chunked=True
        )
        response = conn.getresponse()
        data = json.loads(response.read())
        assert response.getheader("Connection") == "close"  # werkzeug's handler always closes
        conn.request("GET", "/stream")  # http.client reconnects
        streamed = conn.getresponse()
        assert streamed.getheader("Transfer-Encoding") == "chunked"
        assert streamed.read() == b"0\n1\n2\n3\n4\n"
    finally:
        conn.close()
    assert data["input_terminated"] is True
    assert data["body_sha256"] == hashlib.sha256(payload).hexdigest()
    assert data["scheme"] == ("https" if transport.get("ssl_context") else "http")
    assert '"POST /wz/upload' not in server.log(since=mark)  # log_request overridden


def test_werkzeug_handler_crash_gives_500(start_server: Callable[..., LiveServer]) -> None:
    server = start_server("echo", request_handler="werkzeug")
    status, _, body = server.request("/crash")
    assert status == 500 and b"Internal Server Error" in body
    log = server.wait_for_log("Error on request", "RuntimeError: crash requested")
    # werkzeug colours a 500 line bold magenta inside the quotes
    assert '"\x1b[35m\x1b[1mGET /crash HTTP/1.1\x1b[0m" 500 -' in log


def test_our_handler_subclass_keeps_keep_alive(start_server: Callable[..., LiveServer]) -> None:
    server = start_server("echo", request_handler="fastserve-quiet")
    mark = server.log_mark()
    with requests.Session() as session:
        ports = {
            session.get(f"{server.url}/quiet/{i}", timeout=10).json()["remote_port"]
            for i in range(5)
        }
    assert len(ports) == 1
    assert "/quiet/" not in server.log(since=mark)


def test_access_log_line(start_server: Callable[..., LiveServer]) -> None:
    """The default handler logs werkzeug's access line (colours included) and its banner."""
    server = start_server("echo")
    server.request("/logged?x=%41")
    log = server.wait_for_log("/logged")
    assert f" * Running on http://127.0.0.1:{server.port}" in log
    assert "Press CTRL+C to quit" in log
    line = next(line for line in log.splitlines() if "/logged" in line)
    assert line.startswith("127.0.0.1 - - [")
    assert line.endswith('"GET /logged?x=A HTTP/1.1" 200 -')  # uri_to_iri decodes %41
