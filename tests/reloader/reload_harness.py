"""Subprocess harness for the live reloader tests: start, read lines, edit, stop."""

from __future__ import annotations

import json
import os
import queue
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import fastserve

RUNNER = Path(__file__).with_name("reload_runner.py")
RUN_AS_COMMAND = "import runpy; runpy.run_path('reload_runner.py', run_name='__main__')"
#: Upper bound for any single wait; generous because the machine is shared.
WAIT = 30.0


def _checkout_exclude() -> list[str]:
    """Exclude an editable fastserve checkout's sources from what the runner
    watches: they are module files outside the interpreter prefixes, and a
    colleague editing them must not restart our test's child."""
    src = Path(fastserve.__file__).resolve().parent.parent
    if any(str(src).startswith(p) for p in {sys.prefix, sys.base_prefix}):
        return []
    return [f"{src}{os.sep}*"]


CHECKOUT_EXCLUDE = _checkout_exclude()


class Reloading:
    """A ``reload_runner.py`` process tree (parent + reloaded child) in ``project``."""

    def __init__(
        self,
        project: Path,
        env: dict[str, str] | None = None,
        how: str = "script",
        **kwargs: Any,
    ) -> None:
        self.project = project
        shutil.copy(RUNNER, project / "reload_runner.py")
        kwargs["exclude_patterns"] = [*kwargs.get("exclude_patterns", ()), *CHECKOUT_EXCLUDE]
        env = {**os.environ, **(env or {})}
        env.pop("WERKZEUG_RUN_MAIN", None)
        env.pop("WERKZEUG_SERVER_FD", None)
        env["PYTHONUNBUFFERED"] = "1"
        env["PYTHONDONTWRITEBYTECODE"] = "1"
        program = {
            "script": ["reload_runner.py"],
            "module": ["-m", "reload_runner"],
            "command": ["-c", RUN_AS_COMMAND],
        }[how]
        self.proc = subprocess.Popen(
            [sys.executable, *program, json.dumps(kwargs)],
            cwd=project,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self.lines: queue.Queue[str] = queue.Queue()
        self.log: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.put(line.rstrip("\n"))

    def expect(self, needle: str, timeout: float = WAIT) -> str:
        """Return the next output line containing ``needle``; fail after ``timeout``."""
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"no line with {needle!r} within {timeout}s; got {self.log}")
            try:
                line = self.lines.get(timeout=remaining)
            except queue.Empty:
                continue
            self.log.append(line)
            if needle in line:
                return line

    def drain(self, seconds: float) -> list[str]:
        """Collect the lines printed during the next ``seconds``."""
        got = []
        deadline = time.monotonic() + seconds
        while (remaining := deadline - time.monotonic()) > 0:
            try:
                line = self.lines.get(timeout=remaining)
            except queue.Empty:
                break
            self.log.append(line)
            got.append(line)
        return got

    def standby_pids(self) -> list[int]:
        """Children of the parent that are waiting standby interpreters."""
        found = []
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            try:
                with open(f"/proc/{entry}/stat") as f:
                    ppid = int(f.read().rsplit(")", 1)[1].split()[1])
                with open(f"/proc/{entry}/cmdline", "rb") as f:
                    cmdline = f.read()
            except (OSError, ValueError, IndexError):
                continue
            if ppid == self.proc.pid and b"standby_main" in cmdline:
                found.append(int(entry))
        return found

    def wait(self, timeout: float = WAIT) -> int:
        return self.proc.wait(timeout=timeout)

    def close(self) -> None:
        """Stop the parent (SIGTERM, then SIGKILL) and any child it left behind."""
        child_pids = [
            int(line.split("pid=")[1].split()[0]) for line in self.log if "RUNNING pid=" in line
        ]
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        for pid in child_pids:
            if _is_runner(pid):
                os.kill(pid, signal.SIGKILL)
        if self.proc.stdout is not None:
            self.proc.stdout.close()


def write_module(path: Path, text: str) -> None:
    """Write ``path`` so that its mtime visibly changes (even on coarse clocks)."""
    before = path.stat().st_mtime_ns if path.exists() else None
    path.write_text(text)
    if before is not None and path.stat().st_mtime_ns == before:
        os.utime(path, ns=(before + 1_000_000, before + 1_000_000))


def _is_runner(pid: int) -> bool:
    """Whether ``pid`` is still one of our runner processes (never kill a reused pid)."""
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return b"reload_runner.py" in f.read()
    except OSError:
        return False
