"""Make werkzeug's and Flask's entry points serve through fastserve.

Flask's ``app.run()`` does ``from werkzeug.serving import run_simple`` each time
it is called, and ``flask.cli`` does ``from werkzeug import run_simple`` once,
when it is imported. :func:`install` rebinds those three names to
:func:`fastserve.serving.run_simple`, so both entry points serve through
fastserve without any other change; ``flask.cli`` imported later picks up the
new ``werkzeug.run_simple`` by itself. The reloader and the debugger keep
working because fastserve uses werkzeug's environment variables
(``WERKZEUG_RUN_MAIN``, ``WERKZEUG_SERVER_FD``).
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

__all__ = ["install", "uninstall", "is_installed"]

#: werkzeug's own ``run_simple``, remembered by the first :func:`install`.
_original: list[Callable[..., Any]] = []


def _targets() -> list[tuple[Any, str]]:
    import werkzeug
    import werkzeug.serving

    targets: list[tuple[Any, str]] = [(werkzeug.serving, "run_simple"), (werkzeug, "run_simple")]
    flask_cli = sys.modules.get("flask.cli")
    if flask_cli is not None:
        targets.append((flask_cli, "run_simple"))
    return targets


def install() -> None:
    """Serve werkzeug's and Flask's entry points through fastserve.

    Sets ``werkzeug.serving.run_simple``, ``werkzeug.run_simple`` and, when
    ``flask.cli`` is already imported, ``flask.cli.run_simple`` to
    :func:`fastserve.serving.run_simple`. Call it before ``app.run()``;
    calling it again is harmless.

    .. code-block:: python

        import fastserve

        fastserve.install()
        app.run(debug=True)
    """
    import werkzeug.serving

    from .serving import run_simple

    if not _original and werkzeug.serving.run_simple is not run_simple:
        _original.append(werkzeug.serving.run_simple)
    for module, name in _targets():
        setattr(module, name, run_simple)


def uninstall() -> None:
    """Undo :func:`install`: werkzeug's own ``run_simple`` is used again."""
    from .serving import run_simple

    if not _original:
        return
    for module, name in _targets():
        if getattr(module, name, None) is run_simple:
            setattr(module, name, _original[0])


def is_installed() -> bool:
    """Whether ``werkzeug.serving.run_simple`` is fastserve's right now."""
    import werkzeug.serving

    from .serving import run_simple

    return werkzeug.serving.run_simple is run_simple
