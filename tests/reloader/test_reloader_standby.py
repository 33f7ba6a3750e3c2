"""The opt-in warm standby (``FASTSERVE_RELOADER_PRELOAD=1``): command-line
replay rules, and live restarts served by the standby interpreter."""

from __future__ import annotations

import os
import sys
import threading
import types
from pathlib import Path

import pytest
from reload_harness import Reloading, write_module

from fastserve._reloader import _standby
from fastserve._reloader._standby import Program, parse_program


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["app.py", "--port", "1"], Program([], "script", "app.py", ["--port", "1"])),
        (["-u", "-X", "dev", "app.py"], Program(["-u", "-X", "dev"], "script", "app.py", [])),
        (
            ["-Xdev", "-Wdefault", "app.py", "-m"],
            Program(["-Xdev", "-Wdefault"], "script", "app.py", ["-m"]),
        ),
        (["-m", "flask", "run", "--debug"], Program([], "module", "flask", ["run", "--debug"])),
        (["-Bm", "flask", "run"], Program(["-B"], "module", "flask", ["run"])),
        (["-mflask", "run"], Program([], "module", "flask", ["run"])),
        (["-c", "print(1)", "a"], Program([], "command", "print(1)", ["a"])),
        (["-I", "-c", "pass"], Program(["-I"], "command", "pass", [])),
        (["--", "app.py"], Program([], "script", "app.py", [])),
        (
            ["--check-hash-based-pycs", "always", "app.py"],
            Program(["--check-hash-based-pycs", "always"], "script", "app.py", []),
        ),
    ],
)
def test_parse_program(argv: list[str], expected: Program) -> None:
    assert parse_program(argv) == expected


@pytest.mark.parametrize("argv", [[], ["-"], ["-u"], ["--version"], ["-c"], ["-W"], ["-u", "-"]])
def test_parse_program_refuses_what_cannot_be_replayed(argv: list[str]) -> None:
    assert parse_program(argv) is None


def _reported(monkeypatch: pytest.MonkeyPatch) -> str:
    read_fd, write_fd = os.pipe()
    try:
        monkeypatch.setenv(_standby.CHANNEL_ENV, str(write_fd))
        monkeypatch.setattr(_standby, "_channel_fd", None)
        _standby.claim_channel()
        assert _standby.CHANNEL_ENV not in os.environ  # not passed to subprocesses
        _standby.report_modules((sys.base_prefix,))
        os.close(write_fd)
        with os.fdopen(read_fd, "rb") as channel:
            return channel.read().decode()
    finally:
        for fd in (read_fd, write_fd):
            try:
                os.close(fd)
            except OSError:
                pass


def test_report_modules_lists_installed_modules_in_import_order(monkeypatch) -> None:
    message = _reported(monkeypatch)
    pid, kind, names = message.rstrip("\n").split(" ", 2)
    assert (int(pid), kind) == (os.getpid(), "M")
    names = names.split(",")
    assert "json" in names and "os" in names
    assert not any(n.startswith(("test_reloader", "reload_harness")) for n in names)


def test_report_modules_offers_no_standby_to_monkey_patchers(monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "gevent", types.ModuleType("gevent"))
    assert _reported(monkeypatch) == ""


def test_supervisor_sync_waits_for_the_reader_to_handle_a_childs_report() -> None:
    # The child writes its "C <path>" line, then exits; when the parent sees the
    # exit, its reader thread may not have handled the line yet (here: held up
    # on the lock). sync() returns only once it has, so the parent never mistakes
    # a reported change for an unknown one (and starts the next child cold).
    supervisor = _standby.Supervisor("stat", Program([], "script", "app.py", []), print)
    supervisor.active = types.SimpleNamespace(pid=4242)  # type: ignore[assignment]
    release = threading.Timer(0.2, supervisor.lock.release)
    supervisor.lock.acquire()
    supervisor.reader.start()
    try:
        os.write(supervisor.write_fd, b"4242 C /project/app.py\n")
        release.start()
        assert supervisor.sync() is True
        assert supervisor.changed == {4242: "/project/app.py"}
    finally:
        release.join()
        os.close(supervisor.write_fd)  # EOF: the reader ends
        supervisor.reader.join(timeout=10)
    assert not supervisor.reader.is_alive()


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "target.py").write_text("VALUE = 1\n")
    return tmp_path


@pytest.mark.live
@pytest.mark.timeout(120)
@pytest.mark.parametrize("reloader_type", ["stat", "watchdog", "watchfiles"])
def test_standby_takes_over_restarts(project: Path, reloader_type: str) -> None:
    lazy = project / "lazy.py"
    lazy.write_text("VALUE = (\n")
    proc = Reloading(
        project, env={"FASTSERVE_RELOADER_PRELOAD": "1"}, reloader_type=reloader_type, interval=0.1
    )
    try:
        first = proc.expect("RUNNING")
        assert "value=1 lazy=error:SyntaxError" in first
        # Give the standby time to start, so the restart below goes through it.
        proc.drain(3.0)
        standby = proc.standby_pids()
        assert len(standby) == 1
        write_module(project / "target.py", "VALUE = 2\n")
        proc.expect("Detected change in")
        second = proc.expect("RUNNING")
        assert "value=2" in second
        assert f"pid={standby[0]} " in second  # the standby became the child
        # Fixing a file that never imported reloads too, through the next standby.
        proc.drain(3.0)
        write_module(lazy, "VALUE = 'fixed'\n")
        assert repr(str(lazy)) in proc.expect("Detected change in")
        assert "value=2 lazy=ok:fixed" in proc.expect("RUNNING")
        # The program's exit code still ends the session.
        proc.drain(3.0)
        write_module(project / "target.py", "VALUE = 'exit7'\n")
        proc.expect("Detected change in")
        assert proc.wait() == 7
    finally:
        proc.close()
    assert len([line for line in proc.log if line.startswith("RUNNING")]) == 3


@pytest.mark.live
@pytest.mark.timeout(120)
@pytest.mark.parametrize("how", ["module", "command"])
def test_standby_replays_module_and_command_lines(project: Path, how: str) -> None:
    preload = {"FASTSERVE_RELOADER_PRELOAD": "1"}
    proc = Reloading(project, env=preload, how=how, reloader_type="stat", interval=0.1)
    try:
        assert "value=1" in proc.expect("RUNNING")
        proc.drain(3.0)
        standby = proc.standby_pids()
        assert len(standby) == 1
        write_module(project / "target.py", "VALUE = 2\n")
        second = proc.expect("RUNNING")
        assert "value=2" in second
        assert f"pid={standby[0]} " in second
    finally:
        proc.close()
