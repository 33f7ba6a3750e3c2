"""fastserve's version: the one source.

``pyproject.toml`` reads it at build time (setuptools' dynamic ``version``,
``attr = "fastserve._version.__version__"``, evaluated statically), the
package re-exports it as ``fastserve.__version__``, and the server header and
``fastserve --version`` print it. A module of its own, importing nothing, so
that any module can read it without importing the package's ``__init__``.
"""

__version__ = "0.1.0"
