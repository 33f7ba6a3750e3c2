"""The engine's lock: the compiled ``EngineLock`` behaves as ``threading.Lock``
(its pure-Python twin) for everything the engine and the workers do with it."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from types import ModuleType
from typing import Any

import pytest

import fastserve._state


@pytest.fixture
def make_lock(server_parser: ModuleType) -> Callable[[], Any]:
    """``threading.Lock`` for the ``py`` runs, the compiled ``EngineLock`` for ``c``."""
    if server_parser.__name__ == "fastserve._parser":
        return server_parser.EngineLock  # type: ignore[no-any-return]
    return threading.Lock


def test_the_twin_is_threading_lock_and_the_engine_uses_the_built_one() -> None:
    from fastserve._engine import Engine  # noqa: F401 - the import the engine makes
    from fastserve.parser import PARSER_IMPL

    if PARSER_IMPL == "c":
        from fastserve import _parser

        assert fastserve._state.EngineLock is _parser.EngineLock
    else:
        assert fastserve._state.EngineLock is threading.Lock


def test_acquire_release_and_with(make_lock: Callable[[], Any]) -> None:
    lock = make_lock()
    assert not lock.locked()
    assert lock.acquire() is True
    assert lock.locked()
    assert lock.acquire(False) is False  # not reentrant
    assert lock.acquire(timeout=0.01) is False
    lock.release()
    assert not lock.locked()
    with lock:
        assert lock.locked()
    assert not lock.locked()


def test_release_of_an_unlocked_lock_raises(make_lock: Callable[[], Any]) -> None:
    lock = make_lock()
    with pytest.raises(RuntimeError):
        lock.release()


def test_argument_errors_match(make_lock: Callable[[], Any]) -> None:
    lock = make_lock()
    with pytest.raises(ValueError):
        lock.acquire(False, 1.0)
    with pytest.raises(ValueError):
        lock.acquire(True, -2.0)
    assert not lock.locked()


def test_a_waiting_thread_gets_it_once_released(make_lock: Callable[[], Any]) -> None:
    lock = make_lock()
    got: list[float] = []
    lock.acquire()

    def waiter() -> None:
        with lock:  # blocks (without the GIL) until the main thread releases
            got.append(time.monotonic())

    t = threading.Thread(target=waiter)
    t.start()
    time.sleep(0.05)
    assert got == []  # still waiting: the main thread holds it
    released = time.monotonic()
    lock.release()
    t.join(5)
    assert not t.is_alive()
    assert len(got) == 1 and got[0] >= released
    assert not lock.locked()


def test_a_timed_acquire_waits_then_gives_up(make_lock: Callable[[], Any]) -> None:
    lock = make_lock()
    lock.acquire()
    result: list[bool] = []
    t = threading.Thread(target=lambda: result.append(lock.acquire(timeout=0.05)))
    started = time.monotonic()
    t.start()
    t.join(5)
    assert result == [False]
    assert time.monotonic() - started >= 0.04
    lock.release()


def test_mutual_exclusion_under_contention(make_lock: Callable[[], Any]) -> None:
    lock = make_lock()
    counter = [0]

    def work() -> None:
        for _ in range(2000):
            with lock:
                value = counter[0]
                time.sleep(0)  # invite a switch inside the critical section
                counter[0] = value + 1

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert counter[0] == 8000
