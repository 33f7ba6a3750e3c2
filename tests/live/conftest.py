"""Live servers for the real-client tests.

Every server runs ``serve_live.py`` in a subprocess on 127.0.0.1 (a reserved
ephemeral port) or on a unix socket, with the parser chosen by the ``impl``
fixture: ``c`` (marked ``c_extension``) or ``py`` (``FASTSERVE_NO_EXTENSIONS=1``
in the child's environment). The child reports the parser it loaded and the
fixture checks it, so a missing extension fails the ``c`` leg instead of
silently testing Python twice. Servers are module-scoped: a test module starts
the configurations it needs once per implementation. Test modules mark
themselves ``live`` (``pytestmark``).
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest
from live_helpers import LiveServer


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
    with ExitStack() as stack:

        def start(app: str = "echo", **options: Any) -> LiveServer:
            if options.get("hostname") == "unix":
                options["hostname"] = f"unix://{workdir / f'{app}.sock'}"
            server = LiveServer(app, impl, workdir, **options)
            stack.callback(server.stop)
            return server

        yield start
    shutil.rmtree(workdir, ignore_errors=True)
