"""The connection layer without Linux-only socket features, as on Windows.

Windows has no ``MSG_DONTWAIT`` and no ``select.poll`` (nor epoll): the server
then uses the ``selectors`` poller and a zero-timeout ``select()`` before each
read that must not block. These tests switch those features off on Linux and
check that keep-alive still works through the engine's selectors poller - and
that a thread never blocks in ``recv`` waiting for a next request. Pipelining,
bodies and drains on the connection alone: ``test_conn_portability.py``.
"""

from __future__ import annotations

import time
from typing import Any

import pytest
from server_helpers import Reader, hello_app

import fastserve._engine
import fastserve._pollers
import fastserve._reporting
import fastserve._transport
import fastserve.connection
import fastserve.server

pytestmark = pytest.mark.live


@pytest.fixture(autouse=True)
def _without_linux_socket_features(monkeypatch: pytest.MonkeyPatch) -> None:
    for module in (fastserve._transport, fastserve._reporting, fastserve.connection):
        monkeypatch.setattr(module, "_MSG_DONTWAIT", 0)
    monkeypatch.setattr(fastserve._transport, "_HAS_POLL", False)
    monkeypatch.setattr(fastserve._engine, "_Poller", fastserve._pollers._SelectorPoller)


def test_keep_alive_with_pauses_between_requests(serve: Any) -> None:
    srv = serve(hello_app)
    with srv.connect() as s, srv.connect() as other:
        reader, other_reader = Reader(s), Reader(other)
        for i in range(3):
            s.sendall(f"GET /{i} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
            assert reader.response().body == b"hello /%d" % i
            time.sleep(0.05)
            # a second client is served while the first one is idle: no thread
            # sits in a blocking recv() on the idle connection
            other.sendall(f"GET /other{i} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
            assert other_reader.response().body == b"hello /other%d" % i
