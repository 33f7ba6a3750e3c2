"""Fixtures of the nginx tests: the nginx binary, scratch directories, started processes.

The tests need Debian's nginx (``.ci/run`` installs ``nginx-light`` when it is
missing); without one they are skipped, saying so. A test starts the processes it
needs through :class:`~nginx_helpers.Processes` - ``module_processes`` (shared by a
module) or ``processes`` (its own) - and they are stopped when the module or the
test ends, also on failure. The fastserve side runs
the parser implementation of the ``parser_impl`` axis (``c`` / ``py``): the server
subprocess loads it and the offline framing checks use the same module.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack
from types import ModuleType

import pytest
from nginx_helpers import Processes, find_nginx


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
