"""Leader/follower threads around the engine (threaded servers).

One thread at a time - the *leader* - waits in the poller. When a socket
becomes readable the leader serves that connection itself, inline: no hand-off
to another thread, no queue, no wake-up per request. While every request is
quick the leader is the only thread that runs, which is what makes keep-alive
fast under the GIL. A slow *peer* never holds a thread: the connection parks in
the poller until its bytes arrive or its socket drains (see
:mod:`fastserve._engine`). Only a slow *application* does, and for that:

The thread that called ``serve_forever`` is the *monitor*. Every
``promote_after`` seconds it looks at the current leader's
:class:`~fastserve._engine.Lease`: when the leader has been inside the same
dispatch for a whole tick (a slow app, a long poll, a stream, a websocket that
took over ``werkzeug.socket``), it *promotes* a follower - an idle thread, or a
new one - to leader. The busy thread finishes its request, parks its connection
and becomes a follower itself. One long request therefore costs exactly one
extra thread, whatever its duration: the new leader's lease is not busy, so the
monitor has nothing to promote until *that* lease gets stuck. Followers idle
for ``idle_thread_timeout`` exit.

At most ``max_threads`` threads serve requests; one more may lead when all of
them are busy, and that leader only polls: ready connections wait in the
engine's FIFO until a serving thread finishes (the engine logs that, at most
once a minute). Application code never runs in the monitor thread, so Ctrl+C
(``KeyboardInterrupt`` in the main thread) always reaches it promptly.

Why leader/followers and not a poller thread plus a pool: a hand-off per
request costs a few microseconds of wake-up and GIL transfer, which is most of
a hello-world request here; promotion hands off only the slow ones.
"""

from __future__ import annotations

import threading
import time
from typing import TYPE_CHECKING, Any

from ._engine import Lease

if TYPE_CHECKING:
    from ._engine import Engine

__all__ = ["LeaderFollowers"]


class LeaderFollowers:
    """Leader/follower threads for one :class:`~fastserve._engine.Engine`.

    :param engine: the engine whose poller the leader waits in.
    :param max_threads: most threads serving requests at once.
    :param promote_after: seconds a leader may spend in one dispatch before a
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
        engine.max_serving = self.max_threads
        self.promote_after = promote_after
        self.idle_thread_timeout = idle_thread_timeout
        self.lock = engine.lock
        self._sem = threading.Semaphore(0)
        self.threads = 0
        self.idle = 0
        self._threads: list[threading.Thread] = []
        # what the last tick saw: the leader's lease and its dispatch count
        self._seen: Any = None
        self._seen_dispatches = -1

    def run(self, stop: threading.Event) -> None:
        """Start the first leader and monitor until ``stop`` is set."""
        with self.lock:
            self._spawn()
        busy_tick = self.promote_after
        idle_tick = max(busy_tick, 0.05)
        quiet = 0
        sleep = time.sleep  # cheaper than Event.wait: one C call per tick
        while not stop.is_set():
            sleep(busy_tick if quiet < 100 else idle_tick)
            quiet = 0 if self.tick() else quiet + 1

    def tick(self) -> bool:
        """One look at the leader: promote a follower when the leader's lease
        has been busy in the same dispatch since the previous tick.

        :return: whether the leader did anything since the previous tick.
        """
        lease = self.engine.lease
        if lease is None:
            self._seen = None
            return True
        dispatches = lease.dispatches
        stuck = lease.busy and lease is self._seen and dispatches == self._seen_dispatches
        active = lease is not self._seen or dispatches != self._seen_dispatches
        self._seen = lease
        self._seen_dispatches = dispatches
        if stuck:
            self._promote(lease, dispatches)
        return active

    def _spawn(self) -> None:
        # called with the lock held
        self.threads += 1
        t = threading.Thread(target=self._thread_main, name="fastserve-worker", daemon=True)
        self._threads = [x for x in self._threads if x.is_alive()]
        self._threads.append(t)
        t.start()

    def _promote(self, lease: Lease, dispatches: int) -> None:
        engine = self.engine
        with self.lock:
            if (
                engine.lease is not lease
                or not lease.busy
                or lease.dispatches != dispatches
                or engine.stopping
            ):
                return  # the leader moved on meanwhile
            if self.idle > 0:
                self.idle -= 1
                self._sem.release()
            elif self.threads <= self.max_threads:
                # max_threads serve; one more may lead (it only polls then)
                self._spawn()
            else:
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
                lease = Lease()
                with self.lock:
                    engine.lease = lease
                try:
                    engine.lead(lease)
                except BaseException:
                    # passthrough_errors: this thread dies with the error (as
                    # werkzeug's worker thread does); another one leads
                    with self.lock:
                        if not engine.stopping and engine.lease is lease:
                            engine.lease = None
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
