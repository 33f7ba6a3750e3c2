"""Logging on werkzeug's logger, through werkzeug's own helper.

werkzeug logs through ``werkzeug._internal._log``: on first use it takes the
``"werkzeug"`` logger, sets INFO when no level is set, and adds one coloured
stderr handler when no handler in the chain would print INFO records. fastserve
calls the very same function (looked up at call time), so the handler-adding
check is shared: however many of werkzeug's and fastserve's log lines a process
emits (the debugger logs through werkzeug), only one handler is ever added, and
``logging.getLogger("werkzeug").setLevel(...)`` silences both.

The access log is the hottest log line; :func:`info_enabled` lets the handler
skip building it (date, IRI decoding, colours) when INFO is off.
"""

from __future__ import annotations

import logging
from typing import Any

from werkzeug import _internal as _wz_internal
from werkzeug.serving import _ansi_style

__all__ = ["_ansi_style", "_log", "get_logger", "info_enabled"]


def get_logger() -> logging.Logger:
    """The ``"werkzeug"`` logger, initialised exactly as werkzeug's ``_log`` does."""
    logger = _wz_internal._logger
    if logger is None:
        logger = logging.getLogger("werkzeug")
        if logger.level == logging.NOTSET:
            logger.setLevel(logging.INFO)
        if not _wz_internal._has_level_handler(logger):
            logger.addHandler(_wz_internal._ColorStreamHandler())
        _wz_internal._logger = logger
    return logger


def _log(type: str, message: str, *args: Any) -> None:
    """Log ``message % args`` at level ``type`` ("info", "error", ...) on the
    ``"werkzeug"`` logger (werkzeug's ``_log``)."""
    _wz_internal._log(type, message, *args)


def info_enabled() -> bool:
    """Whether an INFO record (an access log line) would be handled."""
    return get_logger().isEnabledFor(logging.INFO)
