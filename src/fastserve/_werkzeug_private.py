"""Every private werkzeug name fastserve uses, in one place.

fastserve promises werkzeug's log output byte for byte and shares werkzeug's
logging state, which werkzeug keeps in private names. Each is imported here
and nowhere else, so a werkzeug release that moves one breaks this module's
import (and ``tests/compat/test_werkzeug_private.py``, which also checks each
name's kind and signature), not a request at run time. There is deliberately
no upper bound on werkzeug in the dependencies: that would block users'
Flask upgrades; the test is the alarm instead.

- :data:`internal` is the module ``werkzeug._internal``, read at call time
  because its ``_logger`` is reassigned:

  - ``_log(type, message, *args)``: werkzeug's logging helper. On first use it
    initialises the ``"werkzeug"`` logger (INFO when unset, one coloured stderr
    handler when none would print INFO). fastserve logs through it so that
    only one handler is ever added, whoever logs first (the debugger logs
    through werkzeug), and the records' caller is the same as werkzeug's;
  - ``_logger``: that logger once initialised (``None`` before). Read per
    response to skip building a disabled access line, and assigned by
    :func:`fastserve._logging.get_logger`, which initialises the logger
    exactly as ``_log`` does without emitting a record;
  - ``_has_level_handler(logger)`` and ``_ColorStreamHandler()``: the two
    steps of that initialisation.

- :func:`ansi_style` (``werkzeug.serving._ansi_style``): colours the banner
  and the access line exactly as werkzeug does, honouring its switch
  (``_log_add_style``, off on Windows without colorama).
- :data:`control_char_table` (``werkzeug.serving.WSGIRequestHandler.
  _control_char_table``): the access line's control-character escaping; a
  handler class that replaced it does not get the fast access-log path.
"""

from __future__ import annotations

from werkzeug import _internal as internal
from werkzeug.serving import WSGIRequestHandler as _WerkzeugHandler
from werkzeug.serving import _ansi_style as ansi_style

control_char_table: dict[int, str] = _WerkzeugHandler._control_char_table

__all__ = ["ansi_style", "control_char_table", "internal"]
