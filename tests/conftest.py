"""Shared fixtures: the parser implementation axis and the run's report header.

Every parser test takes ``parser_impl`` (ids ``c`` and ``py``), so the whole
parser suite runs against both implementations. The compiled one is marked
``c_extension``; when it cannot be imported its tests *fail* - unless the run
explicitly asks for pure Python with ``FASTSERVE_NO_EXTENSIONS=1``, which
deselects them.
"""

from __future__ import annotations

import importlib
import os
from types import ModuleType

import pytest
from hypothesis import settings as _hypothesis_settings

import fastserve.parser

NO_EXTENSIONS = bool(os.environ.get("FASTSERVE_NO_EXTENSIONS"))


def pytest_report_header(config: pytest.Config) -> str:
    impl = fastserve.parser.PARSER_IMPL
    return f"fastserve parser in use: {impl}; FASTSERVE_NO_EXTENSIONS={NO_EXTENSIONS}"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if not NO_EXTENSIONS:
        return
    selected, deselected = [], []
    for item in items:
        (deselected if item.get_closest_marker("c_extension") else selected).append(item)
    if deselected:
        config.hook.pytest_deselected(items=deselected)
        items[:] = selected


@pytest.fixture(
    scope="session",
    params=[pytest.param("c", marks=pytest.mark.c_extension), "py"],
)
def parser_impl(request: pytest.FixtureRequest) -> ModuleType:
    """The parser module under test: ``fastserve._parser`` or ``fastserve._parser_py``."""
    name = "fastserve._parser" if request.param == "c" else "fastserve._parser_py"
    return importlib.import_module(name)


# Hypothesis profiles: "ci" (selected when the CI environment variable is set) is
# reproducible and thorough; "dev" (the default) explores new examples on every run.
# Neither has a deadline: timing lives in bench/, never in tests. HYPOTHESIS_PROFILE
# picks one explicitly.
_hypothesis_settings.register_profile("ci", deadline=None, derandomize=True, max_examples=300)
_hypothesis_settings.register_profile("dev", deadline=None)
_hypothesis_settings.load_profile(
    os.environ.get("HYPOTHESIS_PROFILE") or ("ci" if os.environ.get("CI") else "dev")
)


@pytest.fixture(autouse=True)
def _restore_handler_protocol_version():
    """Undo the sticky ``protocol_version`` a threaded server sets on the handler class.

    werkzeug (and so fastserve, which keeps its handler) sets ``protocol_version = "HTTP/1.1"`` on
    the handler *class* the first time a threaded or forking server is built; within
    one test process that would leak into later tests of the plain HTTP/1.0 server.
    """
    import werkzeug.serving

    import fastserve.serving

    classes = (fastserve.serving.WSGIRequestHandler, werkzeug.serving.WSGIRequestHandler)
    before = [vars(cls).get("protocol_version") for cls in classes]
    yield
    for cls, value in zip(classes, before, strict=True):
        if value is None:
            if "protocol_version" in vars(cls):
                delattr(cls, "protocol_version")
        else:
            cls.protocol_version = value
