"""fastserve's version has one source, ``fastserve/_version.py``."""

from __future__ import annotations

import ast
import re
from importlib.metadata import version
from pathlib import Path

import fastserve
from fastserve import _version

PYPROJECT = Path(__file__).resolve().parents[1] / "pyproject.toml"


def test_installed_metadata_and_package_agree() -> None:
    assert fastserve.__version__ == _version.__version__
    assert version("fastserve") == fastserve.__version__


def test_pyproject_reads_the_version_from_the_package() -> None:
    text = PYPROJECT.read_text()
    project = text.split("[project]", 1)[1].split("\n[", 1)[0]
    assert re.search(r'^dynamic = \[[^\]]*"version"', project, re.MULTILINE)
    assert not re.search(r"^version\s*=", project, re.MULTILINE)
    assert 'version = { attr = "fastserve._version.__version__" }' in text


def test_only_version_module_assigns_a_version() -> None:
    package = Path(fastserve.__file__).parent
    assigning = sorted(
        str(path.relative_to(package))
        for path in package.rglob("*.py")
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, ast.Assign)
        and any(isinstance(t, ast.Name) and t.id == "__version__" for t in node.targets)
    )
    assert assigning == ["_version.py"]
