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
import ast
import errno
import importlib
import importlib.util
import inspect
import os
import platform
import re
import socket
import ssl
import stat
import sys
import traceback
from collections.abc import Callable, Iterable, Sequence
from typing import Any, NoReturn

__all__ = ["main", "build_parser", "load_app", "CLIError", "AppImportError"]

WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]

#: Names tried, in order, when the app is given as a bare module name.
DEFAULT_APP_NAMES = ("app", "application")
DEMO_APP = "fastserve.demo:app"
#: the first argument that runs the benchmark instead of serving
BENCH_COMMAND = "bench"

_MODULE_NAME = re.compile(r"[A-Za-z_]\w*(\.[A-Za-z_]\w*)*\Z")


class CLIError(Exception):
    """A mistake on the command line: reported as one line, exit status 2."""


class AppImportError(CLIError):
    """The user's module (or app factory) raised while being loaded.

    Its ``__cause__`` is the original exception; its traceback is shown,
    because it points into the user's code.
    """


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


# --- argument checks ---------------------------------------------------------------------------


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


# --- loading the app ---------------------------------------------------------------------------


def load_app(spec: str) -> WSGIApp:
    """Import ``module``, ``module:name`` or ``module:factory(args)`` and return the WSGI app.

    The current directory is put on :data:`sys.path` first. A ``module`` given
    as a file name (``hello.py``, ``pkg/app.py``) is turned into a module name.

    :param spec: the command line's ``module:app`` argument.
    :raise CLIError: a missing module, a missing or non-callable attribute.
    :raise AppImportError: the module or the factory raised an exception.
    """
    module_name, _, expression = spec.partition(":")
    module_name = _module_name(module_name.strip())
    module = _import(module_name)
    expression = expression.strip()
    if not expression:
        for name in DEFAULT_APP_NAMES:
            if hasattr(module, name):
                expression = name
                break
        else:
            raise CLIError(
                f"module {module_name!r} has no 'app' or 'application'; "
                f"give the name, as in '{module_name}:NAME'"
            )
    app: WSGIApp = _evaluate(module, module_name, expression)
    _check_wsgi_callable(app, f"{module_name}:{expression}")
    return app


def _module_name(text: str) -> str:
    if text.endswith(".py"):
        text = text[:-3].replace(os.sep, ".").replace("/", ".").lstrip(".")
    if not _MODULE_NAME.match(text):
        raise CLIError(f"{text!r} is not a module name (expected module:app, like hello:app)")
    return text


def _import(module_name: str) -> Any:
    cwd = os.getcwd()
    if cwd not in sys.path and "" not in sys.path:
        sys.path.insert(0, cwd)
    try:
        return importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        missing = exc.name or ""
        if module_name == missing or module_name.startswith(missing + "."):
            raise CLIError(
                f"no module named {missing!r} (looked in {cwd} and on sys.path)"
            ) from None
        raise AppImportError(f"could not import {module_name!r} (traceback above)") from exc
    except Exception as exc:
        raise AppImportError(f"could not import {module_name!r} (traceback above)") from exc


def _evaluate(module: Any, module_name: str, expression: str) -> Any:
    """``name``, ``name.attr`` or a call of one with literal arguments, inside ``module``."""
    try:
        node = ast.parse(expression, mode="eval").body
    except SyntaxError:
        node = None
    call = node if isinstance(node, ast.Call) else None
    target = call.func if call is not None else node
    path = _dotted(target)
    if path is None:
        raise CLIError(
            f"cannot understand {expression!r}: expected a name or a call like create_app()"
        )
    obj = module
    for depth, name in enumerate(path):
        try:
            obj = getattr(obj, name)
        except AttributeError:
            owner = module_name if depth == 0 else ".".join(path[:depth])
            raise CLIError(f"{owner!r} has no attribute {name!r}") from None
    if call is None:
        return obj
    try:
        args = [ast.literal_eval(arg) for arg in call.args]
        kwargs = {kw.arg: ast.literal_eval(kw.value) for kw in call.keywords if kw.arg}
        if len(kwargs) != len(call.keywords):
            raise ValueError
    except ValueError:
        raise CLIError(f"{expression!r}: factory arguments must be Python literals") from None
    if not callable(obj):
        raise CLIError(f"'{module_name}:{'.'.join(path)}' is not callable, so it cannot be called")
    try:
        return obj(*args, **kwargs)
    except Exception as exc:
        raise AppImportError(
            f"'{module_name}:{expression}' raised an error (traceback above)"
        ) from exc


def _dotted(node: ast.AST | None) -> list[str] | None:
    if isinstance(node, ast.Name):
        return [node.id]
    if isinstance(node, ast.Attribute):
        head = _dotted(node.value)
        return None if head is None else [*head, node.attr]
    return None


def _check_wsgi_callable(app: Any, label: str) -> None:
    if not callable(app):
        raise CLIError(f"'{label}' is not a WSGI app: a {type(app).__name__} is not callable")
    if inspect.iscoroutinefunction(app) or inspect.iscoroutinefunction(type(app).__call__):
        raise CLIError(f"'{label}' is an async (ASGI) app; fastserve serves WSGI apps")
    try:
        signature = inspect.signature(app)
    except (TypeError, ValueError):
        return  # no signature to check (some builtins): let it be
    try:
        signature.bind(object(), object())
    except TypeError:
        hint = ""
        if not inspect.isclass(app) and _binds(signature):
            hint = f" - is it a factory? then write it as a call, '{label}()'"
        raise CLIError(
            f"'{label}' cannot be called as app(environ, start_response){hint}"
        ) from None


def _binds(signature: inspect.Signature) -> bool:
    """Whether a call without arguments fits ``signature``."""
    try:
        signature.bind()
    except TypeError:
        return False
    return True


def _app_or_error_app(spec: str, in_reloader_child: bool) -> WSGIApp:
    """Load the app; in a reloader child, a broken app becomes one that raises its error."""
    try:
        return load_app(spec)
    except CLIError as exc:
        if not in_reloader_child:
            raise
        _report(exc)
        error: BaseException = exc
        if isinstance(exc, AppImportError) and exc.__cause__ is not None:
            error = exc.__cause__.with_traceback(_user_frames(exc.__cause__.__traceback__))
        print(
            " * Serving the error above until a change is saved and the app reloads",
            file=sys.stderr,
        )

        def broken_app(
            environ: dict[str, Any], start_response: Callable[..., Any]
        ) -> Iterable[bytes]:
            raise error

        return broken_app


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


def _report(exc: CLIError) -> None:
    cause = exc.__cause__
    if isinstance(exc, AppImportError) and cause is not None:
        traceback.print_exception(
            type(cause), cause, _user_frames(cause.__traceback__), file=sys.stderr
        )
    print(f"fastserve: error: {exc}", file=sys.stderr, flush=True)


def _user_frames(tb: Any) -> Any:
    """Skip the frames of this module and importlib: the traceback starts in the user's code."""
    while tb is not None and (
        tb.tb_frame.f_code.co_filename == __file__ or "importlib" in tb.tb_frame.f_code.co_filename
    ):
        tb = tb.tb_next
    return tb


def _fail(message: str) -> NoReturn:
    print(f"fastserve: error: {message}", file=sys.stderr, flush=True)
    sys.exit(2)
