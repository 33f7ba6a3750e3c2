"""The watchdog reloader: restart on watchdog events, filtered by absolute path here.

watchdog 7 matches its glob patterns against full paths, so werkzeug's
watchdog loop (a ``PatternMatchingEventHandler`` with ``*.py``) never fires.
This loop subscribes to everything and lets :meth:`~._scan._Scan.accepts`
judge each path; each walked directory gets one non-recursive watch (a
``.venv`` inside the project is not watched), and imported modules in prefix
trees are stat-polled every ``interval``.

Events arrive in watchdog's observer thread, where ``SystemExit`` would be
lost: :meth:`WatchdogReloaderLoop.trigger_reload` (werkzeug's name and
meaning) records the change and wakes the main thread, whose :meth:`_wait`
returns it as soon as the writes have settled instead of on the next interval
tick.
"""

from __future__ import annotations

import os
import threading
import time
import typing as t
from collections.abc import Iterable

from ._loop import _SETTLE_MAX, _SETTLE_STEP, _ScanningLoop
from ._scan import _is_under

#: watchdog event types that are a change (not ``opened``/``closed_no_write``).
_WATCHDOG_CHANGE_EVENTS = frozenset({"closed", "created", "deleted", "modified", "moved"})
#: Directory events after which the walk must be refreshed.
_DIRECTORY_MOVES = frozenset({"created", "moved", "deleted"})
#: Event types reported once a file is complete (close-after-write, rename).
_COMPLETE_EVENTS = frozenset({"closed", "moved"})
#: Seconds to wait for the observer thread when the watching ends.
_OBSERVER_JOIN_TIMEOUT = 5.0


def _str(path: str | bytes | None) -> str:
    if path is None:
        return ""
    return os.fsdecode(path)


class WatchdogReloaderLoop(_ScanningLoop):
    """Reload on watchdog events, filtered by absolute path here."""

    def __init__(self, *args: t.Any, **kwargs: t.Any) -> None:
        try:
            from watchdog.events import FileSystemEvent, FileSystemEventHandler
            from watchdog.observers import Observer
        except ImportError as exc:
            raise ImportError(
                "reloader_type='watchdog' needs the 'watchdog' package:"
                " pip install 'fastserve[reload]'"
            ) from exc

        super().__init__(*args, **kwargs)
        loop = self

        class EventHandler(FileSystemEventHandler):
            def dispatch(self, event: FileSystemEvent) -> None:
                if event.is_directory:
                    if event.event_type in _DIRECTORY_MOVES:
                        loop._rescan = True
                        loop._wake.set()
                    return
                accepts = loop._scan.accepts
                if accepts(_str(event.src_path)) or accepts(_str(event.dest_path)):
                    super().dispatch(event)

            def on_any_event(self, event: FileSystemEvent) -> None:
                # Only the event type is judged here; dispatch() filtered paths.
                if event.event_type not in _WATCHDOG_CHANGE_EVENTS:
                    return
                path = _str(event.src_path)
                dest = _str(event.dest_path)
                if dest and loop._scan.accepts(dest):
                    path = dest
                loop._event_type = event.event_type
                loop.trigger_reload(path)

        self.observer = Observer()
        name = type(self.observer).__name__.lower()
        if name.endswith("observer"):
            name = name[: -len("observer")]
        self.name = f"watchdog ({name})"
        self.event_handler = EventHandler()
        self.should_reload = threading.Event()
        self._wake = threading.Event()
        self._rescan = False
        self._changed: str | None = None
        self._last_event = 0.0
        self._event_type = ""
        self._complete = False
        self._lock = threading.Lock()
        #: (directory, recursive) -> watchdog's watch, or None when it failed
        self.watches: dict[tuple[str, bool], t.Any] = {}

    def trigger_reload(self, filename: str | bytes) -> None:
        """Record a change (werkzeug's meaning here: called in watchdog's
        thread, where ``SystemExit`` would be lost), log the first one, and
        wake the main thread."""
        filename = _str(filename)
        with self._lock:
            first = self._changed is None
            self._complete = self._complete or self._event_type in _COMPLETE_EVENTS
            if first:
                self._changed = filename
            self._last_event = time.monotonic()
        if first:
            # Before waking the main thread, whose run() logs only if no one did.
            self.log_reload(filename)
        self.should_reload.set()
        self._wake.set()

    def _start(self) -> None:
        self.observer.start()
        self._schedule()

    def _stop(self) -> None:
        self.observer.stop()
        self.observer.join(timeout=_OBSERVER_JOIN_TIMEOUT)

    def _wait(self, timeout: float) -> str | None:
        deadline = time.monotonic() + timeout
        while not self.should_reload.is_set():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return None
            if self._wake.wait(timeout=remaining):
                self._wake.clear()
                if self._rescan:
                    self._rescan = False
                    if self._scan.refresh():
                        self._rewatch()
        self._settle()
        return self._changed

    def _settle(self) -> None:
        """Wait until the writes stopped (events quiet for one step), bounded."""
        stop = time.monotonic() + _SETTLE_MAX
        while not self._complete and time.monotonic() < stop:
            with self._lock:
                quiet_since = time.monotonic() - self._last_event
            if quiet_since >= _SETTLE_STEP:
                break
            time.sleep(_SETTLE_STEP - quiet_since)

    def _rewatch(self) -> None:
        self._schedule()

    def _polled_paths(self) -> Iterable[str]:
        failed = [path for (path, _), watch in self.watches.items() if watch is None]
        polled = self._scan.polled_files()
        if failed:
            # A directory that could not be watched (inotify limits): poll it.
            unwatched = {f for f in self._scan.files() if _is_under(os.path.dirname(f), failed)}
            polled = polled | unwatched
        return polled

    def _schedule(self) -> None:
        wanted = self._scan.watch_targets()
        for key in wanted - set(self.watches):
            path, recursive = key
            try:
                self.watches[key] = self.observer.schedule(
                    self.event_handler, path, recursive=recursive
                )
            except OSError:
                # Remember the failure so it is not retried every interval.
                self.watches[key] = None
        for key in set(self.watches) - wanted:
            watch = self.watches.pop(key)
            if watch is not None:
                self.observer.unschedule(watch)
