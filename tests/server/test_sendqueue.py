"""What the kernel says is still queued on a socket (``_sendqueue``)."""

from __future__ import annotations

import socket
import sys
import time

import pytest

from fastserve._sendqueue import queued_bytes


@pytest.mark.live  # a TCP pair: what SIOCOUTQ reports is TCP's unacknowledged bytes
@pytest.mark.skipif(
    not sys.platform.startswith(("linux", "darwin")), reason="no send-queue query on this platform"
)
def test_counts_bytes_the_peer_has_not_taken() -> None:
    with socket.create_server(("127.0.0.1", 0)) as listener:
        client = socket.create_connection(listener.getsockname())
        server, _ = listener.accept()
        with client, server:
            server.setblocking(False)
            assert queued_bytes(server) == 0
            sent = 0
            try:
                while sent < 64 << 20:
                    sent += server.send(b"x" * 65536)
            except BlockingIOError:
                pass
            waiting = queued_bytes(server)
            assert waiting is not None and 0 < waiting <= sent
            client.settimeout(10)
            received = 0
            deadline = time.monotonic() + 30
            while received < sent and time.monotonic() < deadline:
                received += len(client.recv(1 << 20))
            assert received == sent
            while queued_bytes(server) and time.monotonic() < deadline:
                time.sleep(0.01)  # the last ACK may still be on its way
            assert queued_bytes(server) == 0


def test_a_closed_socket_says_nothing() -> None:
    sock = socket.socket()
    sock.close()
    assert queued_bytes(sock) is None
