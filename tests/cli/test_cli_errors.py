"""Every mistake a user can make on the command line: one line on stderr, exit status 2.

Each case runs ``python -m fastserve ...`` in a subprocess, in a temporary
directory holding a few small modules, and checks that nothing was served,
no traceback was printed, and stderr is exactly one ``fastserve: error:``
line naming the problem.
"""

from __future__ import annotations

import socket
from pathlib import Path

import pytest
from live_command import child_env, free_port, run_command

APP_SOURCE = """
def app(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"hello"]

value = 42


async def asgi_app(scope, receive, send):
    pass


def three(environ, start_response, extra):
    pass

def create_app():
    return app
"""


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    (tmp_path / "hello.py").write_text(APP_SOURCE)
    (tmp_path / "noapp.py").write_text("x = 1\n")
    (tmp_path / "notes.txt").write_text("not a socket\n")
    (tmp_path / "garbage.pem").write_text(
        "-----BEGIN CERTIFICATE-----\nnope\n-----END CERTIFICATE-----\n"
    )
    (tmp_path / "public").mkdir()
    return tmp_path


def assert_one_line_error(result, *fragments: str) -> str:
    assert result.returncode == 2, (result.returncode, result.stdout, result.stderr)
    assert "Traceback" not in result.stderr
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("fastserve: error: "), lines[0]
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])
    return lines[0]


@pytest.mark.parametrize(
    ("args", "fragments"),
    [
        pytest.param(
            ["nosuchmodule_xyz:app"], ["no module named 'nosuchmodule_xyz'"], id="no-such-module"
        ),
        pytest.param(
            ["nosuchpkg_xyz.sub:app"], ["no module named 'nosuchpkg_xyz'"], id="no-such-package"
        ),
        pytest.param(
            ["hello.nosub:app"], ["no module named 'hello.nosub'"], id="no-such-submodule"
        ),
        pytest.param(["my-app:app"], ["'my-app' is not a module name"], id="bad-module-name"),
        pytest.param(["hello:nope"], ["'hello' has no attribute 'nope'"], id="no-such-attribute"),
        pytest.param(["hello:nope()"], ["'hello' has no attribute 'nope'"], id="no-such-factory"),
        pytest.param(
            ["noapp"], ["module 'noapp' has no 'app' or 'application'"], id="no-default-app"
        ),
        pytest.param(
            ["hello:value"],
            ["'hello:value' is not a WSGI app", "int is not callable"],
            id="attribute-not-callable",
        ),
        pytest.param(
            ["hello:create_app"],
            ["cannot be called as app(environ, start_response)", "'hello:create_app()'"],
            id="factory-without-call",
        ),
        pytest.param(["hello:asgi_app"], ["is an async (ASGI) app"], id="asgi-app"),
        pytest.param(
            ["hello:three"],
            ["'hello:three' cannot be called as app(environ, start_response)"],
            id="wrong-signature",
        ),
        pytest.param(
            ["hello:create_app(os.environ)"],
            ["factory arguments must be Python literals"],
            id="factory-non-literal-argument",
        ),
        pytest.param(["hello:1+"], ["cannot understand '1+'"], id="unparsable-attribute"),
        pytest.param(
            ["--port", "70000"], ["port 70000 is out of range (0-65535)"], id="port-too-big"
        ),
        pytest.param(["--port", "-1"], ["port -1 is out of range"], id="port-negative"),
        pytest.param(
            ["--port", "http"], ["port must be a number, not 'http'"], id="port-not-a-number"
        ),
        pytest.param(
            ["--cert", "missing.pem"],
            ["certificate file not found: missing.pem"],
            id="cert-missing",
        ),
        pytest.param(
            ["--cert", "garbage.pem"], ["cannot load the certificate/key"], id="cert-unreadable"
        ),
        pytest.param(["--key", "hello.py"], ["--key needs --cert"], id="key-without-cert"),
        pytest.param(
            ["--adhoc", "--cert", "garbage.pem"], ["not allowed with argument"], id="adhoc-and-cert"
        ),
        pytest.param(
            ["--processes", "2", "--threads"],
            ["--processes cannot be combined with --threads"],
            id="processes-with-threads",
        ),
        pytest.param(["--processes", "0"], ["must be at least 1"], id="processes-zero"),
        pytest.param(["--static", "public"], ["--static expects URL=DIR"], id="static-no-equals"),
        pytest.param(
            ["--static", "/s=missing_dir"], ["missing_dir does not exist"], id="static-missing-dir"
        ),
        pytest.param(
            ["--static", "/s=public", "--static", "s=public"],
            ["/s is given twice"],
            id="static-twice",
        ),
        pytest.param(
            ["--unix", "notes.txt"], ["exists and is not a socket"], id="unix-regular-file"
        ),
        pytest.param(["--unix", "nodir/app.sock"], ["does not exist"], id="unix-missing-dir"),
        pytest.param(
            ["--unix", "app.sock", "--port", "8000"],
            ["--port cannot be used with --unix"],
            id="unix-with-port",
        ),
        pytest.param(
            ["--unix", "app.sock", "--host", "0.0.0.0"],
            ["not allowed with argument"],
            id="unix-with-host",
        ),
        pytest.param(
            ["--host", "no-such-host.invalid"], ["no such host or address"], id="unknown-host"
        ),
        pytest.param(
            ["--host", "192.0.2.10"],
            ["--host 192.0.2.10: not an address of this machine"],
            id="foreign-address",
        ),
        pytest.param(
            ["--no-such-option"], ["unrecognized arguments: --no-such-option"], id="unknown-option"
        ),
    ],
)
def test_user_error_is_one_line_and_exit_2(
    workdir: Path, args: list[str], fragments: list[str]
) -> None:
    # a free port, so that only the mistake under test can fail
    port_args = [] if any(a in args for a in ("--port", "--unix")) else ["--port", str(free_port())]
    result = run_command(["-m", "fastserve", *args, *port_args], cwd=workdir)
    assert_one_line_error(result, *fragments)


def test_key_file_missing(workdir: Path) -> None:
    from werkzeug.serving import make_ssl_devcert

    cert, _key = make_ssl_devcert(str(workdir / "dev"), host="localhost")
    result = run_command(["-m", "fastserve", "--cert", cert, "--key", "missing.key"], cwd=workdir)
    assert_one_line_error(result, "key file not found: missing.key")


def test_port_in_use(workdir: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = run_command(["-m", "fastserve", "hello:app", "--port", str(port)], cwd=workdir)
    assert_one_line_error(result, f"port {port} is in use by another program")


def test_adhoc_without_cryptography(workdir: Path) -> None:
    # sys.modules[name] = None makes the package look uninstalled (find_spec -> None)
    code = "import sys; sys.modules['cryptography'] = None; from fastserve.cli import main; main()"
    result = run_command(
        ["-c", code, "--adhoc", "--port", str(free_port())], cwd=workdir, env=child_env(workdir)
    )
    assert_one_line_error(
        result, "--adhoc needs the 'cryptography' package: pip install cryptography"
    )


def test_exception_in_user_module_shows_its_traceback(workdir: Path) -> None:
    (workdir / "broken.py").write_text("import json\n\nraise RuntimeError('broken on purpose')\n")
    result = run_command(["-m", "fastserve", "broken:app", "--port", str(free_port())], cwd=workdir)
    assert result.returncode == 2
    # the traceback points into the user's file, not into fastserve or importlib
    assert 'broken.py", line 3' in result.stderr
    assert "RuntimeError: broken on purpose" in result.stderr
    for fastserve_or_importlib in ("cli.py", "_app_loading.py", "importlib"):
        assert fastserve_or_importlib not in result.stderr
    assert (
        result.stderr.splitlines()[-1]
        == "fastserve: error: could not import 'broken' (traceback above)"
    )


def test_syntax_error_in_user_module(workdir: Path) -> None:
    (workdir / "typo.py").write_text("def app(environ, start_response)\n    pass\n")
    result = run_command(["-m", "fastserve", "typo", "--port", str(free_port())], cwd=workdir)
    assert result.returncode == 2
    assert 'typo.py", line 1' in result.stderr and "SyntaxError" in result.stderr
    assert (
        result.stderr.splitlines()[-1]
        == "fastserve: error: could not import 'typo' (traceback above)"
    )


def test_missing_dependency_of_user_module_is_not_reported_as_missing_app(workdir: Path) -> None:
    (workdir / "needs.py").write_text("import nosuchdependency_xyz\n")
    result = run_command(["-m", "fastserve", "needs", "--port", str(free_port())], cwd=workdir)
    assert result.returncode == 2
    assert "No module named 'nosuchdependency_xyz'" in result.stderr
    assert (
        result.stderr.splitlines()[-1]
        == "fastserve: error: could not import 'needs' (traceback above)"
    )


def test_factory_that_raises(workdir: Path) -> None:
    (workdir / "factory.py").write_text("def create_app(name):\n    raise ValueError(name)\n")
    result = run_command(
        ["-m", "fastserve", "factory:create_app('cfg-x')", "--port", str(free_port())], cwd=workdir
    )
    assert result.returncode == 2
    assert "ValueError: cfg-x" in result.stderr and 'factory.py", line 2' in result.stderr
    assert result.stderr.splitlines()[-1] == (
        "fastserve: error: 'factory:create_app('cfg-x')' raised an error (traceback above)"
    )
