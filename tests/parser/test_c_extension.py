"""The compiled parser is really the one in use (aiohttp's ``test_c_parser_loaded``).

A build that silently fell back to pure Python must fail the suite, unless the
run asked for pure Python with ``FASTSERVE_NO_EXTENSIONS=1``.
"""

from __future__ import annotations

import importlib
import os

import pytest

import fastserve
import fastserve.parser

NO_EXTENSIONS = bool(os.environ.get("FASTSERVE_NO_EXTENSIONS"))


@pytest.mark.skipif(NO_EXTENSIONS, reason="FASTSERVE_NO_EXTENSIONS is set: pure Python requested")
def test_c_parser_loaded() -> None:
    assert fastserve.parser.PARSER_IMPL == "c"
    assert fastserve.PARSER_IMPL == "c"


@pytest.mark.c_extension
def test_public_names_are_the_compiled_ones() -> None:
    compiled = importlib.import_module("fastserve._parser")
    assert compiled.__file__ is not None and not compiled.__file__.endswith(".py")
    assert fastserve.parser.RequestParser is compiled.RequestParser
    assert fastserve.parser.ChunkedDecoder is compiled.ChunkedDecoder
    assert fastserve.parser.serialize_response_head is compiled.serialize_response_head
    assert fastserve.parser.RequestParserC is compiled.RequestParser
    assert (
        fastserve.parser.RequestParserPy
        is importlib.import_module("fastserve._parser_py").RequestParser
    )
    assert fastserve.parser.RequestParserC is not fastserve.parser.RequestParserPy


@pytest.mark.c_extension
def test_compiled_classes_are_extension_types() -> None:
    """cdef classes: no instance ``__dict__``, so no stray attributes can hide a typo."""
    compiled = importlib.import_module("fastserve._parser")
    parser = compiled.RequestParser()
    with pytest.raises(AttributeError):
        parser.max_head_size = 1  # type: ignore[attr-defined]
    with pytest.raises(AttributeError):
        compiled.ChunkedDecoder().max_chunk = 1  # type: ignore[attr-defined]
