"""``app``: the application named by ``FASTSERVE_BENCH_APP``, for servers that import a module.

gunicorn, granian and uWSGI are started with their own command lines and
take ``fastserve._bench.target:app``; this module loads the user's
``module:app`` (or a built-in app) the way ``fastserve module:app`` does.
"""

from __future__ import annotations

import os

from ..cli import load_app
from .apps import APP_ENV

__all__ = ["app"]

app = load_app(os.environ[APP_ENV])
