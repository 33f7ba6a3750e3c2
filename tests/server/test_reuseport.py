"""The pieces of ``processes=N``'s SO_REUSEPORT listeners, in this process
(``fastserve._reuseport`` and the engine's drain sweep). The workers
themselves are tested in ``tests/live/test_live_reuseport.py``."""

from __future__ import annotations

import socket
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from listening import accept_queues, linux_only, wait_for
from server_helpers import hello_app, recv_all

from fastserve import _reuseport, _signals
from fastserve._engine import Engine
from fastserve.server import BaseWSGIServer, ForkingWSGIServer, make_server

pytestmark = pytest.mark.live


@pytest.fixture
def servers() -> Iterator[list[BaseWSGIServer]]:
    made: list[BaseWSGIServer] = []
    yield made
    for srv in made:
        srv.server_close()


def forking(servers: list[BaseWSGIServer], host: str = "127.0.0.1", **kw: Any) -> Any:
    srv = make_server(host, 0, hello_app, processes=3, **kw)
    servers.append(srv)
    assert isinstance(srv, ForkingWSGIServer)
    return srv


# -- which servers get a group --------------------------------------------------------


@linux_only
def test_a_tcp_socket_the_server_bound_is_eligible(servers: list[BaseWSGIServer]) -> None:
    assert _reuseport.eligible(forking(servers))


def test_no_group_for_an_inherited_socket(servers: list[BaseWSGIServer]) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        srv = forking(servers, fd=sock.fileno())
        assert not _reuseport.eligible(srv)


def test_no_group_for_a_unix_socket(servers: list[BaseWSGIServer], tmp_path: Path) -> None:
    assert not _reuseport.eligible(forking(servers, f"unix://{tmp_path / 'app.sock'}"))


def test_no_group_when_reuse_port_is_off(servers: list[BaseWSGIServer]) -> None:
    srv = forking(servers)
    srv.reuse_port = False
    assert not _reuseport.eligible(srv)


# -- the group ------------------------------------------------------------------------------


@linux_only
def test_the_bound_socket_has_no_reuse_port_until_the_workers_start(
    servers: list[BaseWSGIServer],
) -> None:
    srv = forking(servers)
    assert srv.socket.getsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT) == 0
    listeners = _reuseport.open_listeners(srv, 3)
    try:
        assert listeners[0] is srv.socket
        assert {s.getsockname() for s in listeners} == {srv.socket.getsockname()}
        assert all(s.getsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT) for s in listeners)
        assert len(accept_queues(srv.port)) == 3
    finally:
        for sock in listeners[1:]:
            sock.close()


@linux_only
def test_a_second_server_cannot_join_the_group(
    servers: list[BaseWSGIServer], capsys: pytest.CaptureFixture[str]
) -> None:
    srv = forking(servers)
    listeners = _reuseport.open_listeners(srv, 2)
    try:
        with pytest.raises(SystemExit) as exit_info:
            make_server("127.0.0.1", srv.port, hello_app, processes=2)
        assert exit_info.value.code == 1
        err = capsys.readouterr().err
        assert "Address already in use" in err
        assert f"Port {srv.port} is in use by another program." in err
        assert len(accept_queues(srv.port)) == 2
    finally:
        listeners[1].close()


def test_ipv6_listeners_join_one_group(servers: list[BaseWSGIServer]) -> None:
    if not (_reuseport.SUPPORTED and socket.has_ipv6):
        pytest.skip("needs Linux and IPv6")
    try:
        srv = forking(servers, "::1")
    except SystemExit:
        pytest.skip("::1 cannot be bound here")
    listeners = _reuseport.open_listeners(srv, 2)
    try:
        clients = [socket.create_connection(("::1", srv.port)) for _ in range(32)]
        accepted = 0
        for sock in listeners:
            sock.setblocking(False)
            while True:
                try:
                    sock.accept()[0].close()
                except BlockingIOError:
                    break
                accepted += 1
        assert accepted == 32
        for client in clients:
            client.close()
    finally:
        listeners[1].close()


# -- the drain sweep ---------------------------------------------------------------------


def queue_requests(port: int, count: int) -> list[socket.socket]:
    clients = []
    for _ in range(count):
        client = socket.create_connection(("127.0.0.1", port), timeout=10)
        client.sendall(b"GET / HTTP/1.0\r\nHost: t\r\n\r\n")
        clients.append(client)
    return clients


def test_drain_accepts_what_is_queued_before_the_listener_is_shut_down(
    servers: list[BaseWSGIServer],
) -> None:
    srv = make_server("127.0.0.1", 0, hello_app)
    servers.append(srv)
    engine = srv._engine = Engine(srv, 0.1, sweep_on_drain=True)
    clients = queue_requests(srv.port, 5)  # nobody accepts yet: they wait in the queue
    if sys.platform.startswith("linux"):
        wait_for(lambda: accept_queues(srv.port) == [5], "5 connections queued")
    engine.begin_drain(False)
    assert engine.in_flight() == 5  # accepted, waiting for the leader
    _signals.stop_listening(srv.socket)
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", srv.port), timeout=5)
    leader = threading.Thread(target=engine.lead)
    leader.start()
    try:
        for client in clients:
            response = recv_all(client, timeout=10)
            assert response.startswith(b"HTTP/1.0 200 OK\r\n"), response
            assert response.endswith(b"\r\n\r\nhello /"), response
            client.close()
        assert engine.drained.wait(10)
    finally:
        engine.stop()
        leader.join(10)


def test_without_the_sweep_the_queue_stays_for_the_socket_owner(
    servers: list[BaseWSGIServer],
) -> None:
    """An inherited socket: what is queued is left to the process that keeps it."""
    srv = make_server("127.0.0.1", 0, hello_app)
    servers.append(srv)
    engine = Engine(srv, 0.1)
    clients = queue_requests(srv.port, 3)
    engine.begin_drain(False)
    assert engine.in_flight() == 0
    srv.socket.setblocking(True)
    srv.socket.settimeout(5)
    for _ in clients:
        srv.socket.accept()[0].close()
    for client in clients:
        client.close()
    engine.close()
