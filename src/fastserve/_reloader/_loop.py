"""The reloader loops' contract, and the base all of fastserve's loops share.

:class:`ReloaderLoop` is werkzeug's base class, kept for werkzeug-style
subclasses (override :meth:`~ReloaderLoop.run_step`, call
:meth:`~ReloaderLoop.trigger_reload` on a change).

:class:`_ScanningLoop` is fastserve's one contract: :meth:`~_ScanningLoop.should_restart`
blocks at most one interval and returns a changed path or ``None``;
:meth:`~_ScanningLoop.run` calls it until it returns a path, then logs that path
once and exits with 3. Every step of every backend is the same:

1. wait up to one interval for the backend's notification (:meth:`_wait`:
   the stat loop only sleeps, watchdog and watchfiles return a notified path);
2. if nothing was notified, :meth:`_check`: refresh the cached scan, tell the
   backend when the watched set moved (:meth:`_rewatch`), and compare the
   signatures of the files no notification covers (:meth:`_polled_paths`: all
   of them for the stat loop).

Entering the loop (:meth:`_ScanningLoop.__enter__`) starts the backend's watcher
and records every watched file's signature (:meth:`_ScanningLoop._record`); a
file edited since the parent spawned this child is already a change.

``trigger_reload`` keeps werkzeug's meaning, which is per class: in
:class:`ReloaderLoop` (and the stat and watchfiles loops) it logs and exits;
in the watchdog loop, called in watchdog's thread where ``SystemExit`` would be
lost, it records the change for :meth:`_ScanningLoop.should_restart`.
fastserve's own loops never call it to restart: :meth:`run` does.
"""

from __future__ import annotations

import os
import sys
import time
import typing as t
from collections.abc import Iterable

from .._logging import _log
from . import _process, _scan, _standby

#: A changed file must keep the same signature this long before restarting,
#: so the new child never imports a half-written file.
_SETTLE_STEP = 0.02
_SETTLE_MAX = 0.5


def _wait_until_stable(path: str) -> None:
    """Return once ``path``'s signature held still for one settle step (bounded)."""
    deadline = time.monotonic() + _SETTLE_MAX
    last = _scan._signature(path)
    while time.monotonic() < deadline:
        time.sleep(_SETTLE_STEP)
        current = _scan._signature(path)
        if current == last and current is not None:
            return
        last = current


class ReloaderLoop:
    """Base class of the reloaders (werkzeug's contract).

    Subclasses implement :meth:`should_restart` (block at most one interval,
    return a changed path or ``None``). werkzeug-style subclasses that override
    :meth:`run_step` and call :meth:`trigger_reload` themselves keep working.

    :param extra_files: more files (or directories, walked for Python files) to watch.
    :param exclude_patterns: ``fnmatch`` patterns on absolute paths never watched.
    :param interval: seconds between scans.
    """

    name = ""

    def __init__(
        self,
        extra_files: Iterable[str] | None = None,
        exclude_patterns: Iterable[str] | None = None,
        interval: int | float = 1,
    ) -> None:
        self.extra_files: set[str] = {os.path.abspath(x) for x in extra_files or ()}
        self.exclude_patterns: set[str] = set(exclude_patterns or ())
        self.interval = interval

    def __enter__(self) -> ReloaderLoop:
        """Set up, then run one step to record the initial state."""
        self.run_step()
        return self

    def __exit__(self, exc_type, exc_val, exc_tb):  # type: ignore[no-untyped-def]
        """Release what :meth:`__enter__` acquired."""

    def run(self) -> None:
        """Watch until something changed, then :meth:`trigger_reload`."""
        while True:
            changed = self.should_restart()
            if changed is not None:
                self.trigger_reload(changed)

    def should_restart(self) -> str | None:
        """Wait at most one interval; return a changed path, or ``None``.

        The default runs :meth:`run_step` then sleeps, as werkzeug's loop does.
        """
        self.run_step()
        time.sleep(self.interval)
        return None

    def run_step(self) -> None:
        """One scan of the filesystem; called first to record the initial state."""

    def restart_with_reloader(self) -> int:
        """Run this program in a child until it exits with something else than 3.

        With ``FASTSERVE_RELOADER_PRELOAD=1``, a warm standby child takes
        over restarts (:mod:`fastserve._reloader._standby`).

        :return: the child's exit code.
        """
        if _standby.enabled():
            program = _standby.parse_program(sys.orig_argv[1:])
            if program is not None:
                supervisor = _standby.Supervisor(self.name, program, _log)
                return supervisor.run(_scan._stat_ignore_scan, _process.wait_child)
        return _process.run_children(self.name)

    def trigger_reload(self, filename: str) -> None:
        """Log the change and exit with 3 so the parent starts a new child."""
        self.log_reload(filename)
        _restart(filename)

    def log_reload(self, filename: str | bytes) -> None:
        """Log `` * Detected change in '<abs path>', reloading``."""
        filename = os.path.abspath(filename)
        _log("info", f" * Detected change in {filename!r}, reloading")


def _restart(changed: str) -> t.NoReturn:
    """Tell the standby parent what changed, then exit with 3."""
    _standby.report_change(changed)
    _process.exit_for_restart()


class _ScanningLoop(ReloaderLoop):
    """fastserve's loops: a cached scan, file signatures, one step contract.

    On its own it is the stat loop's behaviour (the hooks' defaults); the
    backends override :meth:`_start`, :meth:`_stop`, :meth:`_wait`,
    :meth:`_rewatch` and :meth:`_polled_paths`.
    """

    def __init__(self, *args: t.Any, **kwargs: t.Any) -> None:
        super().__init__(*args, **kwargs)
        self._scan = _scan._Scan(self.extra_files, self.exclude_patterns)
        self._signatures: dict[str, _scan._Signature | None] = {}
        #: a change found on entering, returned by the first should_restart()
        self._pending: str | None = None
        self._logged = False

    # -- the contract -------------------------------------------------------------

    def __enter__(self) -> ReloaderLoop:
        self._scan.refresh()
        self._start()
        self._pending = self._record()
        return self

    def __exit__(self, exc_type, exc_val, exc_tb):  # type: ignore[no-untyped-def]
        self._stop()

    def should_restart(self) -> str | None:
        """Wait at most one interval; return a changed path, or ``None``."""
        changed, self._pending = self._pending, None
        if changed is None:
            changed = self._wait(self.interval)
        if changed is None:
            changed = self._check()
        return changed

    def run(self) -> None:
        """Watch until :meth:`should_restart` names a change; log it, exit with 3."""
        while (changed := self.should_restart()) is None:
            pass
        self.log_reload(changed)
        _restart(changed)

    def run_step(self) -> None:
        """werkzeug's step: one :meth:`_check`; a change goes to :meth:`trigger_reload`."""
        changed = self._check()
        if changed is not None:
            self.trigger_reload(changed)

    def log_reload(self, filename: str | bytes) -> None:
        """Log the change, once per loop (a restart has one cause)."""
        if not self._logged:
            self._logged = True
            super().log_reload(filename)

    # -- the backends' hooks --------------------------------------------------------

    def _start(self) -> None:
        """Start the backend's watcher (the scan has just been refreshed)."""

    def _stop(self) -> None:
        """Stop the backend's watcher."""

    def _wait(self, timeout: float) -> str | None:
        """Block at most ``timeout`` seconds; return a notified change, or ``None``."""
        time.sleep(timeout)
        return None

    def _rewatch(self) -> None:
        """The scan's set of watched paths changed: update the watcher."""

    def _polled_paths(self) -> Iterable[str]:
        """Files whose signatures :meth:`_check` compares: those no watcher covers."""
        return self._scan.files()

    # -- shared steps ----------------------------------------------------------------

    def _record(self) -> str | None:
        """Record every watched file's signature; return one edited since the spawn."""
        self._scan.refresh()
        return self._poll(self._scan.files())

    def _check(self) -> str | None:
        """Refresh the scan (and the watcher if it moved); poll what no watcher covers."""
        if self._scan.refresh():
            self._rewatch()
        return self._poll(self._polled_paths())

    def _adopt(self, baseline: _ScanningLoop) -> None:
        """Continue from ``baseline``'s scan and signatures (taken before the
        server started), so edits made meanwhile are changes, not first sights."""
        self._scan = baseline._scan
        self._signatures = baseline._signatures

    def _poll(self, paths: Iterable[str]) -> str | None:
        """Stat ``paths``; return one whose signature changed since last seen.

        First sight records the signature, except that an imported module's
        file modified after this child was spawned (and not in the future)
        counts as changed: it was edited while the child was starting. A
        vanished file keeps its old signature, so an editor's
        delete-and-rewrite is seen when the new file lands. A named extra file
        that appears counts as changed.
        """
        seen = self._signatures
        changed: str | None = None
        spawn = _process.spawn_time()
        now_ns = time.time_ns()
        for path in paths:
            sig = _scan._signature(path)
            if path not in seen:
                seen[path] = sig
                if (
                    changed is None
                    and sig is not None
                    and spawn is not None
                    and spawn * 1e9 < sig[0] <= now_ns
                    and path in self._scan.module_files
                ):
                    changed = path
                continue
            old = seen[path]
            if sig is None:
                continue
            if sig != old:
                if old is not None or path in self._scan.named_files:
                    changed = changed or path
                seen[path] = sig
        if changed is not None:
            _wait_until_stable(changed)
        return changed
