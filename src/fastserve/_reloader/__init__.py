"""The code reloader: werkzeug's protocol, cheaper scans, immediate reloads.

``fastserve._reloader`` has the names of ``werkzeug._reloader`` with werkzeug's
meaning (werkzeug's own test suite imports them from here); the work is split
by job:

- :mod:`._scan`: what is watched (werkzeug's rules: ``sys.path`` and extra
  directories walked for Python files, imported modules, extra files), as a
  cached view that is only walked again when a directory changed, and the
  filter that judges a notified path;
- :mod:`._process`: werkzeug's parent/child protocol (``WERKZEUG_RUN_MAIN``,
  exit code 3 means restart, the listening socket inherited), and the
  parent's graceful stop;
- :mod:`._standby`: the opt-in warm standby child that takes over restarts;
- :mod:`._loop`: werkzeug's :class:`ReloaderLoop`, and the one contract of
  fastserve's loops (``should_restart`` returns a changed path or ``None``
  within one interval; ``run`` exits with 3 on a path);
- :mod:`._stat`, :mod:`._watchdog`, :mod:`._watchfiles`: one backend each;
- :mod:`._run`: :func:`run_with_reloader`, the child's serve-and-watch order.

Where this differs from werkzeug (all deliberate): the walk is cached; a
change is a different ``(mtime_ns, size)``, not only a newer mtime; a file
edited between the child's start and its first scan is a change; the
watchdog loop filters absolute paths itself (watchdog 7 matches werkzeug's
``*.py`` patterns against full paths, so werkzeug's watchdog loop never fires)
and reloads as soon as the writes have settled; ``watchfiles`` is supported
and preferred by ``"auto"``; SIGTERM and a first Ctrl+C stop gracefully.

The module-level settings that the scan reads at call time
(``_stat_ignore_scan``, which werkzeug's tests assign, and its companions)
live in :mod:`._scan`. Reading them here reads them
there, and assigning them here assigns them there: the package's module
object is a ``types.ModuleType`` subclass with a property for each (as the
Python reference's "Customizing module attribute access" describes).
"""

from __future__ import annotations

import sys
import types
import typing as t

from . import _scan
from ._loop import ReloaderLoop
from ._process import _get_args_for_reloading, ensure_echo_on
from ._run import reloader_loops, run_with_reloader
from ._scan import (
    _find_common_roots,
    _find_stat_paths,
    _find_watchdog_paths,
    _remove_by_pattern,
    _Scan,
)
from ._stat import StatReloaderLoop
from ._watchdog import WatchdogReloaderLoop
from ._watchfiles import WatchfilesReloaderLoop

__all__ = [
    "ReloaderLoop",
    "StatReloaderLoop",
    "WatchdogReloaderLoop",
    "WatchfilesReloaderLoop",
    "_Scan",
    "_find_common_roots",
    "_find_stat_paths",
    "_find_watchdog_paths",
    "_get_args_for_reloading",
    "_remove_by_pattern",
    "ensure_echo_on",
    "reloader_loops",
    "run_with_reloader",
]


def _forward(name: str) -> property:
    """A property that reads and assigns ``name`` in :mod:`._scan`."""

    def get(package: types.ModuleType) -> t.Any:
        return getattr(_scan, name)

    def set(package: types.ModuleType, value: t.Any) -> None:
        setattr(_scan, name, value)

    return property(get, set, doc=f"``{_scan.__name__}.{name}``")


class _ReloaderPackage(types.ModuleType):
    """This package's module type: the names of :mod:`._scan` read at call
    time are properties reading and assigning the ones in :mod:`._scan` (data
    descriptors, so ``monkeypatch.setattr`` restores them by assigning the old
    value back)."""

    _stat_ignore_scan = _forward("_stat_ignore_scan")
    _ignore_always = _forward("_ignore_always")
    _ignore_common_dirs = _forward("_ignore_common_dirs")
    _iter_module_paths = _forward("_iter_module_paths")


sys.modules[__name__].__class__ = _ReloaderPackage
