"""The ``fastserve`` command on an inherited socket: systemd's ``LISTEN_FDS`` and ``--fd N``.

``socket_launcher.py`` does what systemd does: it binds and listens, puts the
socket on fd 3, sets ``LISTEN_FDS=1`` and ``LISTEN_PID`` to its own pid and
execs the command. ``fastserve._activation`` is also tested in-process.
"""

from __future__ import annotations

import http.client
import os
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest
from listening import accept_queues
from live_command import LiveCommand, child_env, free_port, run_command

from fastserve._activation import InheritedSocketError, describe, listen_fds, startup_lines

LAUNCHER = str(Path(__file__).with_name("socket_launcher.py"))
APP = """
import os


def app(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    seen = [os.environ.get(name) for name in ("LISTEN_FDS", "LISTEN_PID", "LISTEN_FDNAMES")]
    return [f"hello v1 pid={os.getpid()} systemd-variables={seen}".encode()]
"""


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    (tmp_path / "hello.py").write_text(APP)
    return tmp_path


def launch(
    workdir: Path, address: str, command: Sequence[str], *launcher_options: str, **kwargs
) -> LiveCommand:
    args = [LAUNCHER, *launcher_options, address, "--", "-m", "fastserve", *command]
    return LiveCommand(args, cwd=workdir, env=child_env(workdir), **kwargs)


def launch_and_fail(workdir: Path, address: str, command: Sequence[str], *options: str) -> str:
    """Run the launcher to the end; the command must fail with one error line (status 2)."""
    args = [LAUNCHER, *options, address, "--", "-m", "fastserve", *command]
    result = run_command(args, cwd=workdir)
    assert result.returncode == 2, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    [line] = result.stderr.strip().splitlines()
    assert line.startswith("fastserve: error: ")
    return line


# --- served for real -----------------------------------------------------------------------------


@pytest.mark.live
def test_systemd_tcp_socket_is_served(workdir: Path) -> None:
    port = free_port()
    with launch(workdir, f"tcp:127.0.0.1:{port}", ["hello:app"], port=port) as server:
        server.wait_ready()
        response = server.get("/")
        assert response.status == 200
        assert response.headers["Server"].startswith("fastserve/")
        # sd_listen_fds(1): the variables are gone before the app runs
        assert response.body.endswith(b"systemd-variables=[None, None, None]")
        assert f"pid={server.proc.pid}".encode() in response.body  # exec kept the launcher's pid
    log = server.log
    assert f" * Running on http://127.0.0.1:{port} (inherited socket, fd 3)" in log
    assert "Press CTRL+C to quit" in log


@pytest.mark.live
def test_systemd_unix_socket_is_served(workdir: Path) -> None:
    path = workdir / "app.sock"
    with launch(workdir, f"unix:{path}", ["hello:app"], unix_path=path) as server:
        server.wait_ready()
        response = server.get("/")
        assert response.status == 200 and response.body.startswith(b"hello v1")
        assert response.headers["Server"].startswith("fastserve/")
    assert f" * Running on unix://{path} (inherited socket, fd 3)" in server.log


@pytest.mark.live
def test_fd_option_serves_an_inherited_socket_with_threads_and_tls(workdir: Path) -> None:
    port = free_port()
    command = ["hello:app", "--fd", "3", "--adhoc"]
    address = f"tcp:127.0.0.1:{port}"
    with launch(workdir, address, command, "--no-env", port=port, https=True) as server:
        server.wait_ready()
        response = server.get("/")
        assert response.status == 200 and response.body.startswith(b"hello v1")
    assert f" * Running on https://127.0.0.1:{port} (inherited socket, fd 3)" in server.log


@pytest.mark.live
def test_systemd_socket_with_reload_serves_across_restarts(workdir: Path) -> None:
    port = free_port()
    command = ["hello:app", "--reload"]
    with launch(workdir, f"tcp:127.0.0.1:{port}", command, port=port) as server:
        server.wait_ready()
        first = server.get("/")
        assert first.body.startswith(b"hello v1")
        source = workdir / "hello.py"
        source.write_text(source.read_text().replace("hello v1", "hello v2"))
        server.wait_for_log(" * Detected change in", timeout=30)
        server.wait_for_log(" * Restarting with", timeout=30, count=2)
        server.wait_ready()
        second = server.get("/")
        assert second.body.startswith(b"hello v2")
        # the reloader's children serve, never the launcher's process itself
        assert f"pid={server.proc.pid}".encode() not in second.body
        assert second.body.endswith(b"systemd-variables=[None, None, None]")
    assert server.log.count("(inherited socket, fd 3)") == 1


@pytest.mark.live
def test_listen_pid_of_another_process_is_ignored(workdir: Path) -> None:
    passed, own = free_port(), free_port()
    command = ["hello:app", "--port", str(own)]
    options = ("--listen-pid", "1")
    with launch(workdir, f"tcp:127.0.0.1:{passed}", command, *options, port=own) as server:
        server.wait_ready()
        response = server.get("/")
        assert response.status == 200
        assert response.body.endswith(b"systemd-variables=[None, None, None]")
    assert "inherited socket" not in server.log
    assert f" * Running on http://127.0.0.1:{own}" in server.log


@pytest.mark.live
@pytest.mark.parametrize("workers", [[], ["--processes", "2"]], ids=["plain", "processes"])
def test_socket_outlives_a_stopped_server_and_serves_the_next(
    workdir: Path, workers: list[str]
) -> None:
    """systemd keeps the socket across ``systemctl restart``: a SIGTERM must not shut it down.

    Pre-fork workers share the inherited socket (no ``SO_REUSEPORT`` listeners
    of their own, which would outlive the hand-off)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(16)
        port = sock.getsockname()[1]
        for _ in range(2):  # start, stop, start again on the same socket
            server = subprocess.Popen(
                [sys.executable, "-m", "fastserve", "hello:app", "--fd", str(sock.fileno())]
                + workers,
                cwd=workdir,
                env=child_env(workdir),
                pass_fds=[sock.fileno()],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            try:
                # connections queue in the backlog until the server accepts them
                client = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
                client.request("GET", "/")
                assert client.getresponse().read().startswith(b"hello v1")
                client.close()
                if sys.platform.startswith("linux"):
                    assert len(accept_queues(port)) == 1  # only the inherited socket
                server.send_signal(signal.SIGTERM)
                server.wait(timeout=30)
            finally:
                if server.poll() is None:
                    server.kill()
                    server.wait()
            assert sock.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN) == 1


# --- refused with one line -----------------------------------------------------------------------


def test_fd_that_is_not_open_is_refused(workdir: Path) -> None:
    result = run_command(["-m", "fastserve", "hello:app", "--fd", "97"], cwd=workdir)
    assert result.returncode == 2
    assert result.stderr.strip() == "fastserve: error: fd 97 is not open"


def test_socket_that_does_not_listen_is_refused(workdir: Path) -> None:
    line = launch_and_fail(workdir, f"tcp:127.0.0.1:{free_port()}", ["hello:app"], "--no-listen")
    assert line == "fastserve: error: fd 3 is not listening: bind and listen() it first"


def test_datagram_socket_is_refused(workdir: Path) -> None:
    line = launch_and_fail(workdir, f"tcp:127.0.0.1:{free_port()}", ["hello:app"], "--udp")
    assert "fd 3 is a SOCK_DGRAM socket, not a stream (TCP or unix) socket" in line


def test_port_with_an_inherited_socket_is_refused(workdir: Path) -> None:
    line = launch_and_fail(workdir, f"tcp:127.0.0.1:{free_port()}", ["hello:app", "--port", "80"])
    assert "cannot be used with the socket systemd passed (LISTEN_FDS)" in line


def test_several_systemd_sockets_need_fd(workdir: Path) -> None:
    # fd 4 is not there: the count is refused before any fd is looked at
    line = launch_and_fail(
        workdir, f"tcp:127.0.0.1:{free_port()}", ["hello:app"], "--listen-fds", "2"
    )
    assert line == "fastserve: error: LISTEN_FDS=2 but fd 4 is not open in this process"


def test_fd_and_host_are_exclusive(workdir: Path) -> None:
    result = run_command(["-m", "fastserve", "--fd", "3", "--host", "0.0.0.0"], cwd=workdir)
    assert result.returncode == 2
    assert "not allowed with argument" in result.stderr


# --- fastserve._activation in-process ------------------------------------------------------------


@pytest.fixture
def listening_tcp() -> Iterator[socket.socket]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield sock


def test_listen_fds_ignores_another_pid_and_unsets_the_variables() -> None:
    env = {"LISTEN_PID": str(os.getpid() + 1), "LISTEN_FDS": "1", "LISTEN_FDNAMES": "web"}
    assert listen_fds(env) == []
    assert env == {}


def test_listen_fds_without_variables() -> None:
    env = {"PATH": "/bin"}
    assert listen_fds(env) == []
    assert env == {"PATH": "/bin"}


def test_listen_fds_zero_sockets_for_this_pid() -> None:
    env = {"LISTEN_PID": str(os.getpid()), "LISTEN_FDS": "0"}
    assert listen_fds(env) == []
    assert env == {}


@pytest.mark.parametrize(
    ("pid", "count", "message"),
    [
        ("abc", "1", "LISTEN_PID='abc' is not a number of 0 or more"),
        ("self", "x", "LISTEN_FDS='x' is not a number of 0 or more"),
        ("self", "-1", "LISTEN_FDS='-1' is not a number of 0 or more"),
    ],
    ids=["pid-not-a-number", "count-not-a-number", "count-negative"],
)
def test_listen_fds_rejects_malformed_variables(pid: str, count: str, message: str) -> None:
    env = {"LISTEN_PID": str(os.getpid()) if pid == "self" else pid, "LISTEN_FDS": count}
    with pytest.raises(InheritedSocketError, match=message):
        listen_fds(env)
    assert env == {}


def test_describe_tcp_listener(listening_tcp: socket.socket) -> None:
    listener = describe(listening_tcp.fileno())
    port = listening_tcp.getsockname()[1]
    assert (listener.hostname, listener.port) == ("127.0.0.1", port)
    assert listener.family == socket.AF_INET
    assert listener.is_loopback
    assert startup_lines(listener, tls=False) == [
        f" * Running on http://127.0.0.1:{port} (inherited socket, fd {listening_tcp.fileno()})"
    ]
    listening_tcp.getsockname()  # still open and usable


def test_describe_ipv6_wildcard_listener() -> None:
    if not socket.has_ipv6:
        pytest.skip("no IPv6 on this machine")
    with socket.socket(socket.AF_INET6) as sock:
        try:
            sock.bind(("::", 0))
        except OSError as exc:
            pytest.skip(f"cannot bind IPv6: {exc}")
        sock.listen()
        listener = describe(sock.fileno())
        assert listener.hostname == "::" and not listener.is_loopback
        assert startup_lines(listener, tls=True)[0].startswith(" * Running on https://[::]:")


@pytest.mark.skipif(not hasattr(socket, "AF_UNIX"), reason="no unix sockets")
def test_describe_unix_listener(tmp_path: Path) -> None:
    with socket.socket(socket.AF_UNIX) as sock:
        sock.bind(str(tmp_path / "s"))
        sock.listen()
        listener = describe(sock.fileno())
        assert listener.hostname == f"unix://{tmp_path / 's'}" and listener.port == 0
        assert listener.is_loopback


def test_describe_refuses_a_pipe() -> None:
    read, write = os.pipe()
    try:
        with pytest.raises(InheritedSocketError, match=f"fd {read} is not a socket"):
            describe(read)
    finally:
        os.close(read)
        os.close(write)


def test_describe_refuses_an_unbound_socket() -> None:
    with socket.socket() as sock:
        with pytest.raises(InheritedSocketError, match="is not listening"):
            describe(sock.fileno())
