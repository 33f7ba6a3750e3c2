"""What the reloader watches: path discovery, the cached scan, and the filter
that judges a notified path.

The rules (werkzeug's stat reloader's, see ``werkzeug._reloader``): every
``sys.path`` directory and every extra directory outside the interpreter
prefixes is walked for ``*.py``/``*.pyc`` (so a file that failed to import is
still watched), plus every imported module's file, plus ``extra_files``;
``exclude_patterns`` are ``fnmatch`` patterns on absolute paths.

What fastserve adds (the loops in the sibling modules rely on it):

- :class:`_Scan` caches the walk. :meth:`_Scan.refresh` ``stat``-s only the
  walked directories and walks again only when one of their mtimes changed;
  module files are re-read only when ``sys.modules`` grew. Prefix trees
  (site-packages, the stdlib) are never listed: imported modules there are
  stat-polled one file at a time.
- :meth:`_Scan.watch_dirs` and :meth:`_Scan.watch_targets` say which
  directories a notification loop watches (each non-recursively, so a
  ``.venv`` inside the project is not watched), and :meth:`_Scan.accepts`
  filters the absolute paths a notifier reports.

:data:`_stat_ignore_scan` and :func:`_iter_module_paths` are looked up at call
time: werkzeug's tests assign ``fastserve._reloader._stat_ignore_scan``, and the
package forwards that assignment here.
"""

from __future__ import annotations

import fnmatch
import os
import sys
from collections.abc import Iterable, Iterator
from pathlib import PurePath

#: Interpreter installation prefixes (the stdlib when in a virtualenv). Module
#: files under them are never watched by any loop.
_ignore_always: tuple[str, ...] = tuple({sys.base_prefix, sys.base_exec_prefix})
_prefixes = {*_ignore_always, sys.prefix, sys.exec_prefix}
if hasattr(sys, "real_prefix"):  # pragma: no cover - virtualenv < 20
    _prefixes.add(sys.real_prefix)
#: Prefixes that are never walked; imported modules under them are still
#: watched file by file. Read at call time (werkzeug's tests assign it).
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

#: Beyond this many walked directories, watch the walk roots recursively
#: instead of one non-recursive watch per directory.
_MAX_DIR_WATCHES = 256

_SOURCE_SUFFIXES = (".py", ".pyc")
_EVENT_SUFFIXES = (".py", ".pyc", ".zip")

#: A file's ``(st_mtime_ns, st_size)``: a change is any difference, not only a
#: newer mtime (a restored backup, two saves within the clock's granularity).
_Signature = tuple[int, int]


def _is_under(path: str, prefixes: Iterable[str]) -> bool:
    """Whether ``path`` is one of ``prefixes`` or inside one (component-wise)."""
    for prefix in prefixes:
        if path == prefix or path.startswith(prefix.rstrip(os.sep) + os.sep):
            return True
    return False


def _signature(path: str) -> _Signature | None:
    """``path``'s :data:`_Signature`, or ``None`` when it cannot be stat-ed."""
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
    The derived sets (:meth:`files`, :meth:`watch_dirs`, :meth:`polled_files`)
    are recomputed lazily after a refresh that changed something.
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

    def watch_targets(self) -> set[tuple[str, bool]]:
        """``(directory, recursive)`` pairs a notification loop should watch."""
        dirs = self.watch_dirs()
        if len(dirs) <= _MAX_DIR_WATCHES:
            return {(d, False) for d in dirs}
        # Too many directories for one watch each: watch the walk roots
        # recursively; accepts() still drops what the walk pruned.
        roots = _find_common_roots(self.roots)
        outside = {d for d in dirs if not _is_under(d, roots)}
        return {(r, True) for r in roots} | {(d, False) for d in outside}

    def accepts(self, path: str) -> bool:
        """Whether a notified absolute ``path`` is a change worth a reload.

        A watched file is; so is a new Python file (or zip archive) in a
        walked directory that no pattern excludes. Anything below a pruned
        directory (reached through a recursive watch) is not.
        """
        if path in self.files():
            return True
        if not path.endswith(_EVENT_SUFFIXES):
            return False
        if os.path.dirname(path) not in self.dirs:
            return False
        return not any(fnmatch.fnmatch(path, p) for p in self.exclude_patterns)


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
