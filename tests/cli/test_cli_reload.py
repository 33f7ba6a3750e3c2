"""``fastserve --reload``: a module broken while serving does not end the command.

The reloader child (``WERKZEUG_RUN_MAIN=true``) that cannot import the app
prints the error and serves it (a 500, or the debugger page with
``--debug``) until the fix is saved; the next reload serves the fixed app.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from live_command import LiveCommand, free_port

pytestmark = pytest.mark.live

GOOD = """
def app(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"version %d"]
"""
BROKEN = "def app(environ, start_response)\n    pass\n"


def save(path: Path, text: str) -> None:
    path.write_text(text)


@pytest.mark.parametrize("debug", [False, True], ids=["plain", "debug"])
def test_broken_module_is_served_as_an_error_until_fixed(tmp_path: Path, debug: bool) -> None:
    source = tmp_path / "hello.py"
    save(source, GOOD % 1)
    port = free_port()
    args = ["-m", "fastserve", "hello:app", "--reload", "--port", str(port)] + (
        ["--debug"] if debug else []
    )
    with LiveCommand(args, cwd=tmp_path, port=port) as server:
        server.wait_for_log("Restarting with")
        server.wait_ready()
        assert server.get("/").body == b"version 1"

        save(source, BROKEN)
        server.wait_for_log("fastserve: error: could not import 'hello' (traceback above)")
        server.wait_ready()
        broken = server.get("/")
        assert broken.status == 500
        if debug:
            assert "Werkzeug Debugger" in broken.text and "SyntaxError" in broken.text
        assert server.proc.poll() is None, "the command ended"
        assert "Serving the error above until a change is saved" in server.log

        save(source, GOOD % 2)
        server.wait_for_log("Restarting with", count=3)
        server.wait_ready()
        assert server.get("/").body == b"version 2"
