"""How much of what was sent still sits in the kernel's send queue.

A stalled response is judged by how fast the client takes it
(``send_min_rate``), but the process only sees the socket become writable
again after the kernel's send buffer - which Linux grows up to
``net.ipv4.tcp_wmem``'s maximum, megabytes - has drained by about half. A
client reading steadily at tens of KB/s can keep the socket unwritable for
longer than ``send_timeout``; asking the kernel how many bytes are still queued
tells that client apart from one that reads nothing.
"""

from __future__ import annotations

import socket
import struct
import sys

__all__ = ["queued_bytes"]

_INT = struct.Struct("i")

if sys.platform.startswith("linux"):
    import fcntl
    import termios

    def queued_bytes(sock: socket.socket) -> int | None:
        """Bytes written to ``sock`` the peer has not yet acknowledged
        (``SIOCOUTQ``, tcp(7)); None when the kernel cannot say."""
        try:
            raw = fcntl.ioctl(sock.fileno(), termios.TIOCOUTQ, b"\0\0\0\0")
        except (OSError, ValueError):
            return None
        return int(_INT.unpack(raw)[0])

elif sys.platform == "darwin":
    _SO_NWRITE = 0x1024  # <sys/socket.h>: bytes not yet acknowledged

    def queued_bytes(sock: socket.socket) -> int | None:
        """Bytes written to ``sock`` the peer has not yet acknowledged
        (``SO_NWRITE``); None when the kernel cannot say."""
        try:
            return sock.getsockopt(socket.SOL_SOCKET, _SO_NWRITE)
        except (OSError, ValueError):
            return None

else:

    def queued_bytes(sock: socket.socket) -> int | None:
        """Not known on this platform: a stalled response is judged only by
        what the process itself manages to send."""
        return None
