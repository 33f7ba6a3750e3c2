"""The private werkzeug names fastserve relies on are where, and what, it expects.

They are all imported by ``fastserve._werkzeug_private`` (its docstring says
why each is needed). A werkzeug release that moves, renames or reshapes one
fails here, loudly and by name, instead of breaking the log output of a user's
server; and no other module may import a private werkzeug name, so the list
stays complete.
"""

from __future__ import annotations

import ast
import inspect
import logging
from pathlib import Path

import werkzeug
import werkzeug._internal
import werkzeug.serving

import fastserve
from fastserve import _werkzeug_private


def test_internal_is_werkzeugs_internal_module() -> None:
    assert _werkzeug_private.internal is werkzeug._internal


def test_log_takes_a_level_name_a_message_and_args() -> None:
    params = inspect.signature(werkzeug._internal._log).parameters
    assert list(params)[:2] == ["type", "message"]
    assert any(p.kind is inspect.Parameter.VAR_POSITIONAL for p in params.values())


def test_logger_is_a_module_global_holding_none_or_the_werkzeug_logger() -> None:
    assert "_logger" in vars(werkzeug._internal)
    logger = werkzeug._internal._logger
    assert logger is None or logger is logging.getLogger("werkzeug")


def test_log_initialises_logger_as_fastserve_get_logger_expects(monkeypatch) -> None:
    # fastserve's get_logger() repeats _log's first-use steps; they must still be these.
    logger = logging.getLogger("werkzeug")
    monkeypatch.setattr(werkzeug._internal, "_logger", None)
    monkeypatch.setattr(logger, "handlers", [])
    monkeypatch.setattr(logger, "propagate", False)
    level = logger.level
    logger.setLevel(logging.NOTSET)
    try:
        werkzeug._internal._log("debug", "not shown")
        assert werkzeug._internal._logger is logger
        assert logger.level == logging.INFO
        assert [type(h) for h in logger.handlers] == [werkzeug._internal._ColorStreamHandler]
    finally:
        logger.setLevel(level)  # setLevel, not an assignment: it clears the level cache


def test_has_level_handler_and_color_stream_handler() -> None:
    params = inspect.signature(werkzeug._internal._has_level_handler).parameters
    assert list(params) == ["logger"]
    lonely = logging.Logger("fastserve-test-lonely")
    assert werkzeug._internal._has_level_handler(lonely) is False
    assert issubclass(werkzeug._internal._ColorStreamHandler, logging.StreamHandler)
    assert inspect.signature(werkzeug._internal._ColorStreamHandler).parameters == {}


def test_ansi_style_is_werkzeugs() -> None:
    assert _werkzeug_private.ansi_style is werkzeug.serving._ansi_style
    params = list(inspect.signature(werkzeug.serving._ansi_style).parameters.values())
    assert [p.name for p in params] == ["value", "styles"]
    assert params[1].kind is inspect.Parameter.VAR_POSITIONAL
    assert "_log_add_style" in vars(werkzeug.serving)
    styled = werkzeug.serving._ansi_style("x", "bold", "red")
    assert styled in ("x", "\x1b[31m\x1b[1mx\x1b[0m")


def test_control_char_table_escapes_controls_and_backslash() -> None:
    table = werkzeug.serving.WSGIRequestHandler._control_char_table
    assert _werkzeug_private.control_char_table is table
    assert isinstance(table, dict)
    assert "a\x1b\\\x7f".translate(table) == "a\\x1b\\\\\\x7f"


def test_no_other_module_imports_a_private_werkzeug_name() -> None:
    package = Path(fastserve.__file__).parent
    offenders = []
    for path in sorted(package.rglob("*.py")):
        if path.name == "_werkzeug_private.py":
            continue
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                modules = [a.name for a in node.names]
                names: list[str] = []
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                modules = [node.module]
                names = [a.name for a in node.names]
            else:
                continue
            for module in modules:
                parts = module.split(".")
                if parts[0] != "werkzeug":
                    continue
                private = [p for p in parts[1:] if p.startswith("_")]
                private += [n for n in names if n.startswith("_")]
                if private:
                    offenders.append(f"{path.relative_to(package)}:{node.lineno}: {private}")
    assert not offenders, offenders
