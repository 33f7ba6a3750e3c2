"""Live servers for the real-client tests.

Every server runs ``serve_live.py`` in a subprocess on 127.0.0.1 (a reserved
ephemeral port) or on a unix socket, with the parser chosen by the ``impl``
fixture: ``c`` (marked ``c_extension``) or ``py`` (``FASTSERVE_NO_EXTENSIONS=1``
in the child's environment). The child reports the parser it loaded and the
fixture checks it, so a missing extension fails the ``c`` leg instead of
silently testing Python twice. Servers are module-scoped: a test module starts
the configurations it needs once per implementation (``server_on`` shares one
server per configuration within the module). Test modules mark themselves
``live`` (``pytestmark``).

``in_process_server`` runs ``make_server`` in a thread of the test process
instead, with the parser chosen through ``parser_impl``: the server modules'
parser names are pointed at ``fastserve._parser`` or ``fastserve._parser_py``
and their use is counted (``parser_used``), so a refactor that moves those
names fails loudly instead of silently testing one implementation twice.
"""

from __future__ import annotations

import importlib
import itertools
import json
import shutil
import tempfile
import threading
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from live_helpers import PARSER_NAMES, LiveServer, serve_in_thread

from fastserve import serving


@pytest.fixture(
    scope="session",
    params=[pytest.param("c", marks=pytest.mark.c_extension), "py"],
)
def impl(request: pytest.FixtureRequest) -> str:
    """The parser implementation the server subprocesses use."""
    return str(request.param)


@pytest.fixture(scope="module")
def start_server(impl: str) -> Iterator[Callable[..., LiveServer]]:
    """Start ``LiveServer(app, **options)`` instances; all are stopped at module end."""
    workdir = Path(tempfile.mkdtemp(prefix="fs-live-"))  # short: unix socket paths live here
    serial = itertools.count()
    with ExitStack() as stack:

        def start(app: str = "echo", **options: Any) -> LiveServer:
            if options.get("hostname") == "unix":  # a path of its own: several may run
                options["hostname"] = f"unix://{workdir / f'{app}-{next(serial)}.sock'}"
            server = LiveServer(app, impl, workdir, **options)
            stack.callback(server.stop)
            return server

        yield start
    shutil.rmtree(workdir, ignore_errors=True)


@pytest.fixture(scope="module")
def server_on(start_server: Callable[..., LiveServer]) -> Callable[..., LiveServer]:
    """``server_on(app, **options)``: one server per configuration, shared by the module."""
    servers: dict[str, LiveServer] = {}

    def get(app: str = "echo", **options: Any) -> LiveServer:
        key = json.dumps([app, options], sort_keys=True)
        if key not in servers:
            servers[key] = start_server(app, **options)
        return servers[key]

    return get


@pytest.fixture
def parser_used(parser_impl: ModuleType, monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """Route the server's parser calls to ``parser_impl``; yields the names that were called."""
    used: list[str] = []
    for module_name, name in PARSER_NAMES.items():
        module = importlib.import_module(module_name)
        assert hasattr(module, name), f"{module_name}.{name} moved: update PARSER_NAMES"
        target = getattr(parser_impl, name)

        def counting(*args: Any, _target: Any = target, _name: str = name, **kw: Any) -> Any:
            used.append(_name)
            return _target(*args, **kw)

        monkeypatch.setattr(module, name, counting)
    yield used


@pytest.fixture
def in_process_server(
    parser_used: list[str],
) -> Iterator[Callable[[serving.BaseWSGIServer], serving.BaseWSGIServer]]:
    """Serve a server in a thread; shut down and closed (and the thread joined) at teardown."""
    started: list[tuple[serving.BaseWSGIServer, threading.Thread]] = []

    def run(server: serving.BaseWSGIServer) -> serving.BaseWSGIServer:
        started.append((server, serve_in_thread(server)))
        return server

    yield run
    for server, thread in started:
        server.shutdown()
        server.server_close()
        thread.join(10)
        assert not thread.is_alive()
