"""``fastserve.install()`` / ``uninstall()``: which names they rebind (in-process)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import flask.cli
import pytest
import werkzeug
import werkzeug.serving
from live_command import child_env, run_command

import fastserve
import fastserve.serving
from fastserve._install import is_installed

WERKZEUG_RUN_SIMPLE = werkzeug.serving.run_simple


@pytest.fixture(autouse=True)
def undo_install() -> Iterator[None]:
    assert werkzeug.serving.run_simple is WERKZEUG_RUN_SIMPLE, "a previous test leaked install()"
    yield
    fastserve.uninstall()
    assert werkzeug.serving.run_simple is WERKZEUG_RUN_SIMPLE
    assert werkzeug.run_simple is WERKZEUG_RUN_SIMPLE
    assert flask.cli.run_simple is WERKZEUG_RUN_SIMPLE


def test_fastserve_run_simple_is_not_werkzeugs() -> None:
    assert fastserve.serving.run_simple is not WERKZEUG_RUN_SIMPLE
    assert fastserve.serving.run_simple.__module__ == "fastserve.serving"


def test_install_rebinds_werkzeug_and_flask_cli() -> None:
    assert not is_installed()
    fastserve.install()
    assert is_installed()
    assert werkzeug.serving.run_simple is fastserve.serving.run_simple
    assert werkzeug.run_simple is fastserve.serving.run_simple
    # flask.cli was imported (above) before install(): its own binding is replaced too
    assert flask.cli.run_simple is fastserve.serving.run_simple


def test_install_is_idempotent() -> None:
    fastserve.install()
    fastserve.install()
    assert werkzeug.serving.run_simple is fastserve.serving.run_simple
    # one uninstall() restores werkzeug's function, not fastserve's (checked by the fixture)
    fastserve.uninstall()
    assert not is_installed()


def test_uninstall_without_install_changes_nothing() -> None:
    fastserve.uninstall()
    assert werkzeug.serving.run_simple is WERKZEUG_RUN_SIMPLE


def test_install_is_exported() -> None:
    assert "install" in fastserve.__all__
    assert fastserve.install is fastserve._install.install


def test_flask_cli_imported_after_install_binds_fastserve(tmp_path: Path) -> None:
    code = (
        "import sys, fastserve, fastserve.serving\n"
        "assert 'flask.cli' not in sys.modules\n"
        "fastserve.install()\n"
        "import flask.cli\n"
        "assert flask.cli.run_simple is fastserve.serving.run_simple\n"
        "fastserve.uninstall()\n"
        "import werkzeug.serving\n"
        "assert flask.cli.run_simple is werkzeug.serving.run_simple\n"
        "assert flask.cli.run_simple.__module__ == 'werkzeug.serving'\n"
        "print('checked')\n"
    )
    result = run_command(["-c", code], cwd=tmp_path, env=child_env(tmp_path))
    assert result.returncode == 0, result.stderr
    assert result.stdout == "checked\n"
