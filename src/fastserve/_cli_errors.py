"""The ``fastserve`` command's errors: one line on stderr, exit status 2."""

from __future__ import annotations

__all__ = ["AppImportError", "CLIError"]


class CLIError(Exception):
    """A mistake on the command line: reported as one line, exit status 2."""


class AppImportError(CLIError):
    """The user's module (or app factory) raised while being loaded.

    Its ``__cause__`` is the original exception; its traceback is shown,
    because it points into the user's code.
    """
