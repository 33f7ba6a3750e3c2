"""The ``fastserve`` command (also ``python -m fastserve``).

Flow of :func:`main`:

1. parse the arguments (:func:`build_parser`);
2. check everything a user can get wrong *before* starting: port range, the
   certificate files, ``--adhoc`` without ``cryptography``, static
   directories, the unix socket path, whether the port is free, and the app
   itself (:func:`load_app`). Each problem is one ``fastserve: error: ...``
   line on stderr and exit status 2, without a traceback (an exception raised
   by the user's own module keeps its traceback: it points into their code);
3. call :func:`fastserve.serving.run_simple`, whose own behaviour (what a
   library user sees) stays werkzeug's.

Instead of binding, the command can serve a socket it inherited, already
bound and listening: one passed by systemd socket activation (``LISTEN_FDS``
and ``LISTEN_PID``, read as ``sd_listen_fds`` does), or any fd named with
``--fd N``. :mod:`fastserve._activation` checks the socket and explains how it
reaches ``run_simple`` (through ``WERKZEUG_SERVER_FD``, as the reloader's own
socket does).

With ``--reload`` the reloader re-runs this command in a child process
(``WERKZEUG_RUN_MAIN=true``). In the child, an app that no longer imports
does not end the command: the traceback is printed and every request raises
that error (a 500 page, or the debugger's traceback page with ``--debug``)
until a saved fix makes the reloader restart the child, as ``flask run`` does.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
from collections.abc import Sequence
from typing import Any, NoReturn

from ._app_loading import WSGIApp, _app_or_error_app, _report, load_app
from ._cli_errors import AppImportError, CLIError
from ._cli_options import _fd, _inherited_listener, _port, _positive_int, _server_options

__all__ = ["main", "build_parser", "load_app", "CLIError", "AppImportError"]

DEMO_APP = "fastserve.demo:app"
#: the first argument that runs the benchmark instead of serving
BENCH_COMMAND = "bench"


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        # argparse prints the usage block too; one line is easier to read
        _fail(f"{message} (see 'fastserve --help')")


def build_parser() -> argparse.ArgumentParser:
    """The command's argument parser."""
    parser = _Parser(
        prog="fastserve",
        description="Serve a WSGI application with fastserve's development server. "
        "Without an app, serve a built-in demo at http://127.0.0.1:5000.",
        epilog="examples: fastserve | fastserve hello:app --reload --debug | "
        "fastserve 'myproject:create_app()' --port 8000 --static /static=./public. "
        "Benchmark: 'fastserve bench [module:app]' compares fastserve with the other WSGI "
        "servers installed here, over loopback (see 'fastserve bench --help'; a module "
        "named bench is served with 'fastserve bench:app').",
    )
    parser.add_argument(
        "app",
        nargs="?",
        metavar="module:app",
        help="WSGI app to serve: 'module' (uses its 'app' or 'application'), "
        "'module:name', or 'module:factory()' / 'module:factory(\"arg\")'; "
        "the current directory is importable. Default: the demo app.",
    )
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--host", help="address to bind (default: 127.0.0.1; 0.0.0.0 for all IPv4)")
    where.add_argument("--unix", metavar="PATH", help="listen on a unix socket instead of TCP")
    where.add_argument(
        "--fd",
        type=_fd,
        metavar="N",
        help="serve the already bound and listening socket (TCP or unix) inherited as fd N; "
        "systemd socket activation (LISTEN_FDS, LISTEN_PID) is used without it",
    )
    parser.add_argument(
        "-p", "--port", type=_port, help="TCP port (default: 5000; 0 picks a free one)"
    )
    parser.add_argument("--reload", action="store_true", help="restart when a source file changes")
    parser.add_argument(
        "--debug",
        action="store_true",
        help="interactive debugger on errors (werkzeug's, PIN-protected)",
    )
    parser.add_argument(
        "--threads",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="serve requests concurrently in threads (default), or one at a time with --no-threads",
    )
    parser.add_argument(
        "--processes",
        type=_positive_int,
        default=1,
        metavar="N",
        help="N pre-forked worker processes",
    )
    tls = parser.add_mutually_exclusive_group()
    tls.add_argument("--cert", metavar="FILE", help="serve HTTPS with this PEM certificate")
    tls.add_argument(
        "--adhoc", action="store_true", help="serve HTTPS with a throwaway self-signed certificate"
    )
    parser.add_argument(
        "--key", metavar="FILE", help="private key for --cert (if not inside the cert file)"
    )
    parser.add_argument(
        "--static",
        action="append",
        default=[],
        metavar="URL=DIR",
        help="serve files under DIR at URL, e.g. /static=./public (repeatable)",
    )
    parser.add_argument(
        "--version", action="store_true", help="show versions and the parser in use"
    )
    return parser


def main(argv: Sequence[str] | None = None) -> None:
    """Entry point of the ``fastserve`` console script.

    ``fastserve bench ...`` (``bench`` as the first argument) runs the
    benchmark (:mod:`fastserve._bench`); ``fastserve bench:app`` still serves
    a module called ``bench``.
    """
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == [BENCH_COMMAND]:
        from ._bench.command import main as bench_main

        sys.exit(bench_main(argv[1:], check_app=check_app_or_exit))
    args = build_parser().parse_args(argv)
    if args.version:
        print(version_text())
        return
    from .serving import is_running_from_reloader, run_simple

    in_reloader_child = is_running_from_reloader()
    try:
        listener = _inherited_listener(args, in_reloader_child)
        options = _server_options(args, check_bind=not in_reloader_child, listener=listener)
        app = _app_or_error_app(args.app or DEMO_APP, in_reloader_child)
    except CLIError as exc:
        _report(exc)
        sys.exit(2)
    if not in_reloader_child:
        print(_serving_line(args.app), flush=True)
    try:
        if listener is not None:
            _serve_inherited(listener, app, options, in_reloader_child)
        else:
            run_simple(application=app, **options)
    except KeyboardInterrupt:
        pass


def _serve_inherited(
    listener: Any, app: WSGIApp, options: dict[str, Any], in_reloader_child: bool
) -> None:
    """Serve an inherited socket: ``run_simple`` as in a reloader child (see ``_activation``)."""
    from . import _activation
    from ._logging import _ansi_style, _log
    from .serving import run_simple

    os.environ["WERKZEUG_SERVER_FD"] = str(listener.fd)
    os.environ[_activation.FD_ENV] = str(listener.fd)
    if not in_reloader_child:
        _log(
            "info",
            "\n".join(
                [
                    _ansi_style(
                        "WARNING: This is a development server. Do not use it in a production"
                        " deployment. Use a production WSGI server instead.",
                        "bold",
                        "red",
                    ),
                    *_activation.startup_lines(listener, options["ssl_context"] is not None),
                ]
            ),
        )
        if options["use_debugger"] and not listener.is_loopback:
            _log(
                "warning",
                " * The debugger is on and the socket listens on %r, which other machines"
                " can reach: anyone who learns the PIN can run code here.",
                listener.hostname,
            )
        _log("info", _ansi_style("Press CTRL+C to quit", "yellow"))
        if options["use_reloader"]:
            # the reloader's parent: never binds, restarts children that serve the fd
            from ._reloader import run_with_reloader

            os.set_inheritable(listener.fd, True)
            run_with_reloader(lambda: None)
            return
        os.environ["WERKZEUG_RUN_MAIN"] = "true"
    run_simple(application=app, **options)


def version_text() -> str:
    """``fastserve X (parser: c|py), werkzeug Y, <Python> Z on <platform>``."""
    from importlib.metadata import version

    from ._version import __version__
    from .parser import PARSER_IMPL

    impl = "compiled" if PARSER_IMPL == "c" else "pure Python"
    return (
        f"fastserve {__version__} (parser: {PARSER_IMPL}, {impl}), werkzeug {version('werkzeug')}, "
        f"{platform.python_implementation()} {platform.python_version()} on {platform.system()} "
        f"({platform.machine()})"
    )


# --- output ------------------------------------------------------------------------------------


def _serving_line(spec: str | None) -> str:
    if spec is None:
        return (
            f" * Serving fastserve's demo app ({DEMO_APP}); serve yours with: fastserve module:app"
        )
    return f" * Serving {spec!r}"


def check_app_or_exit(spec: str) -> None:
    """Load ``module:app`` once; on failure print the one-line error (and the
    user's traceback) as the command does, and exit with status 2."""
    try:
        load_app(spec)
    except CLIError as exc:
        _report(exc)
        sys.exit(2)


def _fail(message: str) -> NoReturn:
    print(f"fastserve: error: {message}", file=sys.stderr, flush=True)
    sys.exit(2)
