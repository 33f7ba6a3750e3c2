"""Live reloader tests: a real parent/child process tree per test (loopback-free).

Each test runs ``reload_runner.py`` under ``run_with_reloader`` in a temporary
project directory, edits files and reads the processes' output. Every wait is
bounded; the process tree is stopped in ``finally``.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest
from reload_harness import Reloading, write_module

pytestmark = [pytest.mark.live, pytest.mark.timeout(120)]

TYPES = ["stat", "watchdog", "watchfiles"]
RESTART_LINE = {
    "stat": " * Restarting with stat",
    "watchdog": " * Restarting with watchdog (",
    "watchfiles": " * Restarting with watchfiles",
}


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "target.py").write_text("VALUE = 1\n")
    return tmp_path


@pytest.fixture
def start(project: Path) -> Iterator[object]:
    started: list[Reloading] = []

    def _start(**kwargs: object) -> Reloading:
        kwargs.setdefault("interval", 0.1)
        proc = Reloading(project, **kwargs)
        started.append(proc)
        return proc

    yield _start
    for proc in started:
        proc.close()


@pytest.mark.parametrize("reloader_type", TYPES)
def test_edit_restarts_child(project: Path, start, reloader_type: str) -> None:
    proc = start(reloader_type=reloader_type)
    proc.expect(RESTART_LINE[reloader_type])
    first = proc.expect("RUNNING")
    assert "value=1" in first

    target = project / "target.py"
    write_module(target, "VALUE = 2\n")
    detected = proc.expect("Detected change in")
    assert detected.endswith(f" * Detected change in {str(target)!r}, reloading")
    # The old child ran its cleanup before exiting.
    old_pid = first.split()[1]
    assert proc.expect("FINALLY") == f"FINALLY {old_pid}"
    assert proc.expect("ATEXIT") == f"ATEXIT {old_pid}"
    proc.expect(RESTART_LINE[reloader_type])
    second = proc.expect("RUNNING")
    assert "value=2" in second
    assert second.split()[1] != first.split()[1]  # a new child pid


@pytest.mark.parametrize("reloader_type", TYPES)
def test_fixing_a_file_that_never_imported_reloads(
    project: Path, start, reloader_type: str
) -> None:
    lazy = project / "lazy.py"
    lazy.write_text("VALUE = (\n")  # a syntax error: never imported successfully
    proc = start(reloader_type=reloader_type)
    assert "lazy=error:SyntaxError" in proc.expect("RUNNING")

    write_module(lazy, "VALUE = 'fixed'\n")
    assert repr(str(lazy)) in proc.expect("Detected change in")
    assert "lazy=ok:fixed" in proc.expect("RUNNING")


@pytest.mark.parametrize("reloader_type", TYPES)
def test_extra_files(project: Path, tmp_path_factory, start, reloader_type: str) -> None:
    # A non-Python file outside sys.path is watched only because it is named.
    config = tmp_path_factory.mktemp("elsewhere") / "settings.toml"
    config.write_text("debug = true\n")
    proc = start(reloader_type=reloader_type, extra_files=[str(config)])
    proc.expect("RUNNING")

    write_module(config, "debug = false\n")
    assert repr(str(config)) in proc.expect("Detected change in")
    proc.expect("RUNNING")


@pytest.mark.parametrize("reloader_type", TYPES)
def test_exclude_patterns(project: Path, start, reloader_type: str) -> None:
    other = project / "other.py"
    other.write_text("X = 1\n")
    proc = start(reloader_type=reloader_type, exclude_patterns=["*/target.py"])
    proc.expect("RUNNING")

    # The excluded file changes first, then a watched one: the reload that
    # follows must name the watched file, so the excluded edit was ignored.
    write_module(project / "target.py", "VALUE = 3\n")
    quiet = proc.drain(1.0)
    assert not any("Detected change" in line for line in quiet), quiet
    write_module(other, "X = 2\n")
    assert repr(str(other)) in proc.expect("Detected change in")
    assert "value=3" in proc.expect("RUNNING")


def test_child_exit_code_is_the_parents(project: Path, start) -> None:
    (project / "target.py").write_text("VALUE = 'exit7'\n")
    proc = start(reloader_type="stat")
    assert proc.wait() == 7
    assert not any("RUNNING" in line for line in proc.drain(0.2))


@pytest.mark.parametrize("reloader_type", ["stat", "watchfiles"])
def test_restarted_child_exit_code_is_the_parents(project: Path, start, reloader_type: str) -> None:
    proc = start(reloader_type=reloader_type)
    proc.expect("RUNNING")
    write_module(project / "target.py", "VALUE = 'exit7'\n")
    proc.expect("Detected change in")
    assert proc.wait() == 7


def test_sigterm_stops_parent_and_child(project: Path, start) -> None:
    proc = start(reloader_type="stat")
    line = proc.expect("RUNNING")
    child = int(line.split("pid=")[1].split()[0])
    proc.proc.send_signal(signal.SIGTERM)
    assert proc.wait() == 0
    # The parent waited for its child, so the child is gone too.
    with pytest.raises(ProcessLookupError):
        os.kill(child, 0)


def test_unknown_reloader_type_fails_in_parent(project: Path, start) -> None:
    proc = start(reloader_type="nope")
    assert proc.wait() == 1
    proc.drain(0.2)
    assert any("KeyError: 'nope'" in line for line in proc.log)
