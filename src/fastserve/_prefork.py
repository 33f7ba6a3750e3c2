"""``processes=N``: pre-forked worker processes sharing the listening socket."""

from __future__ import annotations

import atexit
import os
import signal
import sys
import threading
import time
import traceback
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .server import BaseWSGIServer

__all__ = ["Prefork"]


class Prefork:
    """``processes=N``: N forked workers accepting on the shared socket.

    :param server: the bound server; each worker calls its ``_serve_worker``.
    :param processes: how many workers.
    """

    def __init__(self, server: BaseWSGIServer, processes: int) -> None:
        self.server = server
        self.processes = processes
        self.children: set[int] = set()

    def run(self, stop: threading.Event, poll_interval: float) -> None:
        """Fork the workers and keep them running until ``stop`` is set."""
        previous: Any = None
        in_main = threading.current_thread() is threading.main_thread()
        if in_main:
            previous = signal.signal(signal.SIGTERM, _sigterm_to_exit)
        # also when the interpreter exits another way (the reloader's exit 3)
        atexit.register(self._terminate)
        try:
            while not stop.is_set():
                while len(self.children) < self.processes and not stop.is_set():
                    self._spawn()
                stop.wait(poll_interval)
                self._reap()
        finally:
            atexit.unregister(self._terminate)
            self._terminate()
            if in_main:
                signal.signal(signal.SIGTERM, signal.SIG_DFL if previous is None else previous)

    def _spawn(self) -> None:
        parent = os.getpid()
        pid = os.fork()
        if pid:
            self.children.add(pid)
            return
        code = 0
        try:
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            self.server._serve_worker(parent)
        except KeyboardInterrupt:
            pass
        except SystemExit as e:
            code = e.code if isinstance(e.code, int) else 1
        except BaseException:
            traceback.print_exc()
            code = 1
        finally:
            try:
                sys.stdout.flush()
                sys.stderr.flush()
            finally:
                os._exit(code)

    def _reap(self) -> None:
        for pid in list(self.children):
            try:
                done, _ = os.waitpid(pid, os.WNOHANG)
            except ChildProcessError:
                done = pid
            if done:
                self.children.discard(pid)

    def _terminate(self, timeout: float = 5.0) -> None:
        for pid in self.children:
            try:
                os.kill(pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + timeout
        while self.children and time.monotonic() < deadline:
            self._reap()
            if self.children:
                time.sleep(0.01)
        for pid in self.children:
            try:
                os.kill(pid, signal.SIGKILL)
                os.waitpid(pid, 0)
            except (ProcessLookupError, ChildProcessError):
                pass
        self.children.clear()


def _sigterm_to_exit(signum: int, frame: Any) -> None:
    raise SystemExit(0)
