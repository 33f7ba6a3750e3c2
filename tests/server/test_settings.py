"""Timeouts and limits: server attributes, read into one Settings when serving starts."""

from __future__ import annotations

import dataclasses
import time

import pytest
from server_helpers import Reader, Running, hello_app, recv_all

from fastserve._settings import DEFAULTS, Settings
from fastserve.server import BaseWSGIServer, ThreadedWSGIServer, make_server


def _server() -> BaseWSGIServer:
    return make_server("127.0.0.1", 0, hello_app, threaded=True)


def test_settings_take_every_limit_from_the_server() -> None:
    srv = _server()
    try:
        srv.preread_limit = 123
        settings = Settings.from_server(srv)
    finally:
        srv.server_close()
    assert settings.preread_limit == 123
    for field in dataclasses.fields(Settings):
        assert getattr(settings, field.name) == getattr(srv, field.name), field.name


def test_server_defaults_are_the_settings_defaults() -> None:
    assert Settings.from_server(BaseWSGIServer) == DEFAULTS == Settings()


def test_a_stand_in_server_may_name_only_some_limits() -> None:
    class StandIn:
        body_timeout = 0.5

    settings = Settings.from_server(StandIn())
    assert settings.body_timeout == 0.5
    assert settings.keep_alive_timeout == DEFAULTS.keep_alive_timeout


def test_settings_are_frozen() -> None:
    srv = _server()
    try:
        settings = Settings.from_server(srv)
    finally:
        srv.server_close()
    with pytest.raises(dataclasses.FrozenInstanceError):
        settings.body_timeout = 1.0  # type: ignore[misc]
    assert not hasattr(settings, "__dict__")


def _assert_partial_head_gets_408_soon(srv: Running) -> None:
    started = time.monotonic()
    with srv.connect() as s:
        s.sendall(b"GET / HTTP/1.1\r\nHost")
        data = recv_all(s, timeout=5)
    assert data.startswith(b"HTTP/1.1 408 ")
    assert time.monotonic() - started < 3.0  # 0.3 s plus the once-a-second sweep


def test_instance_attribute_assigned_before_serve_forever_applies() -> None:
    srv = _server()
    srv.request_head_timeout = 0.3
    running = Running(srv)
    try:
        _assert_partial_head_gets_408_soon(running)
    finally:
        running.stop()


def test_class_attribute_assigned_before_serve_forever_applies(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    srv = _server()
    monkeypatch.setattr(ThreadedWSGIServer, "request_head_timeout", 0.3)
    running = Running(srv)
    try:
        _assert_partial_head_gets_408_soon(running)
    finally:
        running.stop()


def test_attribute_assigned_while_serving_waits_for_the_next_run() -> None:
    srv = _server()
    running = Running(srv)
    try:
        with running.connect() as s:  # serving: the engine exists
            s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            assert Reader(s).response().status == 200
        engine = srv._engine
        assert engine is not None
        srv.keep_alive_timeout = 0.01
        assert engine.settings.keep_alive_timeout == BaseWSGIServer.keep_alive_timeout
        with running.connect() as s:
            s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            assert Reader(s).response().status == 200
            time.sleep(2.5)  # two sweeps with the new value would have closed it
            s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            assert Reader(s).response().status == 200
    finally:
        running.stop()
