"""Chooses the request parser: the compiled one when it is there, else the twin.

``PARSER_IMPL`` records the choice ("c" or "py"). Both implementations expose
the same classes with the same behaviour and raise the same
:mod:`fastserve.errors`; :class:`RequestParserProtocol` and
:class:`ChunkedDecoderProtocol` state that contract. ``RequestParserPy`` /
``ChunkedDecoderPy`` are always the pure-Python twin; ``RequestParserC`` /
``ChunkedDecoderC`` are the compiled classes or ``None``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal, Protocol

from ._compat import NO_EXTENSIONS
from .errors import IncompleteRequestError

__all__ = [
    "PARSER_IMPL",
    "RequestParser",
    "ChunkedDecoder",
    "serialize_response_head",
    "parse_request",
]

Buffer = bytes | bytearray | memoryview


class RequestParserProtocol(Protocol):
    """Incremental HTTP/1.1 request-head parser (RFC 9112 §2-§6).

    One instance per connection. :meth:`parse` is called with the bytes that
    have arrived for the current request; it returns ``0`` when the head is not
    complete yet (having checked what is there, so a defect is refused at the
    first bad byte), else the number of bytes the head occupies. The results
    below are then valid until the next call.
    """

    max_request_line: int
    max_field_line: int
    max_head: int
    max_fields: int

    #: The request-derived environ entries: REQUEST_METHOD, SCRIPT_NAME,
    #: PATH_INFO, QUERY_STRING, REQUEST_URI, RAW_URI, SERVER_PROTOCOL,
    #: CONTENT_TYPE, CONTENT_LENGTH, HTTP_*, after those given to
    #: :meth:`set_base`. A new dict for every request.
    environ: dict[str, Any]
    method: str
    #: "HTTP/1.0" or "HTTP/1.1"
    version: str
    #: body length framed by Content-Length; 0 without a body; -1 when chunked
    content_length: int
    chunked: bool
    #: the client allows the connection to stay open after the response
    keep_alive: bool
    #: framing is in doubt (Transfer-Encoding with Content-Length, RFC 9112 §6.3):
    #: the connection must be closed after the response
    must_close: bool
    expect_continue: bool

    def parse(self, data: Buffer, /) -> int: ...
    def reset(self) -> None: ...
    #: per-connection entries every later environ starts with (no request keys)
    def set_base(self, base: dict[str, Any], /) -> None: ...


class ChunkedDecoderProtocol(Protocol):
    """Incremental decoder of a chunked request body (RFC 9112 §7.1)."""

    #: True once the last chunk, the trailer section and its final CRLF are in
    done: bool

    def decode(self, data: Buffer, /) -> tuple[bytes, int]: ...


if TYPE_CHECKING or NO_EXTENSIONS:
    from . import _parser_py as _impl

    PARSER_IMPL: Literal["c", "py"] = "py"
    RequestParserC: Any = None
    ChunkedDecoderC: Any = None
else:  # pragma: no cover - depends on the build
    try:
        from . import _parser as _impl

        PARSER_IMPL = "c"
        RequestParserC = _impl.RequestParser
        ChunkedDecoderC = _impl.ChunkedDecoder
    except ImportError:
        from . import _parser_py as _impl

        PARSER_IMPL = "py"
        RequestParserC = ChunkedDecoderC = None

RequestParser = _impl.RequestParser
ChunkedDecoder = _impl.ChunkedDecoder
serialize_response_head = _impl.serialize_response_head


def __getattr__(name: str) -> Any:
    # The twin's names are imported on first use only: a server running the
    # compiled parser (and every reloader restart) skips importing it.
    if name in ("RequestParserPy", "ChunkedDecoderPy"):
        from . import _parser_py

        return getattr(_parser_py, name[: -len("Py")])
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def parse_request(data: bytes) -> dict[str, Any]:
    """Parse one complete request head and return its environ entries.

    The entries are those the head alone determines: ``REQUEST_METHOD``,
    ``SCRIPT_NAME``, ``PATH_INFO``, ``QUERY_STRING``, ``REQUEST_URI``,
    ``RAW_URI``, ``SERVER_PROTOCOL``, ``CONTENT_TYPE``, ``CONTENT_LENGTH`` and
    ``HTTP_*``, with the values werkzeug's dev server gives them.

    :param data: the request head, ending with the blank line; bytes after it
        (a body, a pipelined request) are ignored.
    :raises fastserve.HTTPParseError: the head is malformed, exceeds a limit, or
        is incomplete; ``.status`` is the HTTP status to answer with.
    """
    parser = RequestParser()
    if parser.parse(data) == 0:
        raise IncompleteRequestError()
    return parser.environ
