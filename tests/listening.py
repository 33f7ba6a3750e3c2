"""What Linux says about the listening sockets on a loopback port (``/proc/net/tcp``).

``SO_REUSEPORT`` listeners show up as one row each; for a listening socket
the ``rx_queue`` column is the length of its accept queue (connections the
kernel completed and nobody has accepted yet).
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable

import pytest

#: the tests that read /proc/net/tcp run on Linux only (SO_REUSEPORT balancing is Linux's)
linux_only = pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="/proc/net/tcp and SO_REUSEPORT balancing"
)

_LISTEN = "0A"


def accept_queues(port: int) -> list[int]:
    """The accept-queue length of every socket listening on ``127.0.0.1:port``."""
    local = f"0100007F:{port:04X}"
    queues = []
    with open("/proc/net/tcp") as f:
        next(f)
        for line in f:
            fields = line.split()
            if fields[1] == local and fields[3] == _LISTEN:
                queues.append(int(fields[4].partition(":")[2], 16))
    return queues


def wait_for(condition: Callable[[], bool], what: str, timeout: float = 20.0) -> None:
    """Poll ``condition`` until it holds (bounded)."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"not reached after {timeout} s: {what}")
        time.sleep(0.02)
