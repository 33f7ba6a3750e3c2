"""Markers of the compatibility tests (registered here so ``--strict-markers`` knows them)."""

from __future__ import annotations

import pytest


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "werkzeug_control: runs werkzeug's own suite against werkzeug itself, the baseline"
        " that the fastserve legs are compared with (deselect with -m 'not werkzeug_control')",
    )
