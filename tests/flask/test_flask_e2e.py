"""A real Flask app served by fastserve through Flask's own entry points.

* ``app.run(debug=True)`` after ``fastserve.install()``: the response comes
  from fastserve (``Server: fastserve/...``), the debugger renders tracebacks,
  and the PIN flow (``WERKZEUG_DEBUG_PIN`` fixed) unlocks the console, which
  then evaluates code; with the reloader on, an edit is served after a reload.
* ``python -m fastserve.flask_cli --app hello run``: ``flask run`` served by
  fastserve, also with ``--debug`` (reloader child included).
"""

from __future__ import annotations

import json
import re
import urllib.parse
from pathlib import Path

import pytest
from live_command import LiveCommand, Response, child_env, free_port

pytestmark = pytest.mark.live

PIN = "123456789"
FLASK_APP = """
import sys

import fastserve

fastserve.install()

from flask import Flask

app = Flask(__name__)
VERSION = "v1"


@app.route("/")
def index():
    return f"hello from flask {VERSION}"


@app.route("/boom")
def boom():
    local_marker = 6
    raise ZeroDivisionError("boom-marker")


if __name__ == "__main__":
    app.run(debug=True, port=int(sys.argv[1]), use_reloader=sys.argv[2] == "reload")
"""


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    (tmp_path / "hello.py").write_text(FLASK_APP)
    return tmp_path


def flask_env(workdir: Path) -> dict[str, str]:
    return child_env(workdir, WERKZEUG_DEBUG_PIN=PIN)


def secret_of(page: Response) -> str:
    match = re.search(r'SECRET = "([^"]+)"', page.text)
    assert match, page.text[:500]
    return match.group(1)


def debugger_url(path: str, secret: str, **params: str) -> str:
    query = urllib.parse.urlencode({"__debugger__": "yes", "s": secret, **params})
    return f"{path}?{query}"


def assert_served_by_fastserve(response: Response) -> None:
    assert response.headers["Server"].startswith("fastserve/"), response.headers["Server"]


def edit_and_wait_for_reload(server: LiveCommand, source: Path) -> None:
    source.write_text(source.read_text().replace('VERSION = "v1"', 'VERSION = "v2"'))
    server.wait_for_log("Detected change in", timeout=30)
    server.wait_for_log("Restarting with", timeout=30, count=2)
    server.wait_ready()


def test_app_run_debug_serves_through_fastserve_with_debugger_and_pin(workdir: Path) -> None:
    port = free_port()
    with LiveCommand(
        ["hello.py", str(port), "no-reload"], cwd=workdir, port=port, env=flask_env(workdir)
    ) as server:
        server.wait_ready()
        index = server.get("/")
        assert (index.status, index.body) == (200, b"hello from flask v1")
        assert_served_by_fastserve(index)

        # an exception: the debugger's traceback page, evalex enabled but locked by the PIN
        crash = server.get("/boom")
        assert crash.status == 500
        assert_served_by_fastserve(crash)
        assert "Werkzeug Debugger" in crash.text
        assert "ZeroDivisionError: boom-marker" in crash.text
        assert "EVALEX = true" in crash.text and "EVALEX_TRUSTED = false" in crash.text
        secret = secret_of(crash)
        frame_ids = re.findall(r'<div class="frame" id="frame-(\d+)">', crash.text)
        assert frame_ids

        # the PIN flow: a wrong PIN is refused, the right one sets the trust cookie
        wrong = server.get(debugger_url("/", secret, cmd="pinauth", pin="000000000"))
        assert json.loads(wrong.body) == {"auth": False, "exhausted": False}
        assert "Set-Cookie" not in wrong.headers
        right = server.get(debugger_url("/", secret, cmd="pinauth", pin="123-456-789"))
        assert json.loads(right.body) == {"auth": True, "exhausted": False}
        cookie = right.headers["Set-Cookie"].split(";", 1)[0]
        assert cookie.startswith("__wzd")

        # trusted: evaluate code inside the frame that raised
        frame = frame_ids[-1]
        result = server.get(
            debugger_url("/", secret, cmd="local_marker * 7", frm=frame), headers={"Cookie": cookie}
        )
        assert result.status == 200 and "42" in result.text
        untrusted = server.get(debugger_url("/", secret, cmd="local_marker * 7", frm=frame))
        assert "42" not in untrusted.text

        # the standalone console, unlocked by the same cookie
        console = server.get("/console", headers={"Cookie": cookie})
        assert console.status == 200 and "EVALEX_TRUSTED = true" in console.text
        evaluated = server.get(
            debugger_url("/console", secret_of(console), cmd="6 * 7", frm="0"),
            headers={"Cookie": cookie},
        )
        assert "42" in evaluated.text
    log = server.log
    assert " * Debug mode: on" in log
    assert f"Running on http://127.0.0.1:{port}" in log
    # without the reloader, werkzeug prints the PIN when the browser asks (printpin), not at start
    assert " * Debugger PIN" not in log


def test_app_run_debug_with_reloader(workdir: Path) -> None:
    port = free_port()
    with LiveCommand(
        ["hello.py", str(port), "reload"], cwd=workdir, port=port, env=flask_env(workdir)
    ) as server:
        server.wait_for_log(" * Debugger PIN: 123-456-789")
        server.wait_ready()
        first = server.get("/")
        assert first.body == b"hello from flask v1"
        assert_served_by_fastserve(first)
        edit_and_wait_for_reload(server, workdir / "hello.py")
        second = server.get("/")
        assert second.body == b"hello from flask v2"
        assert_served_by_fastserve(second)
    assert " * Restarting with " in server.log
    assert " * Debugger is active!" in server.log


def test_flask_run_through_fastserve(workdir: Path) -> None:
    port = free_port()
    args = ["-m", "fastserve.flask_cli", "--app", "hello", "run", "--port", str(port)]
    with LiveCommand(args, cwd=workdir, port=port, env=flask_env(workdir)) as server:
        server.wait_ready()
        response = server.get("/")
        assert (response.status, response.body) == (200, b"hello from flask v1")
        assert_served_by_fastserve(response)
        crash = server.get("/boom")
        assert crash.status == 500 and "Werkzeug Debugger" not in crash.text
    assert " * Serving Flask app 'hello'" in server.log
    assert " * Debug mode: off" in server.log


def test_flask_run_debug_through_fastserve_reloads(workdir: Path) -> None:
    port = free_port()
    args = ["-m", "fastserve.flask_cli", "--app", "hello", "run", "--debug", "--port", str(port)]
    with LiveCommand(args, cwd=workdir, port=port, env=flask_env(workdir)) as server:
        server.wait_for_log(" * Debugger PIN: 123-456-789")
        server.wait_ready()
        crash = server.get("/boom")
        assert crash.status == 500 and "ZeroDivisionError: boom-marker" in crash.text
        assert_served_by_fastserve(crash)
        edit_and_wait_for_reload(server, workdir / "hello.py")
        response = server.get("/")
        assert response.body == b"hello from flask v2"
        assert_served_by_fastserve(response)
