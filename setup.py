"""Build the one extension, ``fastserve._parser``; metadata lives in pyproject.toml.

Switches (environment variables):

- ``FASTSERVE_NO_EXTENSIONS=1``: pure-Python build (also forced on non-CPython).
- ``FASTSERVE_REQUIRE_EXTENSIONS=1``: a failed compile is an error, not a fallback.
- ``FASTSERVE_CYTHON_ANNOTATE=1``: write Cython's HTML annotation next to the .pyx.
- ``FASTSERVE_CYTHON_TRACE=1``: line tracing for coverage (slow; never for benchmarks).
"""

import os
import platform
import sys

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext


def _flag(name: str) -> bool:
    return bool(os.environ.get(name))


NO_EXTENSIONS = _flag("FASTSERVE_NO_EXTENSIONS") or platform.python_implementation() != "CPython"
REQUIRE_EXTENSIONS = _flag("FASTSERVE_REQUIRE_EXTENSIONS") or _flag("CIBUILDWHEEL")
TRACE = _flag("FASTSERVE_CYTHON_TRACE")

# Cython compiler directives, in this one place.
DIRECTIVES = {
    "language_level": "3",
    "embedsignature": True,
    "freethreading_compatible": True,
    "linetrace": TRACE,
}


class OptionalBuildExt(build_ext):
    """Fall back to a pure-Python install when compiling fails, unless told not to."""

    def run(self) -> None:
        try:
            super().run()
        except Exception as exc:
            self._fallback(exc)

    def build_extension(self, ext: Extension) -> None:
        try:
            super().build_extension(ext)
        except Exception as exc:
            self._fallback(exc)

    def _fallback(self, exc: Exception) -> None:
        if REQUIRE_EXTENSIONS:
            raise
        print(f"*** fastserve: compiling the parser failed ({exc}); Pure-Python build", file=sys.stderr)


def extensions() -> list:
    if NO_EXTENSIONS:
        print("*** fastserve: Pure-Python build (FASTSERVE_NO_EXTENSIONS or not CPython)")
        return []
    try:
        from Cython.Build import cythonize
    except ImportError:
        if REQUIRE_EXTENSIONS:
            raise
        print("*** fastserve: Cython is missing; Pure-Python build", file=sys.stderr)
        return []
    macros = [("CYTHON_TRACE", "1"), ("CYTHON_TRACE_NOGIL", "1")] if TRACE else []
    # depends: the C header and the .pxi files the .pyx includes; rebuilt when they change,
    # and shipped in the sdist
    ext = Extension(
        "fastserve._parser",
        ["src/fastserve/_parser.pyx"],
        depends=[
            "src/fastserve/_scan.h",
            "src/fastserve/_state.pxi",
            "src/fastserve/_fastpath.pxi",
            "src/fastserve/_dispatch.pxi",
        ],
        define_macros=macros,
    )
    print("*** fastserve: Accelerated build")
    return cythonize(
        [ext],
        compiler_directives=DIRECTIVES,
        annotate=_flag("FASTSERVE_CYTHON_ANNOTATE"),
    )


setup(ext_modules=extensions(), cmdclass={"build_ext": OptionalBuildExt})
