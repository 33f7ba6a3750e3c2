"""Start one live-test server: ``python serve_live.py <app> <json options>``.

Options: ``mode`` (``"run_simple"``, the default, or ``"make_server"``), and the
keyword arguments of that function (``hostname``, ``port``, ``threaded``,
``processes``, ``ssl_context``...). ``ssl_context`` may be ``"adhoc"`` or a
``[cert, key]`` list (turned into the tuple ``run_simple`` expects);
``request_handler`` names a class: ``"werkzeug"`` / ``"fastserve"`` (that
package's ``WSGIRequestHandler``), with ``-quiet`` a subclass overriding
``log_request`` to silence the access log. ``server_attrs`` (a dict) sets
class attributes of ``fastserve.server.BaseWSGIServer`` (timeouts, limits)
before the server is built; ``rlimit_nofile`` lowers the process's soft limit
on open files. The parser
implementation follows ``FASTSERVE_NO_EXTENSIONS`` in the environment; the
first line on stdout names it, so the test can check it.
"""

from __future__ import annotations

import json
import os
import sys

try:
    import resource
except ImportError:  # pragma: no cover - Windows
    resource = None  # type: ignore[assignment]

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import live_apps  # noqa: E402

import fastserve.parser  # noqa: E402
import fastserve.server  # noqa: E402
from fastserve import serving  # noqa: E402


def _quiet(base: type) -> type:
    """A handler subclass that silences the access log (the common override)."""

    class Quiet(base):  # type: ignore[misc, valid-type]
        def log_request(self, code: object = "-", size: object = "-") -> None:
            pass

    return Quiet


def _handler(name: str) -> type:
    import werkzeug.serving

    bases = {
        "werkzeug": werkzeug.serving.WSGIRequestHandler,
        "fastserve": serving.WSGIRequestHandler,
    }
    kind, _, variant = name.partition("-")
    base = bases[kind]
    return _quiet(base) if variant == "quiet" else base


def main() -> None:
    app = live_apps.APPS[sys.argv[1]]()
    options = json.loads(sys.argv[2])
    mode = options.pop("mode", "run_simple")
    if "request_handler" in options:
        options["request_handler"] = _handler(options["request_handler"])
    if isinstance(options.get("ssl_context"), list):
        options["ssl_context"] = tuple(options["ssl_context"])
    for name, value in options.pop("server_attrs", {}).items():
        setattr(fastserve.server.BaseWSGIServer, name, value)
    nofile = options.pop("rlimit_nofile", None)
    if nofile is not None and resource is not None:
        hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
        resource.setrlimit(resource.RLIMIT_NOFILE, (nofile, hard))
    print(f"PARSER_IMPL={fastserve.parser.PARSER_IMPL}", flush=True)
    if mode == "make_server":
        host, port = options.pop("hostname"), options.pop("port")
        server = serving.make_server(host, port, app, **options)
        try:
            server.serve_forever()
        finally:
            server.server_close()
    else:
        serving.run_simple(application=app, **options)


if __name__ == "__main__":
    main()
