"""The code reloader: werkzeug's protocol, cheaper scans, immediate reloads.

Process model (the same as ``werkzeug._reloader``, so Flask, werkzeug's
debugger and ``is_running_from_reloader`` keep working):

1. The *parent* (``WERKZEUG_RUN_MAIN`` unset) logs `` * Restarting with <name>``
   and re-runs the exact command line (``sys.orig_argv``) with
   ``WERKZEUG_RUN_MAIN=true`` and ``close_fds=False``, so the child inherits the
   listening socket named by ``WERKZEUG_SERVER_FD`` and no connection is
   refused while it restarts. Exit code 3 means "restart"; any other code is
   the parent's own exit code.
2. The *child* runs ``main_func`` in a daemon thread and watches files in the
   main thread. A change logs `` * Detected change in '<path>', reloading``
   and exits with 3.

What is watched (spec §6.3): every ``sys.path`` directory and extra directory
outside the interpreter prefixes is walked for ``*.py``/``*.pyc`` (so a file
that failed to import is still watched), plus every imported module's file,
plus ``extra_files``; ``exclude_patterns`` are ``fnmatch`` patterns on absolute
paths.

Where this differs from werkzeug (all deliberate):

- The walk is cached (:class:`_Scan`). Each interval only the walked
  directories are ``stat``-ed; the tree is walked again only when one of their
  mtimes changed, and module files are re-read only when ``sys.modules`` grew.
  Prefix trees (site-packages, the stdlib) are never listed: imported modules
  there are stat-polled one file at a time.
- A change is a different ``(mtime_ns, size)``, not only a newer mtime
  (restoring an older file, or two saves within the clock's granularity, are
  seen). A file that changed between the child's start and its first scan
  triggers a reload instead of being missed.
- watchdog 7 matches its glob patterns against full paths, so werkzeug's
  watchdog loop never fires. Ours subscribes to everything and filters
  absolute paths itself (:class:`_PathFilter`), watches each walked directory
  non-recursively (a ``.venv`` inside the project is not watched), and reloads
  as soon as the writes have settled instead of on the next interval tick.
- ``watchfiles`` (Rust ``notify``) is supported and preferred by ``"auto"``.
- SIGTERM and a first Ctrl+C stop gracefully (:mod:`fastserve._signals`):
  the parent refuses new connections, passes SIGTERM on to the child and
  waits ``shutdown_timeout`` plus a margin before SIGKILL; the child lets its
  server drain (requests in flight finish) and exits 0, as werkzeug's does.
"""

from __future__ import annotations

import atexit
import fnmatch
import os
import signal
import subprocess
import sys
import threading
import time
import typing as t
from collections.abc import Callable, Iterable, Iterator
from importlib.util import find_spec
from pathlib import PurePath

from . import _signals, _standby

try:
    from ._logging import _log
except ImportError:  # pragma: no cover - until fastserve's own logging helper exists
    from werkzeug._internal import _log

#: Interpreter installation prefixes (the stdlib when in a virtualenv). Module
#: files under them are never watched by any loop.
_ignore_always: tuple[str, ...] = tuple({sys.base_prefix, sys.base_exec_prefix})
_prefixes = {*_ignore_always, sys.prefix, sys.exec_prefix}
if hasattr(sys, "real_prefix"):  # pragma: no cover - virtualenv < 20
    _prefixes.add(sys.real_prefix)
#: Prefixes that are never walked; imported modules under them are still
#: watched file by file. Read at call time (werkzeug's tests patch it).
_stat_ignore_scan: tuple[str, ...] = tuple(_prefixes)
del _prefixes
#: Directory names never walked or watched: a change there always comes with a
#: change of a source file, or belongs to a tool.
_ignore_common_dirs: set[str] = {
    "__pycache__",
    ".git",
    ".hg",
    ".svn",
    ".tox",
    ".nox",
    ".venv",
    ".pytest_cache",
    ".mypy_cache",
    ".ruff_cache",
    "node_modules",
}

#: Exit code of a child that asks its parent for a restart.
_RESTART_CODE = 3
#: Parent -> child: wall-clock time of the spawn, to catch edits made while
#: the child was importing (before its first scan).
_SPAWN_TIME_ENV = "FASTSERVE_RELOADER_SPAWN_TIME"
#: Seconds to wait for the watchdog observer thread when the watching ends.
_CHILD_EXIT_TIMEOUT = 5.0
#: Seconds a parent lets its child exit on its own after a second Ctrl+C
#: before SIGKILL.
_SIGNAL_GRACE = 0.3
#: A changed file must keep the same signature this long before restarting,
#: so the new child never imports a half-written file.
_SETTLE_STEP = 0.02
_SETTLE_MAX = 0.5
#: Beyond this many walked directories, watch the walk roots recursively
#: instead of one non-recursive watch per directory.
_MAX_DIR_WATCHES = 256

_SOURCE_SUFFIXES = (".py", ".pyc")
_EVENT_SUFFIXES = (".py", ".pyc", ".zip")

_Signature = tuple[int, int]


# --- paths -------------------------------------------------------------------


def _is_under(path: str, prefixes: Iterable[str]) -> bool:
    """Whether ``path`` is one of ``prefixes`` or inside one (component-wise)."""
    for prefix in prefixes:
        if path == prefix or path.startswith(prefix.rstrip(os.sep) + os.sep):
            return True
    return False


def _signature(path: str) -> _Signature | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_mtime_ns, st.st_size


def _iter_module_paths() -> Iterator[str]:
    """Yield the file of every imported module outside :data:`_ignore_always`.

    A module imported from a zip archive yields the archive.
    """
    ignore = _ignore_always
    for module in list(sys.modules.values()):
        name = getattr(module, "__file__", None)
        if not isinstance(name, str):
            continue
        name = os.path.abspath(name)
        if _is_under(name, ignore):
            continue
        while not os.path.isfile(name):
            parent = os.path.dirname(name)
            if parent == name:
                break
            name = parent
        else:
            yield name


def _remove_by_pattern(paths: set[str], exclude_patterns: Iterable[str]) -> None:
    for pattern in exclude_patterns:
        paths.difference_update(fnmatch.filter(paths, pattern))


def _prunes_dir(path: str, exclude_patterns: Iterable[str]) -> bool:
    """Whether every path below directory ``path`` is excluded by a pattern.

    A pattern ending in ``*`` that matches ``path + "/"`` matches everything
    below it too (the final ``*`` absorbs the rest).
    """
    with_sep = path + os.sep
    return any(p.endswith("*") and fnmatch.fnmatch(with_sep, p) for p in exclude_patterns)


def _walk_python_tree(
    root: str,
    exclude_patterns: Iterable[str],
    dirs: dict[str, int],
    files: set[str],
    skip_prefixes: bool = True,
) -> None:
    """Walk ``root`` the way werkzeug's stat reloader does, into ``dirs``/``files``.

    Records each walked directory's ``st_mtime_ns`` in ``dirs`` and each
    ``*.py``/``*.pyc`` in ``files``. Prunes directories under
    :data:`_stat_ignore_scan` (unless ``skip_prefixes`` is false), named in
    :data:`_ignore_common_dirs` or excluded by a pattern, and does not descend
    below a directory when neither it nor its parent holds Python files.
    """
    prefixes = _stat_ignore_scan if skip_prefixes else ()
    ignore_names = _ignore_common_dirs
    stack = [(root, True)]
    while stack:
        path, parent_has_py = stack.pop()
        if (
            path in dirs
            or _is_under(path, prefixes)
            or os.path.basename(path) in ignore_names
            or _prunes_dir(path, exclude_patterns)
        ):
            continue
        try:
            mtime = os.stat(path).st_mtime_ns
            with os.scandir(path) as it:
                entries = list(it)
        except OSError:
            continue
        dirs[path] = mtime
        has_py = False
        subdirs = []
        for entry in entries:
            try:
                is_dir = entry.is_dir(follow_symlinks=False)
            except OSError:
                continue
            if is_dir:
                subdirs.append(entry.path)
            elif entry.name.endswith(_SOURCE_SUFFIXES):
                has_py = True
                files.add(entry.path)
        if has_py or parent_has_py:
            stack.extend((sub, has_py) for sub in subdirs)


class _Scan:
    """A cached view of everything a reloader watches.

    :meth:`refresh` is cheap when nothing moved: it stats the walked
    directories and compares ``sys.path`` and the size of ``sys.modules``.
    """

    def __init__(self, extra_files: Iterable[str], exclude_patterns: Iterable[str]) -> None:
        self.extra_paths = {os.path.abspath(p) for p in extra_files}
        self.exclude_patterns = set(exclude_patterns)
        #: walked directory -> st_mtime_ns at walk time
        self.dirs: dict[str, int] = {}
        #: directories the walk started from
        self.roots: set[str] = set()
        #: ``*.py``/``*.pyc`` found by the walk
        self.tree_files: set[str] = set()
        #: files named directly: extra files, zip archives on sys.path
        self.named_files: set[str] = set()
        #: imported modules' files
        self.module_files: set[str] = set()
        self._sys_path: list[str] | None = None
        self._module_count = -1
        self._files: set[str] | None = None
        self._watch_dirs: set[str] | None = None
        self._polled: set[str] | None = None

    # The scan is rebuilt lazily: ``refresh`` marks, ``files`` recomputes.

    def refresh(self) -> bool:
        """Update the view; return whether the set of watched paths changed."""
        changed = False
        if self._sys_path != sys.path or self._tree_moved():
            self._walk()
            changed = True
        if len(sys.modules) != self._module_count:
            self._module_count = len(sys.modules)
            modules = set(_iter_module_paths())
            if modules != self.module_files:
                self.module_files = modules
                changed = True
        if changed:
            self._files = self._watch_dirs = self._polled = None
        return changed

    def _tree_moved(self) -> bool:
        for path, mtime in self.dirs.items():
            try:
                if os.stat(path).st_mtime_ns != mtime:
                    return True
            except OSError:
                return True
        return False

    def _walk(self) -> None:
        self._sys_path = list(sys.path)
        dirs: dict[str, int] = {}
        tree_files: set[str] = set()
        named: set[str] = set()
        roots: set[str] = set()
        for entry in self._sys_path:
            path = os.path.abspath(entry)
            if os.path.isfile(path):
                named.add(path)
            elif not _is_under(path, _stat_ignore_scan):
                roots.add(path)
                _walk_python_tree(path, self.exclude_patterns, dirs, tree_files)
        for path in self.extra_paths:
            if os.path.isdir(path):
                # An explicitly named directory is walked even inside a prefix.
                roots.add(path)
                _walk_python_tree(path, self.exclude_patterns, dirs, tree_files, False)
            else:
                # Watched even before it exists; its appearance is a change.
                named.add(path)
        self.dirs, self.tree_files, self.named_files, self.roots = dirs, tree_files, named, roots

    def files(self) -> set[str]:
        """Every watched file, exclusions applied."""
        if self._files is None:
            files = self.tree_files | self.named_files | self.module_files
            _remove_by_pattern(files, self.exclude_patterns)
            self._files = files
        return self._files

    def polled_files(self) -> set[str]:
        """Files no directory watch covers (imported modules in prefix trees)."""
        if self._polled is None:
            dirs = self.watch_dirs()
            self._polled = {p for p in self.files() if os.path.dirname(p) not in dirs}
        return self._polled

    def watch_dirs(self) -> set[str]:
        """Directories a notification loop watches, each non-recursively."""
        if self._watch_dirs is None:
            dirs = set(self.dirs)
            prefixes = _stat_ignore_scan
            for path in self.named_files | self.module_files:
                parent = os.path.dirname(path)
                if parent not in dirs and not _is_under(parent, prefixes) and os.path.isdir(parent):
                    dirs.add(parent)
            self._watch_dirs = {d for d in dirs if not _prunes_dir(d, self.exclude_patterns)}
        return self._watch_dirs


def _find_stat_paths(extra_files: set[str], exclude_patterns: set[str]) -> set[str]:
    """Find the files the stat reloader watches: Python files under the
    ``sys.path`` and extra directories outside the interpreter prefixes,
    imported module files, and extra files, minus ``exclude_patterns``.
    """
    scan = _Scan(extra_files, exclude_patterns)
    scan.refresh()
    return set(scan.files())


def _find_watchdog_paths(extra_files: set[str], exclude_patterns: set[str]) -> set[str]:
    """Find the top-most directories the notification reloaders watch.

    The same sources as :func:`_find_stat_paths`, as directories, collapsed to
    common roots. (The loops themselves watch each walked directory
    non-recursively; this is the werkzeug-compatible summary.)
    """
    scan = _Scan(extra_files, exclude_patterns)
    scan.refresh()
    dirs = scan.watch_dirs() | {os.path.dirname(p) for p in scan.files()}
    _remove_by_pattern(dirs, exclude_patterns)
    return _find_common_roots(dirs)


def _find_common_roots(paths: Iterable[str]) -> set[str]:
    """Keep only the top-most of ``paths`` (``/a`` covers ``/a/b``); ``""`` is ignored."""
    kept: list[tuple[str, ...]] = []
    for parts in sorted({PurePath(p).parts for p in paths if p}, key=len):
        if not any(parts[: len(root)] == root for root in kept):
            kept.append(parts)
    return {os.path.join(*parts) for parts in kept}


class _PathFilter:
    """Decides whether a notified absolute path is a change worth a reload."""

    def __init__(self, loop: _ScanningLoop) -> None:
        self.loop = loop

    def __call__(self, path: str) -> bool:
        scan = self.loop._scan
        if path in scan.files():
            return True
        if not path.endswith(_EVENT_SUFFIXES):
            return False
        parent = os.path.dirname(path)
        if parent not in scan.dirs:
            # Outside the walked tree (e.g. below a pruned directory reached
            # through a recursive watch).
            return False
        return not any(fnmatch.fnmatch(path, p) for p in scan.exclude_patterns)


def _get_args_for_reloading() -> list[str]:
    """Return the command line that started this interpreter, to run it again.

    ``sys.orig_argv`` keeps interpreter options (``-X``, ``-W``), ``-m`` and
    ``-c`` exactly; only the interpreter is replaced by ``sys.executable``.
    """
    return [sys.executable, *sys.orig_argv[1:]]


def _spawn_time() -> float | None:
    try:
        return float(os.environ[_SPAWN_TIME_ENV])
    except (KeyError, ValueError):
        return None


def _wait_until_stable(path: str) -> None:
    """Return once ``path``'s signature held still for one settle step (bounded)."""
    deadline = time.monotonic() + _SETTLE_MAX
    last = _signature(path)
    while time.monotonic() < deadline:
        time.sleep(_SETTLE_STEP)
        current = _signature(path)
        if current == last and current is not None:
            return
        last = current


def _exit_for_restart(changed: str | None = None) -> t.NoReturn:
    """Exit with 3 so the parent starts a new child - quickly.

    ``SystemExit`` unwinds as usual (``run_simple``'s ``finally`` closes the
    server, the user's ``finally`` blocks run), and so do ``atexit`` handlers
    (logging is flushed). Only the interpreter's module teardown is skipped:
    with Flask loaded it takes 0.15-0.35 s here, a third of a restart.
    """
    if changed is not None:
        _standby.report_change(changed)
    atexit.register(_skip_teardown)
    sys.exit(_RESTART_CODE)


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
    os._exit(_RESTART_CODE)


# --- loops -------------------------------------------------------------------


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
        over restarts (:mod:`fastserve._standby`).

        :return: the child's exit code.
        """
        if _standby.enabled():
            program = _standby.parse_program(sys.orig_argv[1:])
            if program is not None:
                supervisor = _standby.Supervisor(self.name, program, _log)
                return supervisor.run(_stat_ignore_scan, _wait_child)
        while True:
            _log("info", f" * Restarting with {self.name}")
            env = os.environ.copy()
            env["WERKZEUG_RUN_MAIN"] = "true"
            env[_SPAWN_TIME_ENV] = repr(time.time())
            exit_code = _spawn_and_wait(_get_args_for_reloading(), env)
            if exit_code != _RESTART_CODE:
                return exit_code

    def trigger_reload(self, filename: str) -> None:
        """Log the change and exit with 3 so the parent starts a new child."""
        self.log_reload(filename)
        _exit_for_restart(filename)

    def log_reload(self, filename: str | bytes) -> None:
        """Log `` * Detected change in '<abs path>', reloading``."""
        filename = os.path.abspath(filename)
        _log("info", f" * Detected change in {filename!r}, reloading")


def _spawn_and_wait(args: list[str], env: dict[str, str]) -> int:
    """Run the child and return its exit code."""
    return _wait_child(subprocess.Popen(args, env=env, close_fds=False))


def _wait_child(proc: subprocess.Popen[bytes]) -> int:
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
        _signals.stop_listening(_supervision.listener)
        _send_signal(proc, signal.SIGTERM)
        try:
            proc.wait(timeout=_supervision.shutdown_timeout + _signals.KILL_MARGIN)
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


_supervision = _Supervision()


class _ScanningLoop(ReloaderLoop):
    """Shared state of fastserve's loops: the cached scan and file signatures."""

    def __init__(self, *args: t.Any, **kwargs: t.Any) -> None:
        super().__init__(*args, **kwargs)
        self._scan = _Scan(self.extra_files, self.exclude_patterns)
        self._signatures: dict[str, _Signature | None] = {}

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
        spawn = _spawn_time()
        now_ns = time.time_ns()
        for path in paths:
            sig = _signature(path)
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


class StatReloaderLoop(_ScanningLoop):
    """Poll file signatures every ``interval`` seconds.

    Only directories are listed again, and only when their mtime changed.
    """

    name = "stat"

    def run_step(self) -> None:
        self._scan.refresh()
        changed = self._poll(self._scan.files())
        if changed is not None:
            self.trigger_reload(changed)

    def should_restart(self) -> str | None:
        time.sleep(self.interval)
        self._scan.refresh()
        return self._poll(self._scan.files())


_WATCHDOG_CHANGE_EVENTS = frozenset({"closed", "created", "deleted", "modified", "moved"})


class WatchdogReloaderLoop(_ScanningLoop):
    """Reload on watchdog events, filtered by absolute path here.

    Each walked directory gets a non-recursive watch; imported modules in
    prefix trees are stat-polled every ``interval``.
    """

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
        accept = _PathFilter(self)

        class EventHandler(FileSystemEventHandler):
            def dispatch(self, event: FileSystemEvent) -> None:
                if event.is_directory:
                    if event.event_type in {"created", "moved", "deleted"}:
                        loop._rescan = True
                        loop._wake.set()
                    return
                if accept(_str(event.src_path)) or accept(_str(event.dest_path)):
                    super().dispatch(event)

            def on_any_event(self, event: FileSystemEvent) -> None:
                # Only the event type is judged here; dispatch() filtered paths.
                if event.event_type not in _WATCHDOG_CHANGE_EVENTS:
                    return
                path = _str(event.src_path)
                dest = _str(event.dest_path)
                if dest and accept(dest):
                    path = dest
                loop._event_type = event.event_type
                loop.trigger_reload(path)

        name = Observer.__name__.lower()
        if name.endswith("observer"):
            name = name[: -len("observer")]
        self.name = f"watchdog ({name})"
        self.observer = Observer()
        self.event_handler = EventHandler()
        self.should_reload = threading.Event()
        self._wake = threading.Event()
        self._rescan = False
        self._changed: str | None = None
        self._last_event = 0.0
        self._event_type = ""
        self._complete = False
        self._lock = threading.Lock()
        self.watches: dict[tuple[str, bool], t.Any] = {}

    def trigger_reload(self, filename: str | bytes) -> None:
        # Called in watchdog's thread, where SystemExit would be lost: record
        # the change; the main thread settles and exits.
        filename = _str(filename)
        with self._lock:
            first = self._changed is None
            # Reported on close-after-write or rename: the file is complete.
            self._complete = self._complete or self._event_type in {"closed", "moved"}
            if first:
                self._changed = filename
            self._last_event = time.monotonic()
        self.should_reload.set()
        self._wake.set()
        if first:
            self.log_reload(filename)

    def __enter__(self) -> ReloaderLoop:
        self.observer.start()
        self._scan.refresh()
        self._schedule()
        # Record signatures of every watched file: catches edits made while
        # the child was starting.
        changed = self._poll(self._scan.files())
        if changed is not None:
            self.trigger_reload(changed)
        return self

    def __exit__(self, exc_type, exc_val, exc_tb):  # type: ignore[no-untyped-def]
        self.observer.stop()
        self.observer.join(timeout=_CHILD_EXIT_TIMEOUT)

    def run(self) -> None:
        while (changed := self.should_restart()) is None:
            pass
        _exit_for_restart(changed)

    def should_restart(self) -> str | None:
        deadline = time.monotonic() + self.interval
        while not self.should_reload.is_set():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                self.run_step()
                return self._changed
            if self._wake.wait(timeout=remaining):
                self._wake.clear()
                if self._rescan:
                    self._rescan = False
                    self._refresh_watches()
        # Settle: wait until the writes stopped (events quiet for one step).
        stop = time.monotonic() + _SETTLE_MAX
        while not self._complete and time.monotonic() < stop:
            with self._lock:
                quiet_since = time.monotonic() - self._last_event
            if quiet_since >= _SETTLE_STEP:
                break
            time.sleep(_SETTLE_STEP - quiet_since)
        return self._changed

    def run_step(self) -> None:
        self._refresh_watches()
        failed = [path for (path, _), watch in self.watches.items() if watch is None]
        polled = self._scan.polled_files()
        if failed:
            # A directory that could not be watched (inotify limits): poll it.
            unwatched = {f for f in self._scan.files() if _is_under(os.path.dirname(f), failed)}
            polled = polled | unwatched
        changed = self._poll(polled)
        if changed is not None:
            self.trigger_reload(changed)

    def _refresh_watches(self) -> None:
        if self._scan.refresh():
            self._schedule()

    def _schedule(self) -> None:
        wanted = _watch_targets(self._scan)
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


def _watch_targets(scan: _Scan) -> set[tuple[str, bool]]:
    """``(directory, recursive)`` pairs a notification loop should watch."""
    dirs = scan.watch_dirs()
    if len(dirs) <= _MAX_DIR_WATCHES:
        return {(d, False) for d in dirs}
    # Too many directories for one watch each: watch the walk roots
    # recursively; _PathFilter still drops what the walk pruned.
    roots = _find_common_roots(scan.roots)
    outside = {d for d in dirs if not _is_under(d, roots)}
    return {(r, True) for r in roots} | {(d, False) for d in outside}


def _str(path: str | bytes | None) -> str:
    if path is None:
        return ""
    return os.fsdecode(path)


class WatchfilesReloaderLoop(_ScanningLoop):
    """Reload on ``watchfiles`` (Rust ``notify``) events, filtered here.

    Watches the same directories as :class:`WatchdogReloaderLoop`; ``notify``
    itself groups a burst of writes (:attr:`step_ms` of quiet) before
    reporting, so a reported change has settled.
    """

    name = "watchfiles"
    #: Milliseconds of quiet after a change before it is reported; also how
    #: often the Rust loop wakes when idle (20 ms cost as much idle CPU as
    #: werkzeug's whole stat loop).
    step_ms = 50
    #: Longest a burst of changes is grouped, in milliseconds.
    debounce_ms = 400

    def __init__(self, *args: t.Any, **kwargs: t.Any) -> None:
        try:
            from watchfiles._rust_notify import RustNotify
        except ImportError as exc:
            raise ImportError(
                "reloader_type='watchfiles' needs the 'watchfiles' package:"
                " pip install 'fastserve[reload]'"
            ) from exc
        super().__init__(*args, **kwargs)
        self._rust_notify = RustNotify
        self._accept = _PathFilter(self)
        self._watching: set[tuple[str, bool]] = set()
        self._notify: t.Any = None
        self._unwatched = False

    def _open(self) -> None:
        """(Re)create the Rust watcher for the scan's current directories."""
        self._close()
        self._watching = _watch_targets(self._scan)
        paths = sorted(p for p, _ in self._watching if os.path.isdir(p))
        if not paths:
            return
        # The recursive fallback (huge trees) is rare: one watcher, recursive
        # if any target needs it; _PathFilter drops what the walk pruned.
        recursive = any(r for _, r in self._watching)
        force_polling = os.environ.get("WATCHFILES_FORCE_POLLING", "").lower() in {"1", "true"}
        try:
            self._notify = self._rust_notify(paths, False, force_polling, 300, recursive, True)
            self._unwatched = False
        except (OSError, RuntimeError) as exc:
            # e.g. the inotify watch limit: keep reloading, by polling.
            _log("warning", f" * watchfiles cannot watch ({exc}); polling files instead")
            self._unwatched = True

    def _close(self) -> None:
        notify, self._notify = self._notify, None
        if notify is not None:
            notify.close()

    def __enter__(self) -> ReloaderLoop:
        self._scan.refresh()
        self._open()
        changed = self._poll(self._scan.files())
        if changed is not None:
            self.trigger_reload(changed)
        return self

    def __exit__(self, exc_type, exc_val, exc_tb):  # type: ignore[no-untyped-def]
        self._close()

    def should_restart(self) -> str | None:
        if self._notify is None:
            time.sleep(self.interval)
        else:
            timeout_ms = max(1, int(self.interval * 1000))
            raw = self._notify.watch(self.debounce_ms, self.step_ms, timeout_ms, None)
            if raw == "signal":
                raise KeyboardInterrupt
            if isinstance(raw, set):
                changed = sorted(path for change, path in raw if self._accept(path))
                if changed:
                    return changed[0]
                # Anything else (a new directory, a log file) falls through:
                # run_step re-walks if a watched directory's listing changed.
        self.run_step()
        return None

    def run_step(self) -> None:
        if self._scan.refresh() and _watch_targets(self._scan) != self._watching:
            self._open()
        changed = self._poll(self._scan.files() if self._unwatched else self._scan.polled_files())
        if changed is not None:
            self.trigger_reload(changed)


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
        if os.environ.get("WERKZEUG_RUN_MAIN") == "true":
            ensure_echo_on()
            _serve_and_watch(main_func, loop_class, options, signals)
        else:
            _supervision.configure(main_func)
            # Constructed here too, so a missing package fails in the parent.
            reloader = loop_class(**options)
            sys.exit(reloader.restart_with_reloader())
    except KeyboardInterrupt:
        pass


def _raise_stop(signum: int) -> None:
    """First SIGTERM / Ctrl+C in a reloader process: leave the wait or the
    watch loop (no request is served in this thread), as werkzeug does."""
    if os.environ.get("WERKZEUG_RUN_MAIN") == "true":
        _stopping.extend(_signals.request_stop_all(signum))
    else:
        # refuse new connections now, not after Popen.wait's own 0.25 s
        # grace for a child that got the Ctrl+C too
        _signals.stop_listening(_supervision.listener)
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
    """The child: serve in a daemon thread, watch in this one.

    fastserve's loops record every watched file's signature *before* serving,
    start serving, and only then import and start their watcher (watchdog or
    watchfiles): the new code answers sooner, and an edit made in between is
    still a change against the recorded signatures.

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
        reloader = loop_class(**options)
        with reloader:
            thread.start()
            reloader.run()
        return
    baseline = _ScanningLoop(**options)
    baseline._scan.refresh()
    changed = baseline._poll(baseline._scan.files())
    if changed is not None:  # edited while this child was starting
        baseline.trigger_reload(changed)
    thread.start()
    reloader = loop_class(**options)
    reloader._adopt(baseline)
    with reloader:
        _standby.report_modules(_stat_ignore_scan)
        reloader.run()
