"""Fixtures for the server tests: both parser implementations, one connection
over a socket pair (``drive``), servers in a thread on loopback (``serve``),
captured log records.

Every test here runs twice (``c`` / ``py``): the autouse ``server_parser``
fixture points the connection layer's parser names (``RequestParser``,
``ChunkedDecoder``, ``serialize_response_head``) at one implementation, and
the ``py`` runs serve with the engine's Python loop (no ``DispatchLoop``).
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Callable, Iterator
from types import ModuleType
from typing import Any

import pytest
from conn_driver import Driver
from server_helpers import LogCapture, Running

import fastserve._body
import fastserve._engine
import fastserve._response
import fastserve.connection
from fastserve.server import make_server


@pytest.fixture(
    autouse=True,
    params=[pytest.param("c", marks=pytest.mark.c_extension), "py"],
)
def server_parser(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    """The parser module the connection layer uses in this test."""
    name = "fastserve._parser" if request.param == "c" else "fastserve._parser_py"
    mod = importlib.import_module(name)
    monkeypatch.setattr(fastserve.connection, "RequestParser", mod.RequestParser)
    monkeypatch.setattr(fastserve._body, "ChunkedDecoder", mod.ChunkedDecoder)
    monkeypatch.setattr(fastserve._response, "serialize_response_head", mod.serialize_response_head)
    if request.param == "py":  # the engine's Python loop too, not its compiled twin
        monkeypatch.setattr(fastserve._engine, "_DispatchLoop", None)
    return mod


@pytest.fixture
def serve() -> Iterator[Callable[..., Running]]:
    """``serve(app, threaded=True, handler=None, **class_attrs)`` -> :class:`Running`.

    ``class_attrs`` become class attributes of a throwaway server subclass
    (timeouts, limits), as users would set them.
    """
    running: list[Running] = []

    def start(
        app: Any,
        threaded: bool = True,
        handler: type | None = None,
        passthrough_errors: bool = False,
        **class_attrs: Any,
    ) -> Running:
        srv = make_server(
            "127.0.0.1",
            0,
            app,
            threaded=threaded,
            request_handler=handler,
            passthrough_errors=passthrough_errors,
        )
        if class_attrs:
            srv.__class__ = type("TestServer", (type(srv),), class_attrs)
        r = Running(srv)
        running.append(r)
        return r

    yield start
    for r in running:
        r.stop()


@pytest.fixture
def drive() -> Iterator[Callable[..., Driver]]:
    """``drive(app, threaded=True, handler=None, sndbuf=None, **limits)`` ->
    :class:`conn_driver.Driver`: one connection over a socket pair, no listener."""
    drivers: list[Driver] = []

    def start(app: Any, **kwargs: Any) -> Driver:
        driver = Driver(app, **kwargs)
        drivers.append(driver)
        return driver

    yield start
    for driver in drivers:
        driver.close()


@pytest.fixture
def logs() -> Iterator[LogCapture]:
    logger = logging.getLogger("werkzeug")
    handler = LogCapture()
    old_level = logger.level
    logger.setLevel(logging.INFO)
    logger.addHandler(handler)
    yield handler
    logger.removeHandler(handler)
    logger.setLevel(old_level)
