"""fastserve: a drop-in replacement for werkzeug's ``run_simple`` with a compiled HTTP/1.1 parser."""

from __future__ import annotations

from ._install import install, uninstall
from .errors import HTTPParseError
from .parser import PARSER_IMPL, parse_request

__version__ = "0.1.0"

__all__ = ["HTTPParseError", "PARSER_IMPL", "install", "parse_request", "uninstall", "__version__"]
