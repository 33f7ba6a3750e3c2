"""``run_with_reloader``: pick a loop, then be the parent or the child.

The parent supervises children (:mod:`._process`, or :mod:`._standby` when
opted in). The child (:func:`_watch`):

1. takes the standby channel for itself (:func:`._standby.claim_channel`);
2. records every watched file's signature with a plain
   :class:`~._loop._ScanningLoop` - before serving, so an edit made while the
   server starts is a change, and before importing watchdog or watchfiles, so
   the new code answers sooner;
3. starts ``main_func`` in a daemon thread;
4. builds the chosen loop on that baseline, reports its installed modules to
   a standby parent, and runs the loop, which exits with 3 on a change.

SIGTERM and a first Ctrl+C stop gracefully (:mod:`fastserve._signals`): the
parent refuses new connections, passes SIGTERM on to the child and waits
``shutdown_timeout`` plus a margin before SIGKILL; the child lets its server
drain (requests in flight finish) and exits 0, as werkzeug's does.
"""

from __future__ import annotations

import signal
import sys
import threading
import typing as t
from collections.abc import Callable, Iterable
from importlib.util import find_spec

from .. import _signals
from . import _process, _scan, _standby
from ._loop import ReloaderLoop, _restart, _ScanningLoop
from ._stat import StatReloaderLoop
from ._watchdog import WatchdogReloaderLoop
from ._watchfiles import WatchfilesReloaderLoop

reloader_loops: dict[str, type[ReloaderLoop]] = {
    "stat": StatReloaderLoop,
    "watchdog": WatchdogReloaderLoop,
    "watchfiles": WatchfilesReloaderLoop,
}


def _installed(module: str) -> bool:
    try:
        return find_spec(module) is not None
    except (ImportError, ValueError):
        return False


if _installed("watchfiles"):
    reloader_loops["auto"] = WatchfilesReloaderLoop
elif _installed("watchdog"):
    reloader_loops["auto"] = WatchdogReloaderLoop
else:
    reloader_loops["auto"] = StatReloaderLoop


def run_with_reloader(
    main_func: Callable[[], None],
    extra_files: Iterable[str] | None = None,
    exclude_patterns: Iterable[str] | None = None,
    interval: int | float = 1,
    reloader_type: str = "auto",
) -> None:
    """Run ``main_func`` in a child process that restarts when a watched file changes.

    :param main_func: what the child runs (in a daemon thread), e.g. ``srv.serve_forever``.
    :param extra_files: more files to watch; directories are walked for Python files.
    :param exclude_patterns: ``fnmatch`` patterns of absolute paths not to watch.
    :param interval: seconds between scans.
    :param reloader_type: ``"auto"``, ``"stat"``, ``"watchdog"`` or ``"watchfiles"``.
    :raises KeyError: unknown ``reloader_type``.
    :raises ImportError: the chosen reloader's package is not installed.
    """
    loop_class = reloader_loops[reloader_type]
    options: dict[str, t.Any] = {
        "extra_files": extra_files,
        "exclude_patterns": exclude_patterns,
        "interval": interval,
    }
    # werkzeug installs SIGTERM => sys.exit(0) in both processes; ours also
    # makes a first Ctrl+C / SIGTERM graceful (see _signals.py): the parent
    # passes it on and waits, the child drains its server, both exit 0.
    signals = _signals.StopSignals(_raise_stop)
    signals.install(strict=True)
    try:
        if _process.is_reloader_child():
            _process.ensure_echo_on()
            _serve_and_watch(main_func, loop_class, options, signals)
        else:
            _process.supervision.configure(main_func)
            # Constructed here too, so a missing package fails in the parent.
            reloader = loop_class(**options)
            sys.exit(reloader.restart_with_reloader())
    except KeyboardInterrupt:
        pass


def _raise_stop(signum: int) -> None:
    """First SIGTERM / Ctrl+C in a reloader process: leave the wait or the
    watch loop (no request is served in this thread), as werkzeug does."""
    if _process.is_reloader_child():
        _stopping.extend(_signals.request_stop_all(signum))
    else:
        # refuse new connections now, not after Popen.wait's own 0.25 s
        # grace for a child that got the Ctrl+C too
        _signals.stop_listening(_process.supervision.listener)
    if signum == signal.SIGINT:
        raise KeyboardInterrupt
    sys.exit(0)


#: reloader child: the servers asked to stop by the first signal
_stopping: list[t.Any] = []


def _serve_and_watch(
    main_func: Callable[[], None],
    loop_class: type[ReloaderLoop],
    options: dict[str, t.Any],
    signals: _signals.StopSignals | None = None,
) -> None:
    """The child: serve in a daemon thread, watch in this one (:func:`_watch`).

    SIGTERM or a first Ctrl+C ends the watching; the servers drain (their
    ``shutdown_timeout``) before this returns; a second Ctrl+C cuts that wait.
    """
    try:
        _watch(main_func, loop_class, options)
    except (KeyboardInterrupt, SystemExit):
        if signals is None or signals.received is None:
            raise
        servers = list(_stopping)
        _stopping.clear()
        _signals.wait_all_stopped(servers)
        if signals.received == signal.SIGTERM:
            # werkzeug's SIGTERM => sys.exit(0), also where the watcher turned
            # the signal into a KeyboardInterrupt (watchfiles)
            sys.exit(0)
        raise


def _watch(
    main_func: Callable[[], None], loop_class: type[ReloaderLoop], options: dict[str, t.Any]
) -> None:
    _standby.claim_channel()
    thread = threading.Thread(target=main_func, daemon=True)
    if not issubclass(loop_class, _ScanningLoop):
        # A werkzeug-style loop: its own __enter__ records the initial state.
        with loop_class(**options) as reloader:
            thread.start()
            reloader.run()
        return
    baseline = _ScanningLoop(**options)
    changed = baseline._record()
    if changed is not None:  # edited while this child was starting
        baseline.log_reload(changed)
        _restart(changed)
    thread.start()
    loop = loop_class(**options)
    loop._adopt(baseline)
    with loop:
        _standby.report_modules(_scan._stat_ignore_scan)
        loop.run()
