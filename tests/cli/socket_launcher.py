"""Start ``python ARGS...`` with a socket passed the way systemd socket activation does.

    python socket_launcher.py [options] tcp:HOST:PORT | unix:PATH -- ARGS...

Binds the socket and listens, moves it to fd 3 (``SD_LISTEN_FDS_START``), sets
``LISTEN_FDS=1`` and ``LISTEN_PID`` to its own pid - which ``exec`` keeps -
and replaces itself with ``sys.executable ARGS...``. Options make the broken
cases: ``--no-env`` (only the fd, as for ``--fd 3``), ``--listen-pid PID``,
``--listen-fds TEXT``, ``--udp`` and ``--no-listen``.
"""

from __future__ import annotations

import argparse
import os
import socket
import sys


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("address")
    parser.add_argument("args", nargs=argparse.REMAINDER)
    parser.add_argument("--no-env", action="store_true")
    parser.add_argument("--listen-pid")
    parser.add_argument("--listen-fds", default="1")
    parser.add_argument("--udp", action="store_true")
    parser.add_argument("--no-listen", action="store_true")
    options = parser.parse_args()
    kind, _, where = options.address.partition(":")
    kind_type = socket.SOCK_DGRAM if options.udp else socket.SOCK_STREAM
    if kind == "unix":
        sock = socket.socket(socket.AF_UNIX, kind_type)
        sock.bind(where)
    else:
        host, _, port = where.rpartition(":")
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        sock = socket.socket(family, kind_type)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, int(port)))
    if not options.no_listen and not options.udp:
        sock.listen(128)
    if sock.fileno() == 3:
        os.set_inheritable(sock.detach(), True)
    else:
        os.dup2(sock.fileno(), 3)  # dup2 leaves fd 3 inheritable
        sock.close()
    if not options.no_env:
        os.environ["LISTEN_FDS"] = options.listen_fds
        os.environ["LISTEN_PID"] = options.listen_pid or str(os.getpid())
    args = options.args[1:] if options.args[:1] == ["--"] else options.args
    os.execv(sys.executable, [sys.executable, *args])


if __name__ == "__main__":
    main()
