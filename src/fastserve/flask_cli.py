"""Flask's command line, served by fastserve: ``flask serve`` and ``python -m fastserve.flask_cli``.

``flask serve`` (the ``serve`` entry point in the ``flask.commands`` group, so
``flask --help`` lists it once fastserve is installed) is ``flask run`` with
fastserve's :func:`~fastserve.serving.run_simple` underneath::

    flask --app hello serve --debug
    flask --app hello serve --cert adhoc --port 8443

It takes the very option objects of Flask's ``run`` command (``--host``,
``--port``, ``--cert``/``--key``, ``--reload/--no-reload``,
``--debugger/--no-debugger``, ``--with-threads/--without-threads``,
``--extra-files``, ``--exclude-patterns``, ``--debug``), so parsing,
validation and help are Flask's own, plus ``--reloader-type``. The callback
then does what ``flask run`` does - load the app (in a reloader child, an app
that fails to import becomes one that raises its error, until a saved fix
reloads it), print Flask's banner - and calls fastserve's ``run_simple``
directly: nothing is patched, so ``flask run`` stays werkzeug's. The reloader
re-runs ``flask ... serve``, so the child serves through fastserve too.

``python -m fastserve.flask_cli ...`` takes exactly the arguments of ``flask``,
calls :func:`fastserve.install` and hands over to ``flask.cli.main``, so there
``flask run`` itself starts fastserve's server::

    python -m fastserve.flask_cli --app hello run --debug

(The module is not called ``fastserve.flask`` to keep it apart from the
``flask`` package it drives.)
"""

from __future__ import annotations

import traceback
from collections.abc import Callable, Iterable
from typing import Any

import click
from flask.cli import pass_script_info, run_command, show_server_banner
from flask.helpers import get_debug_flag

from ._install import install

__all__ = ["main", "serve_command", "RELOADER_TYPES"]

#: ``--reloader-type`` choices: the names ``run_simple``'s ``reloader_type`` accepts.
RELOADER_TYPES = ("auto", "stat", "watchdog", "watchfiles")


@click.command(
    "serve",
    short_help="Run a development server with fastserve.",
    params=[
        *run_command.params,
        click.Option(
            ["--reloader-type"],
            type=click.Choice(RELOADER_TYPES),
            default="auto",
            show_default=True,
            help="How the reloader watches files: 'auto' picks watchfiles, then watchdog, "
            "then stat polling, whichever is installed.",
        ),
    ],
)
@pass_script_info
def serve_command(
    info: Any,
    host: str,
    port: int,
    reload: bool | None,
    debugger: bool | None,
    with_threads: bool,
    cert: Any,
    extra_files: list[str] | None,
    exclude_patterns: list[str] | None,
    reloader_type: str,
) -> None:
    """Run a local development server: 'flask run', served by fastserve.

    The same options as 'flask run', plus --reloader-type. The reloader and the
    debugger are on by default with '--debug'. A development server: do not use
    it in production.
    """
    from .serving import is_running_from_reloader, run_simple

    try:
        app = info.load_app()
    except Exception as exc:
        if not is_running_from_reloader():
            raise  # flask run's behaviour: the command fails with the import error
        traceback.print_exc()
        app = _raising_app(exc)

    debug = get_debug_flag()
    show_server_banner(debug, info.app_import_path)
    run_simple(
        host,
        port,
        app,
        use_reloader=debug if reload is None else reload,
        use_debugger=debug if debugger is None else debugger,
        threaded=with_threads,
        ssl_context=cert,
        extra_files=extra_files,
        exclude_patterns=exclude_patterns,
        reloader_type=reloader_type,
    )


def _raising_app(error: Exception) -> Callable[..., Iterable[bytes]]:
    """A WSGI app that raises ``error`` for every request (the debugger shows it)."""

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        raise error from None

    return app


def main() -> None:
    """Run Flask's command line with ``run_simple`` swapped for fastserve's."""
    install()
    from flask.cli import main as flask_main

    flask_main()


if __name__ == "__main__":
    main()
