"""``flask serve``: the ``flask.commands`` entry point, run with the real ``flask`` executable.

The app in these tests never calls ``fastserve.install()``: ``flask serve``
serves through fastserve by itself, and ``flask run`` stays werkzeug's.
"""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

import flask.cli
import pytest
from live_command import LiveCommand, child_env, free_port

from fastserve._reloader import reloader_loops
from fastserve.flask_cli import RELOADER_TYPES, serve_command

PIN = "123456789"
FLASK = Path(sys.executable).parent / "flask"
PLAIN_FLASK_APP = """
from flask import Flask

app = Flask(__name__)
VERSION = "v1"


@app.route("/")
def index():
    return f"hello from flask {VERSION}"


@app.route("/boom")
def boom():
    raise ZeroDivisionError("boom-marker")
"""

FlaskCommand = Callable[..., LiveCommand]


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    (tmp_path / "hello.py").write_text(PLAIN_FLASK_APP)
    return tmp_path


@pytest.fixture
def flask_command(workdir: Path, monkeypatch: pytest.MonkeyPatch) -> FlaskCommand:
    """Start ``flask <args>`` (the venv's executable itself, not ``python -m``) in ``workdir``."""

    def start(args: Sequence[str], port: int, https: bool = False) -> LiveCommand:
        env = child_env(workdir, WERKZEUG_DEBUG_PIN=PIN)
        with monkeypatch.context() as patch:
            # LiveCommand runs [sys.executable, *args]: make that the flask script
            patch.setattr(sys, "executable", str(FLASK))
            return LiveCommand(args, cwd=workdir, port=port, env=env, https=https)

    return start


def run_flask(workdir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(FLASK), *args],
        cwd=workdir,
        env=child_env(workdir),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_serve_takes_every_option_of_flask_run_plus_reloader_type() -> None:
    run_options = {param.name for param in flask.cli.run_command.params}
    serve_options = {param.name for param in serve_command.params}
    assert run_options <= serve_options
    assert serve_options - run_options == {"reloader_type"}
    assert set(RELOADER_TYPES) == set(reloader_loops)


def test_flask_help_lists_serve(workdir: Path) -> None:
    result = run_flask(workdir, "--help")
    assert result.returncode == 0, result.stderr
    commands = result.stdout.split("Commands:", 1)[1]
    assert re.search(r"^  serve +Run a development server with fastserve\.$", commands, re.M)
    assert re.search(r"^  run +Run a development server\.$", commands, re.M)

    serve_help = run_flask(workdir, "serve", "--help")
    assert serve_help.returncode == 0, serve_help.stderr
    for option in (
        "--host",
        "--port",
        "--cert",
        "--key",
        "--reload / --no-reload",
        "--debugger / --no-debugger",
        "--with-threads / --without-threads",
        "--extra-files",
        "--exclude-patterns",
        "--reloader-type [auto|stat|watchdog|watchfiles]",
    ):
        assert option in serve_help.stdout, option


@pytest.mark.live
def test_flask_serve_serves_through_fastserve(workdir: Path, flask_command: FlaskCommand) -> None:
    port = free_port()
    with flask_command(["--app", "hello", "serve", "--port", str(port)], port) as server:
        server.wait_ready()
        response = server.get("/")
        assert (response.status, response.body) == (200, b"hello from flask v1")
        assert response.headers["Server"].startswith("fastserve/"), response.headers["Server"]
        crash = server.get("/boom")
        assert crash.status == 500 and "Werkzeug Debugger" not in crash.text
    log = server.log
    assert " * Serving Flask app 'hello'" in log
    assert " * Debug mode: off" in log
    assert f" * Running on http://127.0.0.1:{port}" in log
    assert " * Restarting with" not in log


@pytest.mark.live
def test_flask_serve_debug_has_debugger_and_reloader(
    workdir: Path, flask_command: FlaskCommand
) -> None:
    port = free_port()
    args = ["--app", "hello", "serve", "--debug", "--reloader-type", "stat", "--port", str(port)]
    with flask_command(args, port) as server:
        server.wait_for_log(" * Debugger PIN: 123-456-789")
        server.wait_ready()
        crash = server.get("/boom")
        assert crash.status == 500
        assert crash.headers["Server"].startswith("fastserve/")
        assert "Werkzeug Debugger" in crash.text and "ZeroDivisionError: boom-marker" in crash.text

        source = workdir / "hello.py"
        source.write_text(source.read_text().replace('VERSION = "v1"', 'VERSION = "v2"'))
        server.wait_for_log(" * Detected change in", timeout=30)
        server.wait_for_log(" * Restarting with stat", timeout=30, count=2)
        server.wait_ready()
        response = server.get("/")
        assert response.body == b"hello from flask v2"
        assert response.headers["Server"].startswith("fastserve/")
    assert " * Debug mode: on" in server.log


@pytest.mark.live
def test_flask_serve_adhoc_certificate(workdir: Path, flask_command: FlaskCommand) -> None:
    port = free_port()
    args = ["--app", "hello", "serve", "--cert", "adhoc", "--port", str(port)]
    with flask_command(args, port, https=True) as server:
        server.wait_ready()
        response = server.get("/")
        assert (response.status, response.body) == (200, b"hello from flask v1")
        assert response.headers["Server"].startswith("fastserve/")
    assert f" * Running on https://127.0.0.1:{port}" in server.log


@pytest.mark.live
def test_flask_run_stays_werkzeugs(workdir: Path, flask_command: FlaskCommand) -> None:
    port = free_port()
    with flask_command(["--app", "hello", "run", "--port", str(port)], port) as server:
        server.wait_ready()
        response = server.get("/")
        assert response.body == b"hello from flask v1"
        assert response.headers["Server"].startswith("Werkzeug/"), response.headers["Server"]


def test_flask_serve_reports_an_app_that_does_not_import(workdir: Path) -> None:
    (workdir / "broken.py").write_text("raise RuntimeError('import-marker')\n")
    result = run_flask(workdir, "--app", "broken", "serve", "--port", str(free_port()))
    assert result.returncode != 0
    assert "import-marker" in result.stderr
