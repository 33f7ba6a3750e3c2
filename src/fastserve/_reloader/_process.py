"""The reloader's process protocol: werkzeug's, so Flask, werkzeug's debugger
and ``is_running_from_reloader`` keep working.

1. The *parent* (``WERKZEUG_RUN_MAIN`` unset) logs `` * Restarting with <name>``
   and re-runs the exact command line (:func:`_get_args_for_reloading`) with
   ``WERKZEUG_RUN_MAIN=true`` and ``close_fds=False``, so the child inherits the
   listening socket named by ``WERKZEUG_SERVER_FD`` and no connection is
   refused while it restarts (:func:`run_children`).
2. A child that saw a change exits with :data:`RESTART_CODE` (3)
   (:func:`exit_for_restart`); any other exit code is the parent's own.
3. SIGTERM or Ctrl+C in the parent (:func:`wait_child`): refuse new
   connections, pass SIGTERM on, give the child the server's
   ``shutdown_timeout`` plus a margin to drain, then SIGKILL.

fastserve adds :data:`SPAWN_TIME_ENV` (the wall-clock time of the spawn, so the
child can tell a file edited while it was importing) and a faster exit: the
interpreter's module teardown is skipped (:func:`exit_for_restart`).
"""

from __future__ import annotations

import atexit
import os
import signal
import subprocess
import sys
import time
import typing as t
from collections.abc import Callable

from .. import _signals
from .._logging import _log

#: Exit code of a child that asks its parent for a restart (werkzeug's).
RESTART_CODE = 3
#: werkzeug's marker of a reloader child (``is_running_from_reloader``).
RUN_MAIN_ENV = "WERKZEUG_RUN_MAIN"
#: Parent -> child: wall-clock time of the spawn, to catch edits made while
#: the child was importing (before its first scan).
SPAWN_TIME_ENV = "FASTSERVE_RELOADER_SPAWN_TIME"
#: Seconds a parent lets its child exit on its own after a second Ctrl+C
#: before SIGKILL.
_SIGNAL_GRACE = 0.3


def is_reloader_child() -> bool:
    """Whether this process is the reloader's child (the one that serves)."""
    return os.environ.get(RUN_MAIN_ENV) == "true"


def _get_args_for_reloading() -> list[str]:
    """Return the command line that started this interpreter, to run it again.

    ``sys.orig_argv`` keeps interpreter options (``-X``, ``-W``), ``-m`` and
    ``-c`` exactly; only the interpreter is replaced by ``sys.executable``.
    """
    return [sys.executable, *sys.orig_argv[1:]]


def child_environ() -> dict[str, str]:
    """The environment of a new child: ours, marked as the reloader's child,
    with the spawn time."""
    env = os.environ.copy()
    env[RUN_MAIN_ENV] = "true"
    env[SPAWN_TIME_ENV] = repr(time.time())
    return env


def spawn_time() -> float | None:
    """When the parent spawned this child (wall clock), if it said."""
    try:
        return float(os.environ[SPAWN_TIME_ENV])
    except (KeyError, ValueError):
        return None


def run_children(name: str) -> int:
    """The parent: run this program in a child until it exits with something
    else than :data:`RESTART_CODE`; return that exit code."""
    while True:
        _log("info", f" * Restarting with {name}")
        proc = subprocess.Popen(_get_args_for_reloading(), env=child_environ(), close_fds=False)
        exit_code = wait_child(proc)
        if exit_code != RESTART_CODE:
            return exit_code


def wait_child(proc: subprocess.Popen[bytes]) -> int:
    """Wait for the child; on SIGTERM / Ctrl+C in the parent, let it drain (bounded)."""
    try:
        return proc.wait()
    except BaseException:
        # SIGTERM (SystemExit) or Ctrl+C in the parent. Refuse new connections
        # (the listening socket is this process's), pass SIGTERM on - a signal
        # sent to the parent alone; a child that got it from the process group
        # ignores a second SIGTERM - and give the child shutdown_timeout to
        # finish its requests, then a margin, then SIGKILL. A second Ctrl+C
        # (it reaches the child too from a terminal) stops it at once.
        _signals.stop_listening(supervision.listener)
        _send_signal(proc, signal.SIGTERM)
        try:
            proc.wait(timeout=supervision.shutdown_timeout + _signals.KILL_MARGIN)
        except subprocess.TimeoutExpired:
            proc.kill()
        except KeyboardInterrupt:
            try:
                proc.wait(timeout=_SIGNAL_GRACE)
            except subprocess.TimeoutExpired:
                pass
            proc.kill()
            proc.wait()
            raise
        proc.wait()
        raise


def _send_signal(proc: subprocess.Popen[bytes], signum: int) -> None:
    try:
        proc.send_signal(signum)
    except OSError:
        pass


class _Supervision:
    """What the reloader parent needs to stop its child gracefully: the
    server's listening socket and ``shutdown_timeout``, when ``main_func`` is a
    server's ``serve_forever`` (as in ``run_simple``)."""

    def __init__(self) -> None:
        self.listener: t.Any = None
        self.shutdown_timeout = _signals.SHUTDOWN_TIMEOUT

    def configure(self, main_func: Callable[[], None]) -> None:
        server = getattr(main_func, "__self__", None)
        timeout = getattr(server, "shutdown_timeout", None)
        if isinstance(timeout, (int, float)):
            self.shutdown_timeout = float(timeout)
        listener = getattr(server, "socket", None)
        if hasattr(listener, "shutdown"):
            self.listener = listener


#: the reloader parent's view of the server it supervises
supervision = _Supervision()


def exit_for_restart() -> t.NoReturn:
    """Exit with :data:`RESTART_CODE` so the parent starts a new child - quickly.

    ``SystemExit`` unwinds as usual (``run_simple``'s ``finally`` closes the
    server, the user's ``finally`` blocks run), and so do ``atexit`` handlers
    (logging is flushed). Only the interpreter's module teardown is skipped:
    with Flask loaded it takes 0.15-0.35 s here, a third of a restart.
    """
    atexit.register(_skip_teardown)
    sys.exit(RESTART_CODE)


def _skip_teardown() -> None:
    # Registered last, so it runs first: run every other handler, then leave.
    run_others = getattr(atexit, "_run_exitfuncs", None)
    if run_others is None:  # pragma: no cover - not CPython/PyPy: full teardown
        return
    atexit.unregister(_skip_teardown)
    run_others()
    for stream in (sys.stdout, sys.stderr):
        try:
            if stream is not None:
                stream.flush()
        except Exception:
            pass
    os._exit(RESTART_CODE)


def ensure_echo_on() -> None:
    """Turn terminal echo back on if something (a debugger) left it off."""
    stdin = sys.stdin
    if stdin is None or not stdin.isatty():
        return
    try:
        import termios
    except ImportError:  # pragma: no cover - Windows
        return
    attrs = termios.tcgetattr(stdin)
    if not attrs[3] & termios.ECHO:
        attrs[3] |= termios.ECHO
        termios.tcsetattr(stdin, termios.TCSANOW, attrs)
