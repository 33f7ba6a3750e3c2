"""Threads and processes around the engine: leader/follower threads, pre-fork workers.

Threaded servers (:class:`LeaderFollowers`)
    One thread at a time - the *leader* - waits in the poller. When a socket
    becomes readable the leader serves that connection itself, inline: no
    hand-off to another thread, no queue, no wake-up per request. While every
    request is quick the leader is the only thread that runs, which is what
    makes keep-alive fast under the GIL.

    The thread that called ``serve_forever`` is the *monitor*. Every
    ``promote_after`` seconds it looks at the leader: when the leader has
    been inside the same request for a whole tick (a slow app, a long poll, a
    stream, a websocket that took over ``werkzeug.socket``), it *promotes* a
    follower - an idle thread, or a new one below ``max_threads`` - to leader.
    The busy thread finishes its request and then parks its connection in the
    poller and becomes a follower itself. So a slow request never blocks the
    others, and idle keep-alive connections cost no thread at all: they sit in
    the poller. Followers idle for ``idle_thread_timeout`` exit. Reaching
    ``max_threads`` is logged once; the leader then keeps serving inline.

    Application code never runs in the monitor thread, so Ctrl+C
    (``KeyboardInterrupt`` in the main thread) always reaches it promptly.

``processes=N`` (:class:`Prefork`)
    The parent forks N workers that share the listening socket; each runs the
    engine single-threaded (``wsgi.multiprocess``). The parent only restarts
    workers that die, and on shutdown, ``KeyboardInterrupt`` or SIGTERM sends
    SIGTERM to every worker, waits for them, and kills stragglers. A worker
    whose parent disappeared (even by SIGKILL) notices within a second and
    exits.
"""

from __future__ import annotations

import threading
import time
from typing import TYPE_CHECKING

from ._logging import _log

if TYPE_CHECKING:
    from ._engine import Engine

__all__ = ["LeaderFollowers"]


class LeaderFollowers:
    """Leader/follower threads for one :class:`~fastserve.server.Engine`.

    :param engine: the engine whose poller the leader waits in.
    :param max_threads: most threads serving at once.
    :param promote_after: seconds a leader may spend in one request before a
        follower takes over the poller.
    :param idle_thread_timeout: a follower idle this long exits.
    """

    def __init__(
        self,
        engine: Engine,
        max_threads: int,
        promote_after: float,
        idle_thread_timeout: float = 60.0,
    ) -> None:
        self.engine = engine
        self.max_threads = max(1, max_threads)
        self.promote_after = promote_after
        self.idle_thread_timeout = idle_thread_timeout
        self.lock = engine.lock
        self._sem = threading.Semaphore(0)
        self.threads = 0
        self.idle = 0
        self._warned = False
        self._threads: list[threading.Thread] = []

    def run(self, stop: threading.Event) -> None:
        """Start the first leader and monitor until ``stop`` is set."""
        with self.lock:
            self._spawn()
        engine = self.engine
        busy_tick = self.promote_after
        idle_tick = max(busy_tick, 0.05)
        last = -1
        quiet = 0
        sleep = time.sleep  # cheaper than Event.wait: one C call per tick
        while not stop.is_set():
            sleep(busy_tick if quiet < 100 else idle_tick)
            gen = engine.gen
            if engine.busy and gen == last:
                self._promote(gen)
            quiet = quiet + 1 if gen == last else 0
            last = gen

    def _spawn(self) -> None:
        # called with the lock held
        self.threads += 1
        t = threading.Thread(target=self._thread_main, name="fastserve-worker", daemon=True)
        self._threads = [x for x in self._threads if x.is_alive()]
        self._threads.append(t)
        t.start()

    def _promote(self, gen: int) -> None:
        engine = self.engine
        with self.lock:
            if not engine.busy or engine.gen != gen or engine.stopping:
                return
            if self.idle > 0:
                self.idle -= 1
                self._sem.release()
            elif self.threads < self.max_threads:
                self._spawn()
            else:
                if not self._warned:
                    self._warned = True
                    _log(
                        "warning",
                        f" * All {self.max_threads} server threads are busy; new requests"
                        " wait until one is free.",
                    )
                return
            engine.demote()

    def _follow(self) -> bool:
        """Wait to become the leader; False when this thread should exit."""
        with self.lock:
            self.idle += 1
        while True:
            if self._sem.acquire(timeout=self.idle_thread_timeout):
                return not self.engine.stopping
            with self.lock:
                if self._sem.acquire(blocking=False):
                    return not self.engine.stopping
                if self.engine.stopping or self.threads > 1:
                    self.idle -= 1
                    return False

    def _thread_main(self) -> None:
        engine = self.engine
        lead = True
        try:
            while not engine.stopping:
                if not lead and not self._follow():
                    return
                lead = False
                with self.lock:
                    token = engine.leader_token
                try:
                    engine.lead(token)
                except BaseException:
                    # passthrough_errors: this thread dies with the error (as
                    # werkzeug's worker thread does); another one leads
                    with self.lock:
                        if not engine.stopping and engine.leader_token == token:
                            engine.leader_token += 1
                            self._spawn()
                    raise
        finally:
            with self.lock:
                self.threads -= 1

    def stop(self, timeout: float = 1.0) -> None:
        """Release the followers and wait briefly for idle threads to leave."""
        with self.lock:
            for _ in range(self.idle):
                self._sem.release()
            self.idle = 0
        deadline = time.monotonic() + timeout
        for t in self._threads:
            if t is not threading.current_thread():
                t.join(max(0.0, deadline - time.monotonic()))
