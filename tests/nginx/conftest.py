"""Fixtures of the nginx tests: the nginx binary, scratch directories, started processes.

The tests need Debian's nginx (``.ci/run`` installs ``nginx-light`` when it is
missing); without one they are skipped, saying so. Each test module starts the
processes it needs through :func:`start` and they are stopped when the module (or
the test, for function-scoped uses) ends, also on failure. The fastserve side runs
the parser implementation of the ``parser_impl`` axis (``c`` / ``py``): the server
subprocess loads it and the offline framing checks use the same module.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from nginx_helpers import Fastserve, Nginx, Recorder, find_nginx


@pytest.fixture(scope="session")
def nginx_binary() -> str:
    binary = find_nginx()
    if binary is None:
        pytest.skip(
            "nginx is not installed and could not be: .ci/run installs Debian's nginx-light "
            "(apt-get install nginx-light)"
        )
    return binary


@pytest.fixture(scope="session")
def server_impl(parser_impl: ModuleType) -> str:
    """``c`` or ``py``: the parser the fastserve subprocesses load (as ``parser_impl``)."""
    return "c" if parser_impl.__name__ == "fastserve._parser" else "py"


class Processes:
    """Starts fastserve instances, recorders and nginx in a short scratch directory."""

    def __init__(self, stack: ExitStack, nginx_binary: str, impl: str) -> None:
        # Short: unix socket paths live here (at most 107 bytes).
        self.workdir = Path(tempfile.mkdtemp(prefix="fs-ngx-"))
        stack.callback(shutil.rmtree, self.workdir, ignore_errors=True)
        self._stack, self._binary, self.impl = stack, nginx_binary, impl
        self._count = 0

    def _next(self, name: str) -> str:
        self._count += 1
        return f"{name}{self._count}"

    def fastserve(self, unix: bool = False) -> Fastserve:
        name = self._next("fs")
        server = Fastserve(
            self.workdir, self.impl, name, unix=self.workdir / f"{name}.sock" if unix else None
        )
        self._stack.callback(server.stop)
        return server

    def recorder(self, upstream: Fastserve) -> Recorder:
        recorder = Recorder(upstream.connect)
        self._stack.callback(recorder.close)
        return recorder

    def nginx(self, *upstreams: Any) -> Nginx:
        """nginx with a ``server`` line per upstream (:class:`Fastserve`, :class:`Recorder`)."""
        workdir = self.workdir / self._next("nginx")
        proxy = Nginx(self._binary, workdir, [upstream.upstream for upstream in upstreams])
        self._stack.callback(proxy.stop)
        return proxy


def _processes(nginx_binary: str, server_impl: str) -> Iterator[Processes]:
    with ExitStack() as stack:
        yield Processes(stack, nginx_binary, server_impl)


@pytest.fixture(scope="module")
def module_processes(nginx_binary: str, server_impl: str) -> Iterator[Processes]:
    """Processes shared by a test module (per parser implementation)."""
    yield from _processes(nginx_binary, server_impl)


@pytest.fixture
def processes(nginx_binary: str, server_impl: str) -> Iterator[Processes]:
    """Processes of one test, stopped when it ends."""
    yield from _processes(nginx_binary, server_impl)
