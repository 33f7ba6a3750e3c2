"""Platform and build switches, decided once at import."""

from __future__ import annotations

import os
import platform
import socket
from typing import Final

#: True when the pure-Python parser must be used: ``FASTSERVE_NO_EXTENSIONS``
#: is set to a non-empty value, or the interpreter is not CPython (PyPy).
NO_EXTENSIONS: Final[bool] = bool(os.environ.get("FASTSERVE_NO_EXTENSIONS")) or (
    platform.python_implementation() != "CPython"
)

can_fork: Final[bool] = hasattr(os, "fork")
has_af_unix: Final[bool] = hasattr(socket, "AF_UNIX")
has_reuse_port: Final[bool] = hasattr(socket, "SO_REUSEPORT")
