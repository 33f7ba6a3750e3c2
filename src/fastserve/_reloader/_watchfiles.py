"""The watchfiles reloader: restart on ``watchfiles`` (Rust ``notify``) events.

Uses watchfiles' public :func:`watchfiles.watch` generator on the same
directories as the watchdog loop (:meth:`~._scan._Scan.watch_targets`), with
:meth:`~._scan._Scan.accepts` as its ``watch_filter`` (so a log file written
in the project never wakes the loop) and ``yield_on_timeout`` (so each wait
lasts at most one interval). ``notify`` itself groups a burst of writes
(:attr:`WatchfilesReloaderLoop.step_ms` of quiet) before reporting, so a
reported change has settled. watchfiles logs each reported change on its
``watchfiles.main`` logger at INFO, as it does for every user of ``watch``.

The generator starts its watcher on its first ``next()``, not when created:
after each (re)start the first wait is followed by one full signature poll,
so an edit made in between is seen (at most one interval late). A watcher
that cannot be set up (the inotify watch limit) is logged once and replaced
by polling every watched file.
"""

from __future__ import annotations

import os
import time
import typing as t
from collections.abc import Generator, Iterable

from .._logging import _log
from ._loop import _ScanningLoop


class WatchfilesReloaderLoop(_ScanningLoop):
    """Reload on ``watchfiles`` events, filtered here."""

    name = "watchfiles"
    #: Milliseconds of quiet after a change before it is reported; also how
    #: often the Rust loop wakes when idle (20 ms cost as much idle CPU as
    #: werkzeug's whole stat loop).
    step_ms = 50
    #: Longest a burst of changes is grouped, in milliseconds.
    debounce_ms = 400

    def __init__(self, *args: t.Any, **kwargs: t.Any) -> None:
        try:
            from watchfiles import watch
        except ImportError as exc:
            raise ImportError(
                "reloader_type='watchfiles' needs the 'watchfiles' package:"
                " pip install 'fastserve[reload]'"
            ) from exc
        super().__init__(*args, **kwargs)
        self._watch_files = watch
        self._watching: set[tuple[str, bool]] = set()
        self._changes: Generator[set[tuple[t.Any, str]], None, None] | None = None
        #: the watcher was (re)created and has not reported yet
        self._fresh = False
        #: no watcher could be set up: every watched file is polled
        self._unwatched = False

    def _start(self) -> None:
        """(Re)create the watcher for the scan's current directories."""
        self._stop()
        self._watching = self._scan.watch_targets()
        paths = sorted(p for p, _ in self._watching if os.path.isdir(p))
        if not paths:
            return
        # The recursive fallback (huge trees) is rare: one watcher, recursive
        # if any target needs it; accepts() drops what the walk pruned.
        self._changes = self._watch_files(
            *paths,
            watch_filter=self._accepts,
            debounce=self.debounce_ms,
            step=self.step_ms,
            rust_timeout=max(1, int(self.interval * 1000)),
            yield_on_timeout=True,
            recursive=any(r for _, r in self._watching),
            ignore_permission_denied=True,
        )
        self._fresh = True
        self._unwatched = False

    def _stop(self) -> None:
        changes, self._changes = self._changes, None
        if changes is not None:
            changes.close()

    def _accepts(self, change: t.Any, path: str) -> bool:
        return self._scan.accepts(path)

    def _wait(self, timeout: float) -> str | None:
        if self._changes is None:
            time.sleep(timeout)
            return None
        try:
            changes = next(self._changes)
        except (OSError, RuntimeError) as exc:
            # e.g. the inotify watch limit: keep reloading, by polling.
            _log("warning", f" * watchfiles cannot watch ({exc}); polling files instead")
            self._changes = None
            self._unwatched = True
            return None
        if changes:
            self._fresh = False
            return min(path for _, path in changes)
        if self._fresh:
            # The watcher is live now; catch what changed before it was.
            self._fresh = False
            return self._poll(self._scan.files())
        return None

    def _rewatch(self) -> None:
        if self._scan.watch_targets() != self._watching:
            self._start()

    def _polled_paths(self) -> Iterable[str]:
        return self._scan.files() if self._unwatched else self._scan.polled_files()
