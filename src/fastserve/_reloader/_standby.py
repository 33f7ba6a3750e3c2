"""The reloader parent's warm standby (opt-in: ``FASTSERVE_RELOADER_PRELOAD=1``).

Part of the reloader's process protocol (:mod:`._process`): it replaces
:func:`._process.run_children` in the parent when the opt-in is set, and the
child side (:func:`claim_channel`, :func:`report_modules`, :func:`report_change`)
runs in every reloader child.

A restart is dominated by the new child's cold start: the interpreter, then
importing Flask and friends (0.25 s on a quiet 2-core machine, more under
load). With the opt-in, the reloader parent keeps one *standby* interpreter
that has already imported the installed modules (those under the interpreter
prefixes: site-packages, the stdlib) the running child uses, and waits. On a
restart the parent tells it to go, and it runs the program exactly as the
command line did (script, ``-m module`` or ``-c code``, same interpreter
options); only the project's own modules are imported fresh.

Protocol (all pipes inherited by number through environment variables):

- child -> parent, one shared pipe (``FASTSERVE_RELOADER_CHANNEL``), lines
  ``<pid> M <name>,<name>,...`` (installed modules, once serving) and
  ``<pid> C <path>`` (the change that triggers its restart); the parent
  writes ``<its pid> S`` there itself after a child exited, to know its reader
  has read everything the child wrote (:meth:`Supervisor.sync`);
- parent -> standby, one pipe each (``FASTSERVE_RELOADER_GO``): a line of
  module names to preload, then ``go <spawn time>``.

The standby is thrown away, and the next child started cold, when the change
is in an installed module (the standby holds the old copy), when the standby
died, or when the command line cannot be replayed (``python -`` / stdin).

Why opt-in: importing installed modules before the program's first line can
change behaviour that depends on import order (``matplotlib.use()``, an
environment variable set by the program before importing a library that reads
it at import time). Programs that imported gevent or eventlet (monkey-patching)
never get a standby.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
import typing as t

from . import _process

PRELOAD_ENV = "FASTSERVE_RELOADER_PRELOAD"
CHANNEL_ENV = "FASTSERVE_RELOADER_CHANNEL"
GO_ENV = "FASTSERVE_RELOADER_GO"

#: Programs that patch the stdlib in place must import it themselves, first:
#: no standby is offered when one of these was imported.
_ORDER_SENSITIVE = ("gevent", "eventlet")

#: Seconds the parent waits for its channel reader to catch up after a child
#: exited (:meth:`Supervisor.sync`); only a dead reader makes it wait that long.
_SYNC_TIMEOUT = 2.0

#: Interpreter options that take a value (``-W x`` or ``-Wx``).
_OPTIONS_WITH_VALUE = frozenset("WX")

#: What the standby interpreter runs with ``-c`` (argv[1] = the program as JSON).
STANDBY_CODE = """\
import sys
from fastserve._reloader._standby import standby_main
standby_main(sys.argv[1])
"""


class Program(t.NamedTuple):
    """A command line split into the interpreter's part and the program's."""

    options: list[str]
    kind: str  # "script" | "module" | "command"
    target: str
    args: list[str]


def enabled() -> bool:
    """Whether the opt-in is set (POSIX only: descriptors are passed by number)."""
    return os.name == "posix" and os.environ.get(PRELOAD_ENV, "").lower() in {
        "1",
        "true",
        "yes",
        "on",
    }


def parse_program(orig_argv: list[str]) -> Program | None:
    """Split ``sys.orig_argv`` (without the interpreter) into options and program.

    :return: ``None`` when the program cannot be replayed (stdin, ``--help``).
    """
    options: list[str] = []
    i = 0
    while i < len(orig_argv):
        arg = orig_argv[i]
        if arg == "--":
            i += 1
            break
        if arg == "-" or not arg.startswith("-"):
            break
        if arg.startswith("--"):
            if arg == "--check-hash-based-pycs" and i + 1 < len(orig_argv):
                options += orig_argv[i : i + 2]
                i += 2
                continue
            return None  # --help, --version: nothing to replay
        for pos in range(1, len(arg)):
            flag = arg[pos]
            rest = arg[pos + 1 :]
            if flag in "cm":
                value = rest if rest else (orig_argv[i + 1] if i + 1 < len(orig_argv) else None)
                if value is None:
                    return None
                if pos > 1:
                    options.append(arg[:pos])
                after = i + 1 if rest else i + 2
                kind = "command" if flag == "c" else "module"
                return Program(options, kind, value, orig_argv[after:])
            if flag in _OPTIONS_WITH_VALUE:
                if rest:
                    options.append(arg)
                    i += 1
                elif i + 1 < len(orig_argv):
                    options += orig_argv[i : i + 2]
                    i += 2
                else:
                    return None
                break
        else:
            options.append(arg)
            i += 1
    if i >= len(orig_argv) or orig_argv[i] == "-":
        return None
    return Program(options, "script", orig_argv[i], orig_argv[i + 1 :])


# --- child side ----------------------------------------------------------------


_channel_fd: int | None = None


def claim_channel() -> None:
    """Take the parent's channel for this child only (not its own subprocesses)."""
    global _channel_fd
    value = os.environ.pop(CHANNEL_ENV, None)
    if value is None:
        return
    try:
        fd = int(value)
        os.set_inheritable(fd, False)
    except (OSError, ValueError):
        return
    _channel_fd = fd


def _channel_write(line: str) -> None:
    if _channel_fd is None:
        return
    try:
        os.write(_channel_fd, f"{os.getpid()} {line}\n".encode())
    except OSError:
        pass


def report_modules(prefixes: tuple[str, ...]) -> None:
    """Tell the parent which installed modules this child imported, in order.

    Nothing is reported (so no standby is started) for programs whose import
    order matters (:data:`_ORDER_SENSITIVE`).
    """
    if _channel_fd is None:
        return
    if any(name in sys.modules for name in _ORDER_SENSITIVE):
        return
    names = []
    for name, module in list(sys.modules.items()):
        path = getattr(module, "__file__", None)
        if (
            isinstance(path, str)
            and "," not in name
            and not name.startswith("__")
            and any(path.startswith(p.rstrip(os.sep) + os.sep) for p in prefixes)
        ):
            names.append(name)
    _channel_write("M " + ",".join(names))


def report_change(path: str) -> None:
    """Tell the parent which file triggered this child's restart."""
    _channel_write("C " + path.replace("\n", " "))


def _set_path0(value: str) -> None:
    """Set ``sys.path[0]`` as the command line would have (unless ``-P``/``-I``)."""
    if not getattr(sys.flags, "safe_path", False) and not sys.flags.isolated:
        sys.path[0] = value


def _path0(program: Program) -> str:
    if program.kind == "script":
        return os.path.dirname(os.path.realpath(program.target))
    if program.kind == "module":
        return os.getcwd()
    return ""


def standby_main(program_json: str) -> None:
    """The standby interpreter: preload, wait for ``go``, run the program."""
    spec = json.loads(program_json)
    program = Program(*spec["program"])
    # Preload with the program's own sys.path and argv, so names resolve
    # (and import-time code sees the command line) as in a cold start.
    _prepare_sys(program, spec["orig_argv"])
    with os.fdopen(int(os.environ.pop(GO_ENV)), "r") as go:
        try:
            for name in go.readline().strip().split(","):
                if name:
                    try:
                        __import__(name)
                    except Exception:
                        pass
            line = go.readline()
        except KeyboardInterrupt:
            os._exit(0)
    if not line.startswith("go "):
        os._exit(0)  # the parent went away or discarded us
    os.environ[_process.SPAWN_TIME_ENV] = line[3:].strip()
    run_program(program, spec["orig_argv"])


def _prepare_sys(program: Program, orig_argv: list[str]) -> None:
    sys.orig_argv = orig_argv
    _set_path0(_path0(program))
    first = "-c" if program.kind == "command" else program.target
    sys.argv = [first, *program.args]


def run_program(program: Program, orig_argv: list[str]) -> None:
    """Run ``program`` as ``__main__``, the way the interpreter's command line does."""
    import runpy

    _prepare_sys(program, orig_argv)
    if program.kind == "script":
        runpy.run_path(program.target, run_name="__main__")
    elif program.kind == "module":
        runpy.run_module(program.target, run_name="__main__", alter_sys=True)
    else:
        main = sys.modules["__main__"]
        for name in [n for n in vars(main) if not n.startswith("__")]:
            delattr(main, name)
        exec(compile(program.target, "<string>", "exec"), vars(main))


# --- parent side ---------------------------------------------------------------


class Supervisor:
    """The reloader parent with a warm standby (see the module docstring)."""

    def __init__(self, name: str, program: Program, log: t.Callable[..., None]) -> None:
        self.name = name
        self.program = program
        self.log = log
        self.lock = threading.Lock()
        self.active: subprocess.Popen[bytes] | None = None
        self.standby: tuple[subprocess.Popen[bytes], int] | None = None
        self.changed: dict[int, str] = {}
        self.read_fd, self.write_fd = os.pipe()
        os.set_inheritable(self.write_fd, True)
        self.reader = threading.Thread(target=self._read_channel, daemon=True)
        #: set by the reader when it reaches this process's own marker line
        self.synced = threading.Event()

    def _env(self) -> dict[str, str]:
        env = _process.child_environ()
        env[CHANNEL_ENV] = str(self.write_fd)
        return env

    def _spawn_cold(self) -> subprocess.Popen[bytes]:
        return subprocess.Popen(
            _process._get_args_for_reloading(), env=self._env(), close_fds=False
        )

    def _spawn_standby(self, modules: str) -> None:
        go_read, go_write = os.pipe()
        os.set_inheritable(go_read, True)
        env = self._env()
        env[GO_ENV] = str(go_read)
        spec = json.dumps({"program": list(self.program), "orig_argv": sys.orig_argv})
        args = [sys.executable, *self.program.options, "-c", STANDBY_CODE, spec]
        # close_fds=False: the listening socket (WERKZEUG_SERVER_FD) is inherited.
        try:
            proc = subprocess.Popen(args, env=env, close_fds=False)
        finally:
            os.close(go_read)
        os.write(go_write, modules.encode() + b"\n")
        self.standby = (proc, go_write)

    def _drop_standby(self) -> None:
        if self.standby is not None:
            proc, go_write = self.standby
            self.standby = None
            os.close(go_write)  # EOF: the standby exits by itself
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()

    def _read_channel(self) -> None:
        with os.fdopen(self.read_fd, "rb") as channel:
            for raw in channel:
                pid_text, _, rest = raw.decode(errors="replace").rstrip("\n").partition(" ")
                kind, _, value = rest.partition(" ")
                if pid_text == str(os.getpid()) and kind == "S":
                    self.synced.set()
                    continue
                with self.lock:
                    active = self.active
                    if active is None or str(active.pid) != pid_text:
                        continue
                    if kind == "C":
                        self.changed[active.pid] = value
                    elif kind == "M" and self.standby is None:
                        self._spawn_standby(value)

    def sync(self) -> bool:
        """Return once the reader has handled every line written so far.

        A child writes its ``C`` line before it exits, but the reader thread
        may not have read it when the parent sees the exit: the parent writes
        a marker line after it and waits for the reader to reach it (the pipe
        keeps order). Bounded by :data:`_SYNC_TIMEOUT`; ``False`` on timeout.
        """
        self.synced.clear()
        os.write(self.write_fd, f"{os.getpid()} S\n".encode())
        return self.synced.wait(timeout=_SYNC_TIMEOUT)

    def run(self, prefixes: tuple[str, ...], wait: t.Callable[[t.Any], int]) -> int:
        """Supervise children until one exits with something else than
        :data:`._process.RESTART_CODE`; return that exit code."""
        self.reader.start()
        try:
            self.log("info", f" * Restarting with {self.name}")
            with self.lock:
                self.active = self._spawn_cold()
            while True:
                code = wait(self.active)
                if code != _process.RESTART_CODE:
                    return code
                self.log("info", f" * Restarting with {self.name}")
                self.sync()
                with self.lock:
                    changed = self.changed.pop(self.active.pid, None)
                    standby = self.standby
                    stale = changed is None or any(
                        changed.startswith(p.rstrip(os.sep) + os.sep) for p in prefixes
                    )
                    if standby is not None and not stale and standby[0].poll() is None:
                        self.standby = None
                        proc, go_write = standby
                        os.write(go_write, f"go {time.time()!r}\n".encode())
                        os.close(go_write)
                        self.active = proc
                    else:
                        self._drop_standby()
                        self.active = self._spawn_cold()
        finally:
            with self.lock:
                self._drop_standby()
