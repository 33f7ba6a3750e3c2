"""The ``fastserve`` command's options, checked before anything starts.

Argument types for :mod:`argparse` (port, fd, counts), then the checks that
turn the parsed arguments into ``run_simple`` keywords: ``--processes`` with
``--threads``, the certificate files, the static directories, the unix socket
path, whether the port is free, and an inherited socket (``--fd`` or systemd's).
Each problem is a :class:`~fastserve._cli_errors.CLIError`.
"""

from __future__ import annotations

import argparse
import errno
import importlib
import importlib.util
import os
import socket
import ssl
import stat
from typing import Any

from ._cli_errors import CLIError

__all__ = ["_fd", "_inherited_listener", "_port", "_positive_int", "_server_options"]


def _port(text: str) -> int:
    try:
        port = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"port must be a number, not {text!r}") from None
    # a TCP port is a 16-bit number (RFC 9293 §3.1); 0 asks the OS for a free one
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"port {port} is out of range (0-65535)")
    return port


def _fd(text: str) -> int:
    try:
        fd = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected a file descriptor number, not {text!r}"
        ) from None
    if fd < 0:
        raise argparse.ArgumentTypeError(f"a file descriptor is 0 or more, not {fd}")
    return fd


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, not {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {value}")
    return value


def _inherited_listener(args: argparse.Namespace, in_reloader_child: bool) -> Any:
    """The inherited socket to serve (``--fd`` or systemd's), checked; ``None`` to bind."""
    from . import _activation

    try:
        if in_reloader_child:
            # the parent found it; systemd's variables are gone by now
            fd_text = os.environ.get(_activation.FD_ENV)
            return None if fd_text is None else _activation.describe(int(fd_text))
        passed = _activation.listen_fds()
        if args.fd is not None:
            fd = args.fd
            source = f"--fd {fd}"
        elif not passed:
            return None
        elif len(passed) > 1:
            raise CLIError(
                f"systemd passed {len(passed)} sockets (fds {passed[0]}-{passed[-1]}); "
                "fastserve serves one: choose it with --fd N"
            )
        else:
            fd = passed[0]
            source = "the socket systemd passed (LISTEN_FDS)"
        if args.host is not None or args.unix is not None or args.port is not None:
            raise CLIError(f"--host, --port and --unix cannot be used with {source}")
        return _activation.describe(fd)
    except _activation.InheritedSocketError as exc:
        raise CLIError(str(exc)) from None


def _server_options(
    args: argparse.Namespace, *, check_bind: bool, listener: Any = None
) -> dict[str, Any]:
    """Check the arguments and turn them into ``run_simple`` keywords."""
    if args.unix is not None and args.port is not None:
        raise CLIError("--port cannot be used with --unix")
    processes: int = args.processes
    threaded = args.threads
    if processes > 1:
        if threaded:
            raise CLIError("--processes cannot be combined with --threads (use one or the other)")
        if not hasattr(os, "fork"):
            raise CLIError("--processes needs os.fork, which this platform does not have")
        threaded = False
    elif threaded is None:
        threaded = True
    port = 5000 if args.port is None else args.port
    if listener is not None:
        hostname, port = listener.hostname, listener.port
    elif args.unix is not None:
        hostname = "unix://" + _check_unix_path(args.unix, check_bind)
    else:
        hostname = "127.0.0.1" if args.host is None else args.host
        if hostname.startswith("[") and hostname.endswith("]"):
            hostname = hostname[1:-1]  # "[::1]" as in URLs; run_simple wants "::1"
        if check_bind:
            _check_port_free(hostname, port)
    return {
        "hostname": hostname,
        "port": port,
        "use_reloader": args.reload,
        "use_debugger": args.debug,
        "threaded": threaded,
        "processes": processes,
        "static_files": _static_files(args.static) or None,
        "ssl_context": _ssl_context(args),
    }


def _ssl_context(args: argparse.Namespace) -> tuple[str, ...] | str | None:
    if args.adhoc:
        if args.key:
            raise CLIError("--key goes with --cert, not with --adhoc")
        if importlib.util.find_spec("cryptography") is None:
            raise CLIError("--adhoc needs the 'cryptography' package: pip install cryptography")
        return "adhoc"
    if args.cert is None:
        if args.key:
            raise CLIError("--key needs --cert")
        return None
    files = (args.cert, args.key) if args.key else (args.cert,)
    for kind, path in zip(("certificate", "key"), files, strict=False):
        if not os.path.isfile(path):
            raise CLIError(f"{kind} file not found: {path}")
        if not os.access(path, os.R_OK):
            raise CLIError(f"{kind} file is not readable: {path}")
    try:
        ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER).load_cert_chain(*files)
    except ssl.SSLError as exc:
        hint = "" if args.key else " (if the key is in a separate file, pass it with --key)"
        raise CLIError(f"cannot load the certificate/key: {exc.reason or exc}{hint}") from None
    return files


def _static_files(specs: list[str]) -> dict[str, str]:
    exports: dict[str, str] = {}
    for spec in specs:
        url, sep, directory = spec.partition("=")
        if not sep or not url or not directory:
            raise CLIError(f"--static expects URL=DIR, like /static=./public, not {spec!r}")
        url = "/" + url.strip("/")
        if not os.path.exists(directory):
            raise CLIError(f"--static {spec}: {directory} does not exist")
        if url in exports:
            raise CLIError(f"--static: {url} is given twice")
        exports[url] = os.path.abspath(directory)
    return exports


def _check_unix_path(path: str, check_bind: bool) -> str:
    if not hasattr(socket, "AF_UNIX"):
        raise CLIError("--unix: this platform has no unix sockets")
    path = os.path.abspath(path)
    if not os.path.isdir(os.path.dirname(path)):
        raise CLIError(f"--unix: directory {os.path.dirname(path)} does not exist")
    if not check_bind:
        return path
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        return path
    if not stat.S_ISSOCK(mode):
        # run_simple removes a stale socket file; never let it remove a regular file
        raise CLIError(f"--unix: {path} exists and is not a socket")
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
        try:
            probe.connect(path)
        except OSError:
            return path  # stale socket file: run_simple replaces it
    raise CLIError(f"--unix: another server is listening on {path}")


def _check_port_free(hostname: str, port: int) -> None:
    """Bind (without listening) the way the server will, and let go again."""
    from .serving import get_sockaddr, select_address_family

    family = select_address_family(hostname, port)
    address = get_sockaddr(hostname, port, family)
    where = f"[{hostname}]:{port}" if ":" in hostname else f"{hostname}:{port}"
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(address)
        except socket.gaierror:
            raise CLIError(f"--host {hostname!r}: no such host or address") from None
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                message = (
                    f"port {port} is in use by another program: stop it, or pick another --port"
                )
            elif exc.errno == errno.EADDRNOTAVAIL:
                message = f"--host {hostname}: not an address of this machine"
            elif exc.errno == errno.EACCES:
                message = f"no permission to listen on {where} (ports below 1024 need privileges)"
            else:
                message = f"cannot listen on {where}: {exc.strerror or exc}"
            raise CLIError(message) from None
