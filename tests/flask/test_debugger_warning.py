"""``run_simple(use_debugger=True)`` warns when it listens on a non-loopback address.

No socket is bound: ``make_server`` is replaced by a stub, so the test can
ask for ``0.0.0.0`` without exposing anything. Expected: one WARNING record on
the ``"werkzeug"`` logger that mentions the debugger and the address; none for
loopback addresses or unix sockets, and none without the debugger.
"""

from __future__ import annotations

import logging
from typing import Any

import pytest

import fastserve.serving


class StubServer:
    class socket:  # noqa: N801 - stands in for the attribute
        @staticmethod
        def set_inheritable(flag: bool) -> None:
            pass

    def fileno(self) -> int:
        return 99

    def log_startup(self) -> None:
        pass

    def serve_forever(self) -> None:
        pass


@pytest.fixture
def debugger_warnings(monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture):
    monkeypatch.delenv("WERKZEUG_RUN_MAIN", raising=False)
    monkeypatch.setenv("WERKZEUG_SERVER_FD", "")  # restored afterwards; run_simple sets it
    monkeypatch.setattr(fastserve.serving, "make_server", lambda *a, **k: StubServer())

    def run(hostname: str, use_debugger: bool = True) -> list[str]:
        caplog.clear()
        with caplog.at_level(logging.INFO, logger="werkzeug"):
            fastserve.serving.run_simple(hostname, 5000, app, use_debugger=use_debugger)
        return [
            r.getMessage()
            for r in caplog.records
            if r.name == "werkzeug"
            and r.levelno == logging.WARNING
            and "debugger" in r.getMessage().lower()
        ]

    return run


def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
    start_response("204 No Content", [])
    return []


@pytest.mark.parametrize(
    "hostname", ["127.0.0.1", "localhost", "::1", "127.0.0.2", "unix://x.sock"]
)
def test_no_warning_on_loopback(debugger_warnings, hostname: str) -> None:
    assert debugger_warnings(hostname) == []


def test_no_warning_without_debugger(debugger_warnings) -> None:
    assert debugger_warnings("0.0.0.0", use_debugger=False) == []


@pytest.mark.parametrize("hostname", ["0.0.0.0", "::", "192.0.2.10", ""])
def test_warning_on_non_loopback(debugger_warnings, hostname: str) -> None:
    [message] = debugger_warnings(hostname)
    assert hostname in message
