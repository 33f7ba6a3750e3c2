"""Run one benchmark server in this process: ``python serve.py NAME PORT``.

Started by :class:`~fastserve._bench.servers.RunningServer` for the servers
that have a Python API (fastserve, werkzeug, waitress, bjoern, fastwsgi,
socketify), always on 127.0.0.1. The app comes from ``FASTSERVE_BENCH_APP``.

This file is run by path, not as ``fastserve._bench.serve``, and imports
nothing from its package: with ``PYTHONPATH`` pointing at an older checkout
(the ``fastserve-base`` row of ``bench/bench_server.py``) ``import fastserve``
must find that checkout, which has no ``_bench``. The built-in apps are then
loaded from ``apps.py`` beside this file, by path; any other spec goes through
``fastserve._app_loading.load_app``, as ``fastserve module:app`` would load it.
"""

from __future__ import annotations

import importlib
import importlib.util
import logging
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

HOST = "127.0.0.1"
BUILTIN_MODULE = "fastserve._bench.apps"
HERE = Path(__file__).resolve().parent


def _builtin_apps() -> Any:
    """``apps.py`` beside this file, loaded by path (see the module docstring)."""
    location = importlib.util.spec_from_file_location("_fastserve_bench_apps", HERE / "apps.py")
    assert location is not None and location.loader is not None
    module = importlib.util.module_from_spec(location)
    location.loader.exec_module(module)
    return module


def load_target() -> Callable[..., Any]:
    """The WSGI app named by ``FASTSERVE_BENCH_APP``."""
    apps = _builtin_apps()
    spec = os.environ[apps.APP_ENV]
    module_name, _, expression = spec.partition(":")
    if module_name == BUILTIN_MODULE:
        obj = getattr(apps, expression.removesuffix("()"))
        return obj() if expression.endswith("()") else obj  # type: ignore[no-any-return]
    from fastserve._app_loading import load_app

    return load_app(spec)


def serve(name: str, port: int) -> None:
    """Serve the target app with server ``name`` on 127.0.0.1:``port`` until killed."""
    app = load_target()
    if name in ("fastserve", "fastserve-log"):
        import fastserve.parser
        from fastserve import run_simple

        expected = "py" if os.environ.get("FASTSERVE_NO_EXTENSIONS") else "c"
        if fastserve.parser.PARSER_IMPL != expected:
            sys.exit(f"{name}: parser is {fastserve.parser.PARSER_IMPL!r}, expected {expected!r}")
        logger = logging.getLogger("werkzeug")
        if name == "fastserve-log":
            # the access lines are formatted and written, to nowhere
            logger.addHandler(logging.StreamHandler(open(os.devnull, "w")))
            logger.propagate = False
            logger.setLevel(logging.INFO)
        else:
            logger.setLevel(logging.WARNING)
        run_simple(HOST, port, app, threaded=True)
    elif name == "werkzeug":
        from werkzeug.serving import run_simple as werkzeug_run_simple

        logging.getLogger("werkzeug").setLevel(logging.WARNING)
        werkzeug_run_simple(HOST, port, app, threaded=True)
    # the other servers are optional and untyped: imported by name
    elif name == "waitress":
        importlib.import_module("waitress").serve(app, host=HOST, port=port, _quiet=True)
    elif name == "bjoern":
        importlib.import_module("bjoern").run(app, HOST, port)
    elif name == "fastwsgi":
        importlib.import_module("fastwsgi").run(wsgi_app=app, host=HOST, port=port)
    elif name == "socketify":
        socketify = importlib.import_module("socketify")
        options = socketify.AppListenOptions(port=port, host=HOST)
        socketify.WSGI(app).listen(options).run(workers=1)
    else:
        sys.exit(f"unknown server {name!r}")


if __name__ == "__main__":
    # run by path, this file's directory is sys.path[0]: drop it, so that a user's
    # module called 'apps' or 'report' is not shadowed by the files beside this one
    if sys.path and Path(sys.path[0] or ".").resolve() == HERE:
        del sys.path[0]
    sys.path.insert(0, os.getcwd())
    serve(sys.argv[1], int(sys.argv[2]))
