"""``processes=N``: pre-forked worker processes.

Each worker accepts on its own ``SO_REUSEPORT`` listener on Linux (the parent
opens and keeps all of them, see :mod:`fastserve._reuseport`), elsewhere and
for an inherited or unix socket on the one listening socket they share.
"""

from __future__ import annotations

import atexit
import os
import signal
import socket
import sys
import threading
import time
import traceback

from . import _reuseport, _signals
from ._contracts import PreforkServer
from ._logging import _log
from ._settings import Settings

__all__ = ["Prefork"]


class Prefork:
    """``processes=N``: N forked workers, each on its listener or the shared socket.

    A worker that exits is replaced by a new one on the same listener (whose
    queue waited in the parent meanwhile).

    Graceful stop (see :mod:`fastserve._signals`): the server's handler records
    the signal; this loop notices it within 0.1 s and sends SIGTERM to every
    worker. Each drains like a non-threaded server: no more accepts, its
    request in flight finishes with ``Connection: close``; a worker with its
    own listener first accepts what is queued there and serves it too, then
    shuts the listener down. A shared socket this process bound is shut down
    here at once; a listener whose worker is gone is shut down here as well.
    The parent waits ``shutdown_timeout`` plus a margin before SIGKILL.
    :meth:`shutdown`, a second Ctrl+C and the reloader's restart end the
    workers at once.

    :param server: the bound server; each worker calls its ``_serve_worker``.
    :param processes: how many workers.
    :param settings: the timeouts and limits (``shutdown_timeout``); by
        default read from ``server`` now.
    """

    def __init__(
        self, server: PreforkServer, processes: int, settings: Settings | None = None
    ) -> None:
        self.server = server
        self.settings = Settings.from_server(server) if settings is None else settings
        self.processes = processes
        #: worker pid -> the index of its listener
        self.children: dict[int, int] = {}
        #: one listener per worker (a SO_REUSEPORT group: the server's socket
        #: first), or None each: every worker accepts on the server's socket
        self.listeners: list[socket.socket | None] = [None] * processes

    def run(self, stop: threading.Event, poll_interval: float) -> None:
        """Fork the workers and keep them running until ``stop`` is set or a
        stop signal arrives (``server._stop_signal``)."""
        server = self.server
        tick = min(poll_interval, 0.1)
        # also when the interpreter exits another way (the reloader's exit 3)
        atexit.register(self._terminate)
        try:
            self._open_listeners()
            while not stop.is_set() and server._stop_signal is None:
                for slot in self._free_slots():
                    if stop.is_set() or server._stop_signal is not None:
                        break
                    self._spawn(slot)
                stop.wait(tick)
                self._reap()
            if server._stop_signal is not None and not stop.is_set():
                self._drain(stop)
        finally:
            atexit.unregister(self._terminate)
            self._terminate()
            self._close_listeners()

    def _open_listeners(self) -> None:
        server = self.server
        if self.processes < 2 or not _reuseport.eligible(server):
            return
        try:
            self.listeners = list(_reuseport.open_listeners(server, self.processes))
        except OSError as e:
            _log("warning", f" * One listening socket per worker failed ({e}); they share one.")

    def _close_listeners(self) -> None:
        for sock in self.listeners:
            if sock is not None and sock is not self.server.socket:
                sock.close()  # the server's own socket: server_close()

    def _free_slots(self) -> list[int]:
        taken = set(self.children.values())
        return [slot for slot in range(self.processes) if slot not in taken]

    def _drain(self, stop: threading.Event) -> None:
        server = self.server
        self._send(signal.SIGTERM)
        if self.listeners[0] is None:
            if server._owns_listener:
                _signals.stop_listening(server.socket)
        deadline = time.monotonic() + self.settings.shutdown_timeout + _signals.KILL_MARGIN
        while True:
            # a listener without its worker: nobody accepts there any more
            self._stop_listening(self._free_slots())
            if not self.children or time.monotonic() >= deadline or stop.is_set():
                break
            time.sleep(0.02)
            self._reap()

    def _stop_listening(self, slots: list[int]) -> None:
        for slot in slots:
            _signals.stop_listening(self.listeners[slot])

    def _spawn(self, slot: int) -> None:
        parent = os.getpid()
        pid = os.fork()
        if pid:
            self.children[pid] = slot
            return
        code = 0
        try:
            # the parent's handlers are not this worker's: its own are
            # installed by _serve_worker
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            signal.signal(signal.SIGINT, signal.default_int_handler)
            listener = self.listeners[slot]
            others = [s for s in self.listeners if s is not None and s is not listener]
            self.server._serve_worker(parent, listener, others)
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
                del self.children[pid]

    def _send(self, signum: int) -> None:
        for pid in list(self.children):
            try:
                os.kill(pid, signum)
            except ProcessLookupError:
                pass

    def _terminate(self) -> None:
        """End the workers left at once (SIGKILL) and reap them."""
        self._send(signal.SIGKILL)
        for pid in self.children:
            try:
                os.waitpid(pid, 0)
            except ChildProcessError:
                pass
        self.children.clear()
