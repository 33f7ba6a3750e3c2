"""Serving a socket that someone else bound: systemd socket activation and ``--fd N``.

systemd (or any launcher that follows ``sd_listen_fds(3)``) binds and listens,
then starts the service with the sockets as fds 3, 4, ... and two variables:
``LISTEN_FDS`` (how many) and ``LISTEN_PID`` (the pid they are meant for, so
a child process that inherits the environment does not take them too).
:func:`listen_fds` reads them the way ``sd_listen_fds(unset_environment=1)``
does: only when ``LISTEN_PID`` is this process, marking the fds close-on-exec,
and removing ``LISTEN_PID``, ``LISTEN_FDS`` and ``LISTEN_FDNAMES`` from the
environment in every case.

:func:`describe` checks that an fd is a bound, listening stream socket (TCP
over IPv4/IPv6, or unix) and returns a :class:`Listener`: its ``hostname`` and
``port`` are what ``run_simple`` needs to pick the socket's address family.

How the command hands the socket to ``run_simple`` (which is werkzeug's
signature, without an ``fd`` argument): ``run_simple`` binds its own socket
unless it runs in a reloader child, where it serves the descriptor named by
``WERKZEUG_SERVER_FD``. So the process that serves an inherited socket is
always such a child:

- without ``--reload``, :mod:`fastserve.cli` sets ``WERKZEUG_RUN_MAIN=true``
  and ``WERKZEUG_SERVER_FD=<fd>`` in its own environment and calls
  ``run_simple``, which serves the fd (``is_running_from_reloader()`` is then
  true for the app as well: this is the process that serves);
- with ``--reload``, the command runs the reloader's parent loop itself (it
  never binds), with the fd made inheritable, ``WERKZEUG_SERVER_FD`` and
  :data:`FD_ENV` in the environment; each child finds the fd through
  :data:`FD_ENV` (systemd's variables are gone by then) and serves it.

In both cases the command prints the startup lines itself
(:func:`startup_lines`), since ``run_simple`` leaves them to the parent.
"""

from __future__ import annotations

import ipaddress
import os
import socket
import stat
from dataclasses import dataclass
from typing import Final

__all__ = ["FD_ENV", "SD_LISTEN_FDS_START", "InheritedSocketError", "Listener", "describe"]

#: the first fd systemd passes (``SD_LISTEN_FDS_START`` in ``sd-daemon.h``)
SD_LISTEN_FDS_START: Final = 3
#: set by the command for its reloader children: the inherited listening fd
FD_ENV: Final = "FASTSERVE_INHERITED_FD"
_SYSTEMD_VARIABLES: Final = ("LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES")


class InheritedSocketError(Exception):
    """The passed socket, or the variables that describe it, cannot be served."""


@dataclass(frozen=True)
class Listener:
    """An inherited listening socket and the address ``run_simple`` is given for it."""

    fd: int
    family: socket.AddressFamily
    #: ``"unix://<path>"``, or the bound IP address (``"0.0.0.0"``, ``"::1"``)
    hostname: str
    #: the bound TCP port (0 for a unix socket)
    port: int

    @property
    def is_loopback(self) -> bool:
        """Whether only this machine can connect (a unix socket counts as local)."""
        if self.family == socket.AF_UNIX:
            return True
        address = self.hostname.partition("%")[0]  # IPv6 scope id
        return ipaddress.ip_address(address).is_loopback


def listen_fds(environ: dict[str, str] | None = None) -> list[int]:
    """The fds systemd passed to this process, as ``sd_listen_fds(1)`` finds them.

    :param environ: the environment to read and clean (``os.environ`` by default).
    :return: ``[3, 4, ...]``, or ``[]`` when nothing was passed to *this* process.
    :raise InheritedSocketError: ``LISTEN_PID`` or ``LISTEN_FDS`` is not a number.
    """
    env = os.environ if environ is None else environ
    pid_text, count_text = env.get("LISTEN_PID"), env.get("LISTEN_FDS")
    for name in _SYSTEMD_VARIABLES:
        env.pop(name, None)  # unset in every case, so no child takes them for its own
    if pid_text is None or count_text is None:
        return []
    if _number("LISTEN_PID", pid_text) != os.getpid():
        return []  # meant for another process (our parent, say)
    count = _number("LISTEN_FDS", count_text)
    fds = list(range(SD_LISTEN_FDS_START, SD_LISTEN_FDS_START + count))
    for fd in fds:
        try:
            os.set_inheritable(fd, False)
        except OSError:
            raise InheritedSocketError(
                f"LISTEN_FDS={count} but fd {fd} is not open in this process"
            ) from None
    return fds


def _number(name: str, text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 0:
        raise InheritedSocketError(f"{name}={text!r} is not a number of 0 or more")
    return value


def describe(fd: int) -> Listener:
    """Check that ``fd`` is a listening TCP or unix stream socket; say where it listens.

    The fd itself is left open and unchanged.

    :raise InheritedSocketError: not open, not a socket, not a stream socket,
        another family, or not listening.
    """
    try:
        mode = os.fstat(fd).st_mode
    except OSError:
        raise InheritedSocketError(f"fd {fd} is not open") from None
    if not stat.S_ISSOCK(mode):
        raise InheritedSocketError(f"fd {fd} is not a socket")
    sock = socket.socket(fileno=fd)  # family and type are read from the fd
    try:
        family = sock.family
        if family not in (socket.AF_INET, socket.AF_INET6, socket.AF_UNIX):
            name = getattr(family, "name", family)
            raise InheritedSocketError(f"fd {fd} is a {name} socket, not TCP or unix")
        if sock.type != socket.SOCK_STREAM:
            raise InheritedSocketError(
                f"fd {fd} is a {sock.type.name} socket, not a stream (TCP or unix) socket"
            )
        if not sock.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN):
            raise InheritedSocketError(f"fd {fd} is not listening: bind and listen() it first")
        address = sock.getsockname()
    finally:
        sock.detach()
    if family == socket.AF_UNIX:
        return Listener(fd, family, "unix://" + _unix_path(address), 0)
    return Listener(fd, family, address[0], address[1])


def _unix_path(address: str | bytes) -> str:
    if isinstance(address, bytes):  # Linux abstract namespace: b"\0name"
        address = "@" + address[1:].decode("utf-8", "backslashreplace")
    return address or "(unnamed)"


def startup_lines(listener: Listener, tls: bool) -> list[str]:
    """Where the server listens, as ``log_startup`` would say it, naming the fd."""
    source = f"(inherited socket, fd {listener.fd})"
    if listener.family == socket.AF_UNIX:
        return [f" * Running on {listener.hostname} {source}"]
    scheme = "https" if tls else "http"
    host = listener.hostname
    if ":" in host:
        host = f"[{host}]"
    return [f" * Running on {scheme}://{host}:{listener.port} {source}"]
