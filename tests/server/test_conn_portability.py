"""The connection without Linux-only socket features, as on Windows, driven
over a socket pair (``conn_driver``): no ``MSG_DONTWAIT`` (a zero-timeout
``select()`` before each read that must not block) and no ``select.poll``.
The engine's selectors poller is covered by ``test_portability.py`` (live)."""

from __future__ import annotations

from typing import Any

import pytest
from conn_driver import PARK, get, post, split_responses
from server_helpers import hello_app

import fastserve._reporting
import fastserve._transport
import fastserve.connection


@pytest.fixture(autouse=True)
def _without_linux_socket_features(monkeypatch: pytest.MonkeyPatch) -> None:
    for module in (fastserve.connection, fastserve._transport, fastserve._reporting):
        monkeypatch.setattr(module, "_MSG_DONTWAIT", 0)
    monkeypatch.setattr(fastserve._transport, "_HAS_POLL", False)


def echo(environ: dict[str, Any], start_response: Any) -> list[bytes]:
    body = environ["wsgi.input"].read()
    start_response("200 OK", [("Content-Length", str(len(body)))])
    return [body]


def test_pipelined_requests(drive: Any) -> None:
    drv = drive(hello_app)
    data = drv.exchange(b"".join(get(f"/{i}") for i in range(4)))
    assert [r.body for r in split_responses(data)] == [b"hello /%d" % i for i in range(4)]
    assert drv.state == PARK


def test_slow_request_body_is_received_in_the_poller(drive: Any) -> None:
    drv = drive(echo)
    assert drv.exchange(post("/", b"hello", length=10)) == b""
    assert drv.state == PARK and drv.conn.waiting
    (resp,) = split_responses(drv.exchange(b"world"))
    assert resp.body == b"helloworld"


def test_body_the_app_reads_waits_with_select(drive: Any) -> None:
    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        drv.client.sendall(b"world")  # the rest arrives while the app runs
        return echo(environ, start_response)

    drv = drive(app, preread_limit=0)
    (resp,) = split_responses(drv.exchange(post("/", b"hello", length=10)))
    assert resp.body == b"helloworld"


def test_unread_body_is_drained_in_the_poller(drive: Any) -> None:
    drv = drive(hello_app, preread_limit=10, drain_limit=10_000)
    (resp,) = split_responses(drv.exchange(post("/a", b"x" * 100, length=5000)))
    assert resp.body == b"hello /a" and drv.conn.waiting
    (resp,) = split_responses(drv.exchange(b"x" * 4900 + get("/b")))
    assert resp.body == b"hello /b" and drv.state == PARK
