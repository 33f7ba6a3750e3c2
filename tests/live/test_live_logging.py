"""The log: werkzeug's banner and access lines (colours included), and a ``request_handler``
subclass that overrides ``log_request`` silencing them without losing keep-alive.

Absences are checked on the log of a stopped server (``final_log``): nothing can be
written after that. Lines that follow a response are waited for, with a deadline."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from live_clients import Request, exchange
from live_helpers import LiveServer

pytestmark = [pytest.mark.live, pytest.mark.timeout(120)]


def test_banner_and_access_log_line(server_on: Callable[..., LiveServer]) -> None:
    """The default handler logs werkzeug's access line (colours included) and its banner."""
    server = server_on()
    mark = server.log_mark()
    server.request("/logged?x=%41")
    line = next(
        line
        for line in server.wait_for_log("/logged", since=mark).splitlines()
        if "/logged" in line
    )
    assert line.startswith("127.0.0.1 - - [")
    assert line.endswith('"GET /logged?x=A HTTP/1.1" 200 -')  # uri_to_iri decodes %41
    log = server.log()
    assert f" * Running on http://127.0.0.1:{server.port}" in log
    assert "Press CTRL+C to quit" in log


def test_quiet_handler_subclass_keeps_keep_alive(start_server: Callable[..., LiveServer]) -> None:
    """Our handler with ``log_request`` overridden: no access lines, and still keep-alive."""
    server = start_server("echo", request_handler="fastserve-quiet")
    responses = exchange("requests", server, [Request("GET", f"/quiet/{i}") for i in range(5)])
    assert len({r.json()["remote_port"] for r in responses}) == 1
    log = server.final_log()
    assert "/quiet/" not in log
    assert "Traceback" not in log
