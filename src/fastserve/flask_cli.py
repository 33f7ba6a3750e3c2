"""``python -m fastserve.flask_cli ...``: Flask's ``flask`` command, served by fastserve.

Takes exactly the arguments of ``flask`` (``--app``, ``run``, ``--debug``,
``--cert``, ...). It calls :func:`fastserve.install` and then hands over to
``flask.cli.main``, so ``flask run`` starts fastserve's server. The reloader
re-runs this same command line, so the reloaded child serves through fastserve
too. Example::

    python -m fastserve.flask_cli --app hello run --debug

(The module is not called ``fastserve.flask`` to keep it apart from the
``flask`` package it drives.)
"""

from __future__ import annotations

from ._install import install

__all__ = ["main"]


def main() -> None:
    """Run Flask's command line with ``run_simple`` swapped for fastserve's."""
    install()
    from flask.cli import main as flask_main

    flask_main()


if __name__ == "__main__":
    main()
