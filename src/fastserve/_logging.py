"""Logging on werkzeug's logger, through werkzeug's own helper.

werkzeug logs through ``werkzeug._internal._log``: on first use it takes the
``"werkzeug"`` logger, sets INFO when no level is set, and adds one coloured
stderr handler when no handler in the chain would print INFO records (this and
the other private werkzeug names come from :mod:`fastserve._werkzeug_private`). fastserve
calls the very same function (looked up at call time), so the handler-adding
check is shared: however many of werkzeug's and fastserve's log lines a process
emits (the debugger logs through werkzeug), only one handler is ever added, and
``logging.getLogger("werkzeug").setLevel(...)`` silences both.

The access log is the hottest log line; :func:`info_enabled` lets the handler
skip building it (date, IRI decoding, colours) when INFO is off, and
:func:`log_access` builds it cheaply when it is on. werkzeug's
``log_request`` costs about a third of a keep-alive request: ``uri_to_iri``
(``urlsplit``, partial unquoting, ``urlunsplit``), ``time.localtime`` and
%-formatting of the date, two format passes and a ``translate``. The fast path
emits the very same record (logger, level, ``msg`` template, ``args``, and the
caller werkzeug's ``_log``, so ``%(pathname)s``/``%(funcName)s`` match) with
less work:

* the date ``dd/Mon/YYYY HH:MM:SS`` is formatted once per second (werkzeug's
  comes from ``BaseHTTPRequestHandler.log_date_time_string``, which reads
  ``time.localtime`` of the current whole second, so the cached string is equal);
* ``uri_to_iri`` and the control-character ``translate`` are skipped when the
  request line is plain (:data:`_plain_request`: printable ASCII, no ``%``,
  ``#`` or ``\\``, an origin-form target not starting ``//`` and not ending
  ``?``), for which both are the identity (tests/server/test_access_log.py
  checks that against werkzeug's own functions);
* the colour is chosen with werkzeug's rules (repeated here: the one piece of
  its ``log_request`` that cannot be reused as is) and applied with its
  ``_ansi_style``, so its colour switch (``_log_add_style``) still applies.

Anything else (a handler class overriding ``log``, the date hooks or the
control-character table, a request line that needs IRI decoding or escaping,
a refused request without ``path``) takes werkzeug's ``log_request`` unchanged.
"""

from __future__ import annotations

import logging
import re
import time
from http.server import BaseHTTPRequestHandler
from typing import Any

from werkzeug.serving import WSGIRequestHandler as _WzHandler

from ._werkzeug_private import ansi_style as _ansi_style
from ._werkzeug_private import control_char_table as _control_char_table
from ._werkzeug_private import internal as _wz_internal

__all__ = [
    "_ansi_style",
    "_log",
    "fast_access_log",
    "get_logger",
    "info_enabled",
    "log_access",
    "log_date_time_string",
]


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


# -- the access line's fast path ---------------------------------------------------

_MONTHS = BaseHTTPRequestHandler.monthname
#: (whole second, its date string): replaced as a whole, so threads never see a mix
_date_cache: tuple[int, str] = (-1, "")


def log_date_time_string() -> str:
    """``BaseHTTPRequestHandler.log_date_time_string()`` (local time, English
    month), formatted at most once per second."""
    global _date_cache
    now = int(time.time())  # localtime() of a float also drops the fraction
    cached = _date_cache
    if cached[0] == now:
        return cached[1]
    year, month, day, hh, mm, ss = time.localtime(now)[:6]
    text = f"{day:02d}/{_MONTHS[month]:>3}/{year:04d} {hh:02d}:{mm:02d}:{ss:02d}"
    _date_cache = (now, text)
    return text


#: ``"<method> <target> <version>"`` for which werkzeug's ``uri_to_iri(target)``
#: and its control-character escaping change nothing: three space-free fields of
#: printable ASCII without ``\`` (werkzeug escapes it as ``\\``); the target in origin
#: form (RFC 9112 section 3.2.1), not ``//`` (``urlsplit`` would read a netloc),
#: without ``%`` (decoded), ``#`` (a fragment) or a final ``?`` (``urlunsplit``
#: drops an empty query).
_plain_request = re.compile(r"[!-\[\]-~]+ (?!//)/[!\"$&-\[\]-~]*(?<!\?) [!-\[\]-~]+").fullmatch


def fast_access_log(cls: type) -> bool:
    """Whether :func:`log_access` may stand in for werkzeug's ``log_request``
    on instances of the handler class ``cls`` (none of the hooks it inlines is
    overridden; ``address_string`` is called, so it may be)."""
    return (
        cls.log is _WzHandler.log  # type: ignore[attr-defined]
        and cls.log_date_time_string is BaseHTTPRequestHandler.log_date_time_string  # type: ignore[attr-defined]
        and cls.monthname is _MONTHS  # type: ignore[attr-defined]
        and cls._control_char_table is _control_char_table  # type: ignore[attr-defined]
    )


def log_access(handler: Any, code: int | str, size: int | str) -> bool:
    """werkzeug's ``log_request(code, size)`` for ``handler`` (whose class passed
    :func:`fast_access_log`), when it can be done cheaply.

    :param handler: the request handler, with ``command``, ``path`` and
        ``request_version`` of the current request set.
    :param code: the status code.
    :param size: the response size (werkzeug always logs ``"-"``).
    :return: ``False`` when the caller must run werkzeug's ``log_request``
        (nothing was logged); ``True`` when the line was logged or INFO is off.
    """
    logger = _wz_internal._logger or get_logger()
    if not logger.isEnabledFor(logging.INFO):
        return True
    try:
        path = handler.path
        msg = f"{handler.command} {path} {handler.request_version}"
    except AttributeError:  # a refused request: werkzeug logs ``requestline``
        return False
    if type(path) is not str or _plain_request(msg) is None:
        return False
    code = str(code)
    if code != "200":
        # werkzeug's colour rules (serving.WSGIRequestHandler.log_request)
        first = code[:1]
        if not first:
            return False  # werkzeug's own path fails the same way
        if first == "1":
            msg = _ansi_style(msg, "bold")
        elif code == "304":
            msg = _ansi_style(msg, "cyan")
        elif first == "3":
            msg = _ansi_style(msg, "green")
        elif code == "404":
            msg = _ansi_style(msg, "yellow")
        elif first == "4":
            msg = _ansi_style(msg, "bold", "red")
        else:
            msg = _ansi_style(msg, "bold", "magenta")
    # an IPv6 scoped address contains "%": doubled, as werkzeug's ``log`` does
    address = handler.address_string().replace("%", "%%")
    _wz_internal._log(
        "info", f'{address} - - [{log_date_time_string()}] "%s" %s %s', msg, code, size
    )
    return True
