"""``static_files`` and ``--static``: files are served, ``../`` escapes are refused.

The static directory sits next to a ``secret.txt``; no spelling of "one level
up" may return the secret's content. Both launchers are checked: a script
calling ``run_simple(static_files=...)`` and ``fastserve --static``.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from live_command import LiveCommand, free_port

pytestmark = pytest.mark.live

SECRET = "top-secret-content-5f1c"
SCRIPT = """
import sys
from fastserve.serving import run_simple

def app(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"app fallback"]

run_simple("127.0.0.1", int(sys.argv[1]), app, static_files={"/static": sys.argv[2]})
"""
APP = """
def app(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"app fallback"]
"""

ESCAPES = [
    "/static/../secret.txt",
    "/static/%2e%2e/secret.txt",
    "/static/%2E%2E/secret.txt",
    "/static/..%2fsecret.txt",
    "/static/%2e%2e%2fsecret.txt",
    "/static/sub/../../secret.txt",
    "/static/sub/%2e%2e/%2e%2e/secret.txt",
    "/static/.%2e/secret.txt",
    "/static/..%5csecret.txt",
]


@pytest.fixture(params=["run_simple", "command"])
def static_server(request: pytest.FixtureRequest, tmp_path: Path):
    (tmp_path / "secret.txt").write_text(SECRET)
    public = tmp_path / "public"
    (public / "sub").mkdir(parents=True)
    (public / "hello.txt").write_text("static hello\n")
    (public / "sub" / "inner.txt").write_text("inner file\n")
    port = free_port()
    if request.param == "run_simple":
        (tmp_path / "serve_static.py").write_text(SCRIPT)
        args = ["serve_static.py", str(port), str(public)]
    else:
        (tmp_path / "plain.py").write_text(APP)
        args = ["-m", "fastserve", "plain:app", "--port", str(port), "--static", "/static=public"]
    with LiveCommand(args, cwd=tmp_path, port=port) as server:
        server.wait_ready()
        yield server


def test_file_is_served(static_server: LiveCommand) -> None:
    response = static_server.get("/static/hello.txt")
    assert (response.status, response.body) == (200, b"static hello\n")
    assert response.headers["Content-Type"].startswith("text/plain")
    assert response.headers["Cache-Control"] == "max-age=43200, public"
    assert response.headers["Etag"]
    assert static_server.get("/static/sub/inner.txt").body == b"inner file\n"
    # dot segments that stay inside the directory are fine
    assert static_server.get("/static/sub/../hello.txt").body == b"static hello\n"


def test_conditional_request_gets_304(static_server: LiveCommand) -> None:
    etag = static_server.get("/static/hello.txt").headers["Etag"]
    response = static_server.get("/static/hello.txt", headers={"If-None-Match": etag})
    assert (response.status, response.body) == (304, b"")


def test_other_paths_reach_the_app(static_server: LiveCommand) -> None:
    assert static_server.get("/other").body == b"app fallback"
    assert static_server.get("/static/missing.txt").body == b"app fallback"


@pytest.mark.parametrize("path", ESCAPES)
def test_parent_directory_escape_is_refused(static_server: LiveCommand, path: str) -> None:
    response = static_server.get(path)
    assert SECRET.encode() not in response.body, (path, response.status)


def test_absolute_path_escape_is_refused(static_server: LiveCommand, tmp_path: Path) -> None:
    response = static_server.get("/static/" + str(tmp_path / "secret.txt"))
    assert SECRET.encode() not in response.body
