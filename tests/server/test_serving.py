"""run_simple / make_server parity: arguments, binding, unix sockets, inherited
descriptors, TLS, banner and access log, signals, pre-forked workers."""

from __future__ import annotations

import json
import os
import signal
import socket
import ssl
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import pytest
from server_helpers import Reader, hello_app, recv_all

import fastserve
from fastserve.serving import make_server, make_ssl_devcert, run_simple

pytestmark = pytest.mark.live


def test_port_must_be_an_integer() -> None:
    with pytest.raises(TypeError, match="port must be an integer"):
        run_simple("127.0.0.1", "5000", None)  # type: ignore[arg-type]


def test_threaded_and_processes_exclusive() -> None:
    with pytest.raises(ValueError, match="Cannot have a multi-thread and multi-process server."):
        make_server("127.0.0.1", 0, hello_app, threaded=True, processes=2)


def test_address_in_use_prints_and_exits(capsys: pytest.CaptureFixture[str]) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(SystemExit) as exc:
            make_server("127.0.0.1", port, hello_app)
    assert exc.value.code == 1
    err = capsys.readouterr().err
    assert "Address already in use" in err
    assert f"Port {port} is in use by another program." in err


def test_server_attributes() -> None:
    srv = make_server("127.0.0.1", 0, hello_app, threaded=True)
    try:
        assert srv.host == "127.0.0.1" and srv.port == srv.server_address[1] > 0
        assert srv.app is hello_app and srv.passthrough_errors is False
        assert srv.address_family == socket.AF_INET and srv.ssl_context is None
        assert srv._server_version == f"fastserve/{fastserve.__version__}"
        assert srv.multithread and not srv.multiprocess
        assert isinstance(srv, fastserve.ThreadedWSGIServer)
    finally:
        srv.server_close()


def test_unix_socket_replaces_stale_file(tmp_path: Path, serve: Any) -> None:
    path = tmp_path / "app.sock"
    path.write_text("stale")

    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        start_response("200 OK", [])
        keys = ("REMOTE_ADDR", "REMOTE_PORT", "SERVER_NAME", "SERVER_PORT")
        return [json.dumps([environ[k] for k in keys]).encode()]

    srv = fastserve.serving.make_server(f"unix://{path}", 0, app, threaded=True)
    from server_helpers import Running

    running = Running(srv)
    try:
        with socket.socket(socket.AF_UNIX) as s:
            s.settimeout(5)
            s.connect(str(path))
            s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            env = json.loads(Reader(s).response().body)
        assert env == ["<local>", 0, str(path)[0], str(path)[1]]
    finally:
        running.stop()


def test_inherited_descriptor_is_used(serve: Any) -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        srv = make_server("127.0.0.1", 0, hello_app, fd=listener.fileno())
        try:
            assert srv.port == listener.getsockname()[1]
            assert srv.server_address == listener.getsockname()
        finally:
            srv.server_close()


def test_tls_with_cert_files(tmp_path: Path) -> None:
    pytest.importorskip("cryptography")
    cert, key = make_ssl_devcert(str(tmp_path / "dev"), host="localhost")

    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        start_response("200 OK", [])
        return [environ["wsgi.url_scheme"].encode()]

    from server_helpers import Running

    running = Running(make_server("127.0.0.1", 0, app, threaded=True, ssl_context=(cert, key)))
    try:
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        with running.connect() as raw, ctx.wrap_socket(raw, server_hostname="localhost") as s:
            reader = Reader(s)
            for _ in range(2):  # keep-alive over TLS
                s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
                assert reader.response().body == b"https"
        # plain HTTP to the TLS port: dropped quietly, the server goes on
        with running.connect() as s:
            s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            recv_all(s, timeout=5)
        with running.connect() as raw, ctx.wrap_socket(raw, server_hostname="localhost") as s:
            s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            assert Reader(s).response().body == b"https"
    finally:
        running.stop()


def test_ipv6_loopback(serve: Any) -> None:
    if not socket.has_ipv6:
        pytest.skip("no IPv6")
    try:
        srv = make_server("::1", 0, hello_app, threaded=True)
    except SystemExit:
        pytest.skip("::1 not available")
    from server_helpers import Running

    running = Running(srv)
    try:
        assert srv.address_family == socket.AF_INET6
        with socket.create_connection(("::1", srv.port), timeout=5) as s:
            s.sendall(b"GET /v6 HTTP/1.1\r\nHost: x\r\n\r\n")
            assert Reader(s).response().body == b"hello /v6"
    finally:
        running.stop()


def test_access_log_format_and_colours(serve: Any, logs: Any) -> None:
    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        start_response("404 NOT FOUND" if environ["PATH_INFO"] == "/missing" else "200 OK", [])
        return [b""]

    srv = serve(app)
    with srv.connect() as s:
        reader = Reader(s)
        s.sendall(b"GET /a%20b?x=%41 HTTP/1.1\r\nHost: x\r\n\r\n")
        reader.response()
        s.sendall(b"GET /missing HTTP/1.1\r\nHost: x\r\n\r\n")
        reader.response()
    ok = logs.wait_for('"GET /a%20b?x=A HTTP/1.1" 200 -')
    assert ok.startswith("127.0.0.1 - - [")
    assert logs.wait_for("/missing").endswith('"\x1b[33mGET /missing HTTP/1.1\x1b[0m" 404 -')


def run_script(
    body: str, tmp_path: Path, env: dict[str, str] | None = None
) -> subprocess.Popen[str]:
    script = tmp_path / "serve.py"
    script.write_text(textwrap.dedent(body))
    full_env = {**os.environ, **(env or {}), "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen(
        [sys.executable, str(script)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=full_env,
        cwd=tmp_path,
    )


def wait_port(port: int, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.05)
    raise AssertionError("server did not start")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def parser_env(server_parser: Any) -> dict[str, str]:
    """Environment that makes a server subprocess use this test's parser."""
    if server_parser.__name__.endswith("_py"):
        return {"FASTSERVE_NO_EXTENSIONS": "1"}
    return {}


def test_run_simple_banner_and_sigint(tmp_path: Path, parser_env: dict[str, str]) -> None:
    port = free_port()
    proc = run_script(
        f"""
        from fastserve import run_simple
        def app(environ, start_response):
            start_response("200 OK", [])
            return [b"ok"]
        run_simple("127.0.0.1", {port}, app, threaded=True)
        print("returned")
        """,
        tmp_path,
        parser_env,
    )
    try:
        wait_port(port)
        with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
            s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            assert Reader(s).response().body == b"ok"
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=10)
    finally:
        proc.kill()
    assert proc.returncode == 0
    assert "WARNING: This is a development server." in out
    assert f" * Running on http://127.0.0.1:{port}" in out
    assert "Press CTRL+C to quit" in out
    assert '"GET / HTTP/1.1" 200 -' in out
    assert "returned" in out
    assert "Traceback" not in out


def test_processes_prefork_workers_and_sigterm(tmp_path: Path, parser_env: dict[str, str]) -> None:
    port = free_port()
    gate = tmp_path / "gate"
    proc = run_script(
        f"""
        import os, time
        from fastserve import run_simple
        def app(environ, start_response):
            if environ["PATH_INFO"] == "/hold":
                while not os.path.exists({str(gate)!r}):
                    time.sleep(0.02)
            start_response("200 OK", [])
            return [b"%d %s" % (os.getpid(), str(environ["wsgi.multiprocess"]).encode())]
        run_simple("127.0.0.1", {port}, app, processes=2)
        """,
        tmp_path,
        parser_env,
    )
    try:
        wait_port(port)
        hold = socket.create_connection(("127.0.0.1", port), timeout=10)
        hold.sendall(b"GET /hold HTTP/1.1\r\nHost: x\r\n\r\n")
        time.sleep(0.3)
        # one worker is held: the other one serves
        with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
            s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            other_pid, multiprocess = Reader(s).response().body.split()
        gate.write_text("go")
        held_pid, _ = Reader(hold).response().body.split()
        hold.close()
        assert multiprocess == b"True"
        assert held_pid != other_pid
        assert proc.pid not in (int(held_pid), int(other_pid))
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=10)
        for pid in (int(held_pid), int(other_pid)):
            deadline = time.monotonic() + 5
            while Path(f"/proc/{pid}").exists() and time.monotonic() < deadline:
                time.sleep(0.05)
            assert not Path(f"/proc/{pid}").exists()
    finally:
        proc.kill()


def test_tls_partial_head_times_out_with_408(tmp_path: Path, logs: Any) -> None:
    pytest.importorskip("cryptography")
    from server_helpers import Running

    cert, key = make_ssl_devcert(str(tmp_path / "dev"), host="localhost")
    srv = make_server("127.0.0.1", 0, hello_app, threaded=True, ssl_context=(cert, key))
    srv.__class__ = type("Short", (type(srv),), {"request_head_timeout": 0.3})
    running = Running(srv)
    try:
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        with running.connect() as raw, ctx.wrap_socket(raw, server_hostname="localhost") as s:
            s.sendall(b"GET / HTTP/1.1\r\nHo")
            assert recv_all(s, timeout=5).startswith(b"HTTP/1.1 408 ")
        logs.wait_for("code 408")
    finally:
        running.stop()
