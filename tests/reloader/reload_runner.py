"""A tiny program run under ``fastserve._reloader.run_with_reloader`` by the live tests.

Usage: ``python reload_runner.py '<json kwargs for run_with_reloader>'``, with
cwd = a project directory holding ``target.py`` (imported at startup) and
optionally ``lazy.py`` (imported only inside ``main``, so it may start out
broken). The child prints one ``RUNNING ...`` line per start.
"""

from __future__ import annotations

import atexit
import json
import os
import sys

import target  # type: ignore[import-not-found]

from fastserve._reloader import run_with_reloader


def main() -> None:
    try:
        import lazy  # type: ignore[import-not-found]

        lazy_state = f"ok:{lazy.VALUE}"
    except Exception as exc:  # a syntax error in lazy.py is part of the test
        lazy_state = f"error:{type(exc).__name__}"
    print(f"RUNNING pid={os.getpid()} value={target.VALUE} lazy={lazy_state}", flush=True)


def serve() -> None:
    main()
    # serve_forever stand-in: block until the process ends.
    import threading

    threading.Event().wait()


if os.environ.get("WERKZEUG_RUN_MAIN") == "true" and target.VALUE == "exit7":
    # A child that dies at startup (e.g. its app fails to import).
    sys.exit(7)

if os.environ.get("WERKZEUG_RUN_MAIN") == "true":
    # A restart must still run the program's cleanup: finally blocks and atexit.
    atexit.register(print, f"ATEXIT pid={os.getpid()}", flush=True)

try:
    run_with_reloader(serve, **json.loads(sys.argv[1]))
finally:
    if os.environ.get("WERKZEUG_RUN_MAIN") == "true":
        print(f"FINALLY pid={os.getpid()}", flush=True)
