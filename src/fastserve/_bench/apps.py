"""The applications the benchmark serves when the user names none.

``hello`` is a hello-world WSGI app (a request body, as in the POST cell, is
read to the end first); ``create_flask_app()`` builds a one-route Flask app
returning the same bytes, for the scenario that shows a framework's share of
the time. This module imports nothing from fastserve: ``serve.py`` may load it
by file path in a process whose ``fastserve`` is an older checkout.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Final

__all__ = ["APP_ENV", "HELLO", "HELLO_SPEC", "FLASK_SPEC", "hello", "create_flask_app"]

#: the environment variable that names the app a benchmark server serves (a ``module:app`` spec)
APP_ENV: Final = "FASTSERVE_BENCH_APP"

HELLO: Final = b"Hello, World!"
#: ``module:app`` specs of the two built-in apps (as ``fastserve module:app`` reads them)
HELLO_SPEC: Final = "fastserve._bench.apps:hello"
FLASK_SPEC: Final = "fastserve._bench.apps:create_flask_app()"


def hello(environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
    """``Hello, World!`` as ``text/plain``, after reading any request body."""
    remaining = int(environ.get("CONTENT_LENGTH") or 0)
    stream = environ["wsgi.input"]
    while remaining > 0:
        chunk = stream.read(min(remaining, 65536))
        if not chunk:
            break
        remaining -= len(chunk)
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(HELLO)))])
    return [HELLO]


def create_flask_app() -> Any:
    """A Flask app with one route, ``/``, answering ``Hello, World!``."""
    from flask import Flask  # optional: only this scenario needs Flask

    app = Flask("fastserve_bench")

    @app.route("/")
    def index() -> bytes:
        return HELLO

    return app
