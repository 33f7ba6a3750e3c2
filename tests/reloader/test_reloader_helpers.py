"""Unit tests of the reloader's helpers and loops, in-process (no child processes)."""

from __future__ import annotations

import os
import sys
import time
import types
from pathlib import Path
from unittest.mock import Mock, patch

import pytest
import watchfiles  # noqa: F401 - imported before `tree` narrows sys.path
from watchdog.events import (
    EVENT_TYPE_CLOSED,
    EVENT_TYPE_CLOSED_NO_WRITE,
    EVENT_TYPE_CREATED,
    EVENT_TYPE_DELETED,
    EVENT_TYPE_MODIFIED,
    EVENT_TYPE_MOVED,
    EVENT_TYPE_OPENED,
    DirCreatedEvent,
    FileClosedEvent,
    FileModifiedEvent,
    FileMovedEvent,
)
from werkzeug import _reloader as werkzeug_reloader

from fastserve import _reloader
from fastserve._reloader import (
    StatReloaderLoop,
    WatchdogReloaderLoop,
    WatchfilesReloaderLoop,
    _find_common_roots,
    _find_stat_paths,
    _find_watchdog_paths,
    _get_args_for_reloading,
    _process,
    _Scan,
    _scan,
    reloader_loops,
    run_with_reloader,
)


@pytest.fixture
def tree(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A project on a fake ``sys.path``::

    proj/app.py, proj/notes.txt, proj/pkg/mod.py, proj/pkg/data/blob.bin,
    proj/pkg/data/more/deep/hidden.py (below two levels without Python: not walked),
    proj/__pycache__/app.cpython.pyc, proj/.git/hook.py, proj/venv/lib/site.py
    (a fake interpreter prefix).
    """
    proj = tmp_path / "proj"
    files = {
        "app.py": "A = 1\n",
        "notes.txt": "",
        "pkg/mod.py": "",
        "pkg/data/blob.bin": "",
        "pkg/data/more/deep/hidden.py": "",
        "__pycache__/app.cpython.pyc": "",
        ".git/hook.py": "",
        "venv/lib/site.py": "",
    }
    for name, text in files.items():
        path = proj / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    monkeypatch.setattr(sys, "path", [str(proj)])
    monkeypatch.setattr(_reloader, "_stat_ignore_scan", (str(proj / "venv"),))
    # Only modules from this tree count: the test process's own imports
    # (an editable checkout others may be editing) must not cause changes.
    real = _reloader._iter_module_paths
    monkeypatch.setattr(
        _reloader,
        "_iter_module_paths",
        lambda: (p for p in real() if p.startswith(str(tmp_path) + os.sep)),
    )
    return proj


def ours(paths: set[str], root: Path) -> set[str]:
    return {os.path.relpath(p, root) for p in paths if p.startswith(str(root) + os.sep)}


def test_find_stat_paths_walks_sys_path_like_werkzeug(tree: Path, monkeypatch) -> None:
    paths = _find_stat_paths(set(), set())
    assert isinstance(paths, set)
    assert ours(paths, tree) == {"app.py", "pkg/mod.py"}
    monkeypatch.setattr(werkzeug_reloader, "_stat_ignore_scan", (str(tree / "venv"),))
    assert ours(paths, tree) == ours(set(werkzeug_reloader._find_stat_paths(set(), set())), tree)


def test_find_stat_paths_exclude_patterns(tree: Path) -> None:
    paths = _find_stat_paths(set(), {"*/pkg/*"})
    assert ours(paths, tree) == {"app.py"}
    paths = _find_stat_paths(set(), {str(tree / "app.py")})
    assert ours(paths, tree) == {"pkg/mod.py"}


def test_find_stat_paths_extra_files_and_dirs(tree: Path, tmp_path: Path) -> None:
    other = tmp_path / "other"
    (other / "sub").mkdir(parents=True)
    (other / "sub" / "x.py").write_text("")
    (other / "readme.md").write_text("")
    paths = _find_stat_paths({str(tree / "notes.txt"), str(other)}, set())
    assert ours(paths, tree) == {"app.py", "notes.txt", "pkg/mod.py"}
    # An extra directory is walked for Python files only.
    assert ours(paths, other) == {"sub/x.py"}


def test_stat_ignore_scan_is_read_at_call_time(tree: Path, monkeypatch) -> None:
    monkeypatch.setattr(_reloader, "_stat_ignore_scan", (str(tree),))
    assert ours(_find_stat_paths(set(), set()), tree) == set()


def test_imported_module_under_prefix_is_watched_not_walked(tree: Path, monkeypatch) -> None:
    site = tree / "venv" / "lib" / "site.py"
    monkeypatch.setitem(sys.modules, "fake_site", types.SimpleNamespace(__file__=str(site)))
    paths = _find_stat_paths(set(), set())
    assert ours(paths, tree) == {"app.py", "pkg/mod.py", "venv/lib/site.py"}
    scan = _Scan(set(), set())
    scan.refresh()
    # Notification loops stat-poll it instead of watching the prefix tree.
    assert str(site) in scan.polled_files()
    assert str(site.parent) not in scan.watch_dirs()


def test_find_watchdog_paths(tree: Path) -> None:
    roots = _find_watchdog_paths(set(), set())
    assert isinstance(roots, set)
    assert str(tree) in roots
    assert not any(r.startswith(str(tree) + os.sep) for r in roots)
    assert not any(r.startswith(str(tree)) for r in _find_watchdog_paths(set(), {f"{tree}*"}))


@pytest.mark.parametrize("find", [_find_stat_paths, _find_watchdog_paths])
def test_exclude_first_path_like_werkzeug_suite(find) -> None:
    paths = find(set(), set())
    first = next(iter(paths))
    assert any(p.startswith(first) for p in paths)
    assert not any(p.startswith(first) for p in find(set(), {f"{first}*"}))


def test_find_common_roots() -> None:
    paths = ["/a/b/c", "/a/b", "/a/bc", "/x", "/x/y/z", "", "/a/b/c/d"]
    assert _find_common_roots(paths) == {"/a/b", "/a/bc", "/x"}
    assert _find_common_roots([]) == set()
    assert _find_common_roots(["/"]) == {"/"}


def test_get_args_for_reloading(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "executable", "/opt/py/bin/python3")
    monkeypatch.setattr(sys, "orig_argv", ["python", "-X", "dev", "-m", "flask", "run", "--debug"])
    assert _get_args_for_reloading() == [
        "/opt/py/bin/python3",
        "-X",
        "dev",
        "-m",
        "flask",
        "run",
        "--debug",
    ]


def test_scan_refresh_is_incremental(tree: Path) -> None:
    scan = _Scan(set(), set())
    assert scan.refresh() is True
    assert scan.refresh() is False  # nothing moved: no walk
    (tree / "pkg" / "new.py").write_text("")
    os.utime(tree / "pkg", ns=(1, 1))  # make the listing change visible on coarse clocks
    assert scan.refresh() is True
    assert str(tree / "pkg" / "new.py") in scan.files()


def test_stat_loop_detects_change_and_ignores_excluded(tree: Path) -> None:
    loop = StatReloaderLoop(exclude_patterns=["*/mod.py"], interval=0)
    with patch.object(loop, "trigger_reload") as trigger:
        loop.__enter__()
        assert loop.should_restart() is None
        bump(tree / "pkg" / "mod.py")
        assert loop.should_restart() is None
        bump(tree / "app.py")
        assert loop.should_restart() == str(tree / "app.py")
    # fastserve's loops report changes through should_restart(); only run() exits.
    trigger.assert_not_called()


def test_stat_loop_run_step_triggers_reload_like_werkzeug(tree: Path) -> None:
    loop = StatReloaderLoop(interval=0)
    with patch.object(StatReloaderLoop, "trigger_reload") as trigger:
        loop.__enter__()
        loop.run_step()
        trigger.assert_not_called()
        bump(tree / "app.py")
        loop.run_step()
    trigger.assert_called_once_with(str(tree / "app.py"))


def test_run_logs_the_change_once_and_exits_with_3(tree: Path, caplog, monkeypatch) -> None:
    monkeypatch.setattr(_process, "exit_for_restart", lambda: sys.exit(3))
    caplog.set_level("INFO", logger="werkzeug")
    loop = StatReloaderLoop(interval=0)
    with loop:
        bump(tree / "app.py")
        with pytest.raises(SystemExit) as exc:
            loop.run()
    assert exc.value.code == 3
    messages = [r.getMessage() for r in caplog.records if "Detected change" in r.getMessage()]
    assert messages == [f" * Detected change in {str(tree / 'app.py')!r}, reloading"]


def test_stat_loop_sees_older_mtime_and_new_files_do_not_trigger(tree: Path) -> None:
    loop = StatReloaderLoop(interval=0)
    loop.__enter__()
    app = tree / "app.py"
    st = app.stat()
    os.utime(app, ns=(st.st_atime_ns, st.st_mtime_ns - 10**9))  # restored from a backup
    assert loop.should_restart() == str(app)
    (tree / "brand_new.py").write_text("")
    os.utime(tree, ns=(1, 1))
    assert loop.should_restart() is None


def test_stat_loop_catches_edit_made_while_child_started(tree: Path, monkeypatch) -> None:
    # A module file modified after the parent spawned this child was edited
    # while the child imported it: the first scan must report it.
    app = tree / "app.py"
    # Only this module is imported (others' files may be edited right now).
    monkeypatch.setattr(_reloader, "_iter_module_paths", lambda: iter([str(app)]))
    monkeypatch.setenv(_process.SPAWN_TIME_ENV, repr(app.stat().st_mtime - 5))
    loop = StatReloaderLoop(interval=5)
    loop.__enter__()
    # Returned at once by the first step, without waiting an interval.
    assert loop.should_restart() == str(app)


def bump(path: Path) -> None:
    st = path.stat()
    path.write_text(path.read_text() + "\n")
    if path.stat().st_mtime_ns == st.st_mtime_ns:
        os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 10**6))


# --- watchdog event handling (werkzeug's tests call on_any_event directly) ---


@pytest.mark.parametrize(
    ("event_type", "reloads"),
    [
        (EVENT_TYPE_MODIFIED, True),
        (EVENT_TYPE_CREATED, True),
        (EVENT_TYPE_DELETED, True),
        (EVENT_TYPE_MOVED, True),
        (EVENT_TYPE_CLOSED, True),
        (EVENT_TYPE_OPENED, False),
        (EVENT_TYPE_CLOSED_NO_WRITE, False),
    ],
)
@patch.object(WatchdogReloaderLoop, "trigger_reload")
def test_watchdog_on_any_event_types(trigger: Mock, event_type: str, reloads: bool) -> None:
    reloader = WatchdogReloaderLoop()
    event = FileModifiedEvent("")
    event.event_type = event_type
    reloader.event_handler.on_any_event(event)
    assert trigger.called is reloads


@patch.object(WatchdogReloaderLoop, "trigger_reload")
def test_watchdog_dispatch_filters_absolute_paths(trigger: Mock, tree: Path) -> None:
    reloader = WatchdogReloaderLoop(
        exclude_patterns=["*/pkg/*"], extra_files=[str(tree / "notes.txt")]
    )
    reloader._scan.refresh()
    handler = reloader.event_handler
    ignored = [
        tree / "readme.md",
        tree / "__pycache__" / "app.cpython.pyc",
        tree / ".git" / "hook.py",
        tree / "pkg" / "mod.py",  # excluded
        tree / "pkg" / "data" / "more" / "deep" / "hidden.py",  # outside the walked tree
    ]
    for path in ignored:
        handler.dispatch(FileModifiedEvent(str(path)))
    handler.dispatch(FileClosedEvent(str(tree / "app.py")))
    trigger.assert_called_once_with(str(tree / "app.py"))
    trigger.reset_mock()
    handler.dispatch(FileModifiedEvent(str(tree / "notes.txt")))  # an extra file
    trigger.assert_called_once_with(str(tree / "notes.txt"))
    trigger.reset_mock()
    # An editor's atomic save: temp file renamed over the source. The watched
    # destination is what reloads.
    handler.dispatch(FileMovedEvent(str(tree / ".app.py.swx"), str(tree / "app.py")))
    trigger.assert_called_once_with(str(tree / "app.py"))
    trigger.reset_mock()
    handler.dispatch(DirCreatedEvent(str(tree / "newpkg")))
    trigger.assert_not_called()
    assert reloader._rescan is True


def test_watchdog_trigger_reload_logs_once_and_signals(tree: Path, caplog) -> None:
    reloader = WatchdogReloaderLoop(interval=5)
    caplog.set_level("INFO", logger="werkzeug")
    reloader.trigger_reload(str(tree / "app.py"))
    reloader.trigger_reload(str(tree / "pkg" / "mod.py"))
    assert reloader.should_reload.is_set()
    messages = [r.getMessage() for r in caplog.records if "Detected change" in r.getMessage()]
    assert messages == [f" * Detected change in {str(tree / 'app.py')!r}, reloading"]
    # The main thread's wait returns at once, with the first changed path.
    assert reloader.should_restart() == str(tree / "app.py")


def test_watchdog_name() -> None:
    assert WatchdogReloaderLoop().name.startswith("watchdog (")


# --- registry and errors -------------------------------------------------------


def test_reloader_loops_registry() -> None:
    assert set(reloader_loops) == {"auto", "stat", "watchdog", "watchfiles"}
    # watchfiles is installed for the tests, so "auto" prefers it.
    assert reloader_loops["auto"] is WatchfilesReloaderLoop


def test_unknown_reloader_type_is_a_key_error() -> None:
    with pytest.raises(KeyError):
        run_with_reloader(lambda: None, reloader_type="inotify")


@pytest.mark.parametrize(
    ("cls", "module"), [(WatchfilesReloaderLoop, "watchfiles"), (WatchdogReloaderLoop, "watchdog")]
)
def test_missing_package_names_the_extra(cls, module: str, monkeypatch) -> None:
    for name in list(sys.modules):
        if name == module or name.startswith(module + "."):
            monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, module, None)  # makes the import fail
    with pytest.raises(ImportError, match=r"pip install 'fastserve\[reload\]'"):
        cls()


# --- notification loops fall back to polling when a watch cannot be set up ---


def test_watchdog_polls_directories_it_could_not_watch(tree: Path, monkeypatch) -> None:
    loop = WatchdogReloaderLoop(interval=0)

    def refuse(*args, **kwargs):
        raise OSError(28, "inotify watch limit reached")

    monkeypatch.setattr(loop.observer, "schedule", refuse)
    with loop:
        assert loop.watches and all(w is None for w in loop.watches.values())
        assert loop.should_restart() is None
        bump(tree / "pkg" / "mod.py")
        assert loop.should_restart() == str(tree / "pkg" / "mod.py")


def test_watchfiles_falls_back_to_polling(tree: Path, monkeypatch, caplog) -> None:
    loop = WatchfilesReloaderLoop(interval=0)

    def refuse(*args, **kwargs):
        # watchfiles.watch() is a generator: its watcher fails on the first next()
        raise OSError(24, "too many open files")
        yield set()

    monkeypatch.setattr(loop, "_watch_files", refuse)
    caplog.set_level("WARNING", logger="werkzeug")
    with loop:
        assert loop.should_restart() is None
        assert "polling files instead" in caplog.text
        assert loop.should_restart() is None
        bump(tree / "app.py")
        assert loop.should_restart() == str(tree / "app.py")


def test_watchfiles_polls_once_when_its_watcher_went_live(tree: Path, monkeypatch) -> None:
    # watchfiles.watch() starts watching on its first next(): an edit made
    # between the recorded signatures and that moment is found by one full
    # poll after the first (empty) report.
    loop = WatchfilesReloaderLoop(interval=0)
    calls: list[tuple[tuple, dict]] = []

    def quiet(*args, **kwargs):
        calls.append((args, kwargs))
        while True:
            yield set()

    monkeypatch.setattr(loop, "_watch_files", quiet)
    with loop:
        bump(tree / "app.py")  # not polled later: app.py's directory is watched
        assert loop.should_restart() == str(tree / "app.py")
        bump(tree / "app.py")
        assert loop.should_restart() is None
    ((args, kwargs),) = calls
    assert str(tree) in args
    assert kwargs["yield_on_timeout"] is True and kwargs["recursive"] is False
    assert kwargs["watch_filter"](None, str(tree / "app.py")) is True
    assert kwargs["watch_filter"](None, str(tree / "notes.txt")) is False


def test_watchfiles_reports_a_change_in_a_watched_directory(tree: Path) -> None:
    mod = tree / "pkg" / "mod.py"
    loop = WatchfilesReloaderLoop(interval=0.2)
    with loop:
        # the first wait starts the watcher (and polls once: nothing changed yet)
        assert loop.should_restart() is None
        # mod.py's directory is watched, so only a notification can report it
        assert str(mod) not in loop._scan.polled_files()
        bump(mod)
        deadline = time.monotonic() + 30
        while (changed := loop.should_restart()) is None and time.monotonic() < deadline:
            pass
        assert changed == str(mod)


def test_assigning_stat_ignore_scan_on_the_package_reaches_the_scan(tree: Path) -> None:
    # werkzeug's live_apps/reloader_app.py assigns it on the package, plainly.
    before = _reloader._stat_ignore_scan
    _reloader._stat_ignore_scan = (str(tree),)
    try:
        assert _scan._stat_ignore_scan == (str(tree),)
        assert ours(_find_stat_paths(set(), set()), tree) == set()
    finally:
        _reloader._stat_ignore_scan = before
    assert _scan._stat_ignore_scan == before
    assert ours(_find_stat_paths(set(), set()), tree) == {"app.py", "pkg/mod.py"}
