"""The ``fastserve`` command serving for real on an ephemeral loopback port (or a unix socket)."""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
import urllib.parse
from pathlib import Path

import pytest
from live_command import LiveCommand, child_env, free_port, run_command

import fastserve
from fastserve.parser import PARSER_IMPL

pytestmark = pytest.mark.live

HELLO = """
def app(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"hello from " + __name__.encode()]


def create_app(greeting="hi"):
    def factory_app(environ, start_response):
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [greeting.encode()]
    return factory_app


def crash(environ, start_response):
    raise ZeroDivisionError("crash-marker")
"""


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    (tmp_path / "hello.py").write_text(HELLO)
    return tmp_path


def serve(workdir: Path, *args: str, **kwargs) -> LiveCommand:
    port = free_port()
    return LiveCommand(
        ["-m", "fastserve", *args, "--port", str(port)], cwd=workdir, port=port, **kwargs
    )


def test_version_names_the_parser_and_platform(workdir: Path) -> None:
    result = run_command(["-m", "fastserve", "--version"], cwd=workdir)
    assert result.returncode == 0, result.stderr
    line = result.stdout.strip()
    assert line.startswith(f"fastserve {fastserve.__version__} (parser: {PARSER_IMPL}, ")
    assert f"{sys.version_info.major}.{sys.version_info.minor}.{sys.version_info.micro}" in line
    assert "werkzeug 3." in line and " on " in line


def test_version_reports_the_pure_python_parser_when_asked(workdir: Path) -> None:
    env = child_env(workdir, FASTSERVE_NO_EXTENSIONS="1")
    result = run_command(["-m", "fastserve", "--version"], cwd=workdir, env=env)
    assert "(parser: py, pure Python)" in result.stdout


def test_console_script_is_declared() -> None:
    from importlib.metadata import distribution

    entry_points = distribution("fastserve").entry_points
    [script] = [
        ep for ep in entry_points if ep.group == "console_scripts" and ep.name == "fastserve"
    ]
    assert script.value == "fastserve.cli:main"
    # and the installed script beside this interpreter runs it
    executable = Path(sys.executable).parent / "fastserve"
    result = subprocess.run(
        [str(executable), "--version"], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(f"fastserve {fastserve.__version__} (parser: ")


def test_demo_app_is_served_without_arguments(workdir: Path) -> None:
    with serve(workdir) as server:
        server.wait_ready()
        index = server.get("/")
        assert index.status == 200
        assert index.headers["Server"].startswith("fastserve/")
        assert "<h1>fastserve demo</h1>" in index.text
        assert "<td>SERVER_SOFTWARE</td><td>fastserve/" in index.text

        form = urllib.parse.urlencode({"name": "curl", "message": "<hi>"}).encode()
        posted = server.request(
            "POST", "/", body=form, headers={"Content-Type": "application/x-www-form-urlencoded"}
        )
        assert posted.status == 200
        assert "<td>message</td><td>&lt;hi&gt;</td>" in posted.text

        stream = server.get("/stream?lines=3&delay=0.01")
        assert stream.status == 200
        assert stream.headers["Transfer-Encoding"] == "chunked"
        assert stream.text.count("line ") == 3 and stream.text.endswith(
            "done - back to the demo: /\n"
        )
    assert "Serving fastserve's demo app (fastserve.demo:app)" in server.log
    assert "Press CTRL+C to quit" in server.log


@pytest.mark.parametrize(
    ("spec", "body"),
    [
        ("hello:app", b"hello from hello"),
        ("hello", b"hello from hello"),
        ("hello.py", b"hello from hello"),
        ("hello:create_app()", b"hi"),
        ("hello:create_app('hey there')", b"hey there"),
        ("hello:create_app(greeting='kw')", b"kw"),
    ],
)
def test_module_app_is_served(workdir: Path, spec: str, body: bytes) -> None:
    with serve(workdir, spec) as server:
        server.wait_ready()
        response = server.get("/")
        assert (response.status, response.body) == (200, body)
    assert f"Serving {spec!r}" in server.log


def test_app_in_a_package(workdir: Path) -> None:
    package = workdir / "proj"
    package.mkdir()
    (package / "__init__.py").write_text("")
    shutil.copy(workdir / "hello.py", package / "web.py")
    with serve(workdir, "proj.web:app") as server:
        server.wait_ready()
        assert server.get("/").body == b"hello from proj.web"


def test_no_threads_and_processes(workdir: Path) -> None:
    for flags in (["--no-threads"], ["--processes", "2"]):
        with serve(workdir, "hello:app", *flags) as server:
            server.wait_ready()
            assert server.get("/").body == b"hello from hello", flags


def test_debug_shows_the_debugger_page(workdir: Path) -> None:
    with serve(workdir, "hello:crash", "--debug") as server:
        server.wait_ready()
        response = server.get("/")
        assert response.status == 500
        assert "Werkzeug Debugger" in response.text
        assert "ZeroDivisionError: crash-marker" in response.text


def test_without_debug_an_error_is_a_plain_500(workdir: Path) -> None:
    with serve(workdir, "hello:crash") as server:
        server.wait_ready()
        response = server.get("/")
        assert response.status == 500
        assert "Werkzeug Debugger" not in response.text
        assert "crash-marker" not in response.text
        server.wait_for_log("ZeroDivisionError: crash-marker")


def test_unix_socket(workdir: Path) -> None:
    path = workdir / "app.sock"
    with LiveCommand(
        ["-m", "fastserve", "hello:app", "--unix", "app.sock"], cwd=workdir, unix_path=path
    ) as server:
        server.wait_ready()
        assert server.get("/").body == b"hello from hello"


def test_adhoc_https(workdir: Path) -> None:
    with serve(workdir, "hello:app", "--adhoc", https=True) as server:
        server.wait_ready()
        response = server.get("/")
        assert (response.status, response.body) == (200, b"hello from hello")


def test_cert_and_key(workdir: Path) -> None:
    from werkzeug.serving import make_ssl_devcert

    cert, key = make_ssl_devcert(str(workdir / "dev"), host="localhost")
    with serve(workdir, "hello:app", "--cert", cert, "--key", key, https=True) as server:
        server.wait_ready()
        assert server.get("/").body == b"hello from hello"


def _has_ipv6_loopback() -> bool:
    try:
        with socket.socket(socket.AF_INET6) as probe:
            probe.bind(("::1", 0))
    except OSError:
        return False
    return True


@pytest.mark.skipif(not _has_ipv6_loopback(), reason="this machine has no IPv6 loopback")
def test_bracketed_ipv6_host(workdir: Path) -> None:
    port = free_port()
    args = ["-m", "fastserve", "hello:app", "--host", "[::1]", "--port", str(port)]
    with LiveCommand(args, cwd=workdir, port=port, host="::1") as server:
        server.wait_ready()
        assert server.get("/").body == b"hello from hello"
    assert f"Running on http://[::1]:{port}" in server.log
