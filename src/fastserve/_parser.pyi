"""Compiled HTTP/1.1 request parser (``fastserve._parser``, built from ``_parser.pyx``).

Same API and behaviour as the pure-Python twin :mod:`fastserve._parser_py`, which
is the executable spec; the contract is ``docs/parsing.md``. Use
:mod:`fastserve.parser`, which picks this module when it is available.
"""

from typing import Any, TypeAlias, final

from typing_extensions import disjoint_base

_Buffer: TypeAlias = bytes | bytearray | memoryview

__all__ = [
    "RequestParser",
    "ChunkedDecoder",
    "serialize_response_head",
    "FastPath",
    "configure_fast_path",
    "fast_path_for",
]

@final
class RequestParser:
    """Incremental HTTP/1.1 request-head parser (RFC 9112 §2-§6).

    One instance per connection. Call :meth:`parse` with the bytes received for
    the current request; it returns ``0`` while the head is incomplete (having
    checked everything received so far, so a defect is refused at the first bad
    byte) and the head's length once the final empty line is in. The results
    below are then valid until the next call; the next call starts a new request.

    :param max_request_line: longest request line accepted, CRLF excluded
        (``RequestLineTooLongError``, 414, beyond).
    :param max_field_line: longest field line accepted, CRLF excluded
        (``HeaderFieldTooLargeError``, 431, beyond).
    :param max_head: most bytes of request line plus field lines, CRLFs
        excluded, plus 2 per skipped empty line (``HeadTooLargeError``, 431).
    :param max_fields: most field lines, obs-fold lines included
        (``TooManyHeadersError``, 431).
    """

    max_request_line: int
    max_field_line: int
    max_head: int
    max_fields: int

    @property
    def environ(self) -> dict[str, Any]:
        """The request's environ entries: REQUEST_METHOD, SCRIPT_NAME, PATH_INFO,
        QUERY_STRING, REQUEST_URI, RAW_URI, SERVER_PROTOCOL, CONTENT_TYPE,
        CONTENT_LENGTH and HTTP_*, with werkzeug 3.1's values, after the entries
        given to :meth:`set_base`. A new dict per request."""
    @property
    def method(self) -> str:
        """The method as sent, e.g. ``"GET"``."""
    @property
    def version(self) -> str:
        """``"HTTP/1.0"`` or ``"HTTP/1.1"``."""
    @property
    def content_length(self) -> int:
        """The body length framed by Content-Length; ``0`` without a body; ``-1`` when chunked."""
    @property
    def chunked(self) -> bool:
        """The body is framed by ``Transfer-Encoding: chunked``.

        Decode it with :class:`ChunkedDecoder`.
        """
    @property
    def keep_alive(self) -> bool:
        """The connection may stay open after the response (RFC 9112 §9.3)."""
    @property
    def must_close(self) -> bool:
        """Framing is in doubt (Transfer-Encoding with Content-Length, or in an HTTP/1.0
        request, RFC 9112 §6.3): close the connection after the response."""
    @property
    def expect_continue(self) -> bool:
        """The request has ``Expect: 100-continue`` (RFC 9110 §10.1.1)."""
    def __init__(
        self,
        max_request_line: int = ...,
        max_field_line: int = ...,
        max_head: int = ...,
        max_fields: int = ...,
    ) -> None: ...
    def parse(self, data: _Buffer, /) -> int:
        """Parse the request head at the start of ``data``.

        :param data: the bytes received for this request so far, starting where the
            previous request ended; across calls that returned 0, the same bytes
            extended by new ones (completed lines are not scanned again).
        :return: ``0`` while the head is incomplete, else the number of bytes the
            head occupies (leading empty lines and the final empty line included);
            a body or a pipelined request follows at ``data[n:]``.
        :raises fastserve.errors.HTTPParseError: a subclass, at the first defect;
            ``.status`` is the status to answer with. Call :meth:`reset` before
            reusing the parser.
        """
    def reset(self) -> None:
        """Forget a partly parsed head; the next :meth:`parse` starts a new request."""
    def set_base(self, base: dict[str, Any], /) -> None:
        """Start every later request's :attr:`environ` with ``base``'s entries.

        For the entries that are the same for every request on the connection
        (``wsgi.*``, ``SERVER_*``, ``REMOTE_*``, ...); ``base`` is copied now (it
        becomes the template each environ is copied from), ``{}`` removes them, and
        :meth:`reset` keeps them. Its keys may not be ones a head sets
        (``REQUEST_METHOD`` ... ``SERVER_PROTOCOL``, ``CONTENT_TYPE``,
        ``CONTENT_LENGTH``, ``HTTP_*``), so each environ holds exactly the head's
        entries updated with ``base``'s.

        :raises TypeError: ``base`` is not a dict.
        :raises ValueError: a key of ``base`` is one a head sets.
        """

@final
class ChunkedDecoder:
    """Incremental decoder of a chunked request body (RFC 9112 §7.1).

    Chunk extensions are skipped; trailer fields are checked like head fields
    (same limits) and dropped.

    :param max_field_line: longest chunk-size line or trailer line, CRLF excluded
        (``HeaderFieldTooLargeError``, 431).
    :param max_head: most bytes of trailer field lines, CRLFs excluded
        (``HeadTooLargeError``, 431).
    :param max_fields: most trailer field lines (``TooManyHeadersError``, 431).
    """

    max_field_line: int
    max_head: int
    max_fields: int

    @property
    def done(self) -> bool:
        """The last chunk, the trailer section and its final CRLF have been consumed."""
    def __init__(
        self, max_field_line: int = ..., max_head: int = ..., max_fields: int = ...
    ) -> None: ...
    def decode(self, data: _Buffer, /) -> tuple[bytes, int]:
        """Decode what ``data`` holds of the body.

        :param data: the bytes after what earlier calls consumed.
        :return: ``(body bytes decoded from data, bytes of data consumed)``. A partial
            chunk-size line, trailer line or post-data CRLF is left unconsumed (pass
            it again with more bytes appended); a partial chunk's data is consumed and
            returned. Bytes after the end of the message are never consumed.
        :raises fastserve.errors.InvalidChunkError: malformed framing (400).
        :raises fastserve.errors.HTTPParseError: a trailer defect or limit (400/431).
        """

def serialize_response_head(
    version: bytes, status: str, headers: list[tuple[str, str]], preamble: bytes
) -> tuple[bytes, int, int, int]:
    """Build a response's status line and the application's header lines.

    The result is ``version + b" " + status + b"\\r\\n" + preamble`` followed by
    ``name + b": " + value + b"\\r\\n"`` per header, latin-1 encoded, without the
    final empty line (the server appends framing headers and ``\\r\\n``).

    :param version: the status line's HTTP-version, e.g. ``b"HTTP/1.1"``.
    :param status: ``"3DIGIT [SP reason]"``, the code 100..999, the reason
        latin-1 text without CR, LF or NUL.
    :param headers: ``(name, value)`` pairs of ``str``: names are tokens, values
        hold no CR, LF or NUL (RFC 9110 §5.5), both latin-1 encodable.
    :param preamble: bytes inserted after the status line (e.g. Server, Date).
    :return: ``(head, status code, Content-Length value or -1, flags)``; flags
        bit 1: a ``Connection`` header with the ``close`` option, bit 2: a
        ``Transfer-Encoding`` header, bit 4: a ``Content-Length`` header.
    :raises ValueError: anything that could split the response, is not latin-1,
        or an invalid Content-Length (not 1*DIGIT after OWS, or over 63 bits).
    :raises TypeError: a status, name or value that is not ``str``.
    """

@final
class FastPath:
    """``HTTPConnection._process`` compiled, for one plain connection (``_fastpath.pxi``).

    Serves a request without a body whose application returns a list of bytes
    under 64 KiB, or an iterable whose one piece is its whole declared
    ``Content-Length``, with a status that carries a body; hands every other request,
    at the point where it differs, to the Python code of
    :mod:`fastserve.connection` and :mod:`fastserve._response`, which defines
    the behaviour.

    :param conn: the connection (an ``HTTPConnection`` parsing with this
        module's :class:`RequestParser`); its per-connection values are read once.
    """

    def __init__(self, conn: Any) -> None: ...
    def __call__(self, conn: Any, buf: _Buffer) -> int:
        """Serve the requests in ``buf``; the connection's state (PARK, CLOSE, ...,
        DEFER when ``conn.defer`` let it keep the last response for the engine's batch)."""

    def flush(self, conn: Any) -> int | None:
        """Send the response kept for the engine's send batch (DEFER): the
        connection's state then, or None when there is none (sent already)."""

def configure_fast_path(
    *,
    exchange: Any,
    empty_input: Any,
    date_line: Any,
    queued_bytes: Any,
    wz_internal: Any,
    monotonic: Any,
    parse_error: Any,
    states: tuple[int, int, int, int, int, int],
    framing_length: int,
    flag_close: int,
    flag_te: int,
    join_limit: int,
    whole_limit: int,
    msg_dontwait: int,
    chain: Any,
) -> None:
    """Wire :class:`FastPath` to the Python modules it is the twin of (called once
    by :mod:`fastserve.connection`): their classes, functions and constants."""

def fast_path_for(conn: Any) -> FastPath | None:
    """The :class:`FastPath` of a plain connection, or None when it cannot have one
    (no ``MSG_DONTWAIT``, or the connection parses with the pure-Python twin)."""

@disjoint_base
class ConnectionState:
    """The per-request fields of a connection, as C fields (``_state.pxi``; the
    pure-Python twin is :class:`fastserve._state.ConnectionState`)."""

    server: Any
    sock: Any
    fd: int
    buf: Any
    out: Any
    deadline: float
    head_started: float
    expect: bool
    send_failed: bool
    writing: bool
    waiting: bool
    parked: bool
    lingering: bool
    disabled: bool
    defer: bool
    events: int
    feeding: Any
    reader: Any
    env: Any
    exchange: Any
    resp_iter: Any
    resp_result: Any
    fast: Any
    def init_state(self, server: Any, sock: Any, reader: Any, out: Any) -> None:
        """Set every field: a new connection of ``server`` on ``sock``, idle, reading
        nothing yet (``reader``), nothing to send (``out``, an empty deque)."""

@final
class EngineLock:
    """An engine's lock: ``threading.Lock``'s ``acquire``/``release``/``with`` (not
    reentrant), which the compiled dispatch loop takes and gives back as C calls (a
    ``threading.Lock`` costs two method calls with argument parsing per request)."""

    def acquire(self, blocking: bool = True, timeout: float = -1.0) -> bool:
        """As ``threading.Lock.acquire``: whether the lock was acquired."""
    def release(self) -> None:
        """As ``threading.Lock.release``: RuntimeError when it is not held."""
    def locked(self) -> bool:
        """Whether some thread holds it."""
    def __enter__(self) -> bool: ...
    def __exit__(self, exc_type: object, exc: object, tb: object) -> None: ...

@disjoint_base
class EngineState:
    """The fields of an engine its dispatch loop reads per request and per poll."""

    serving: int
    max_serving: int
    lease: Any
    ready: Any
    orphans: list[Any]
    stopping: bool
    draining: bool
    closed: bool
    poll_interval: float
    _next_sweep: float
    _accept_resume: float
    _drain_request: Any

@disjoint_base
class LeaseState:
    """The fields of a lease (one thread's turn at the poller)."""

    busy: bool
    dispatches: int
    conn: Any
    deferred: list[Any]

@final
class DispatchLoop:
    """``Engine._lead`` compiled (``_dispatch.pxi``).

    :param engine: the :class:`~fastserve._engine.Engine`.
    :param read: the poller's readable event mask.
    :param idle: the deadline marker of an idle parked connection.
    :param send_batch: most responses kept for one send batch.
    """

    def __init__(self, engine: Any, read: int, idle: float, send_batch: int) -> None: ...
    def lead(self, lease: LeaseState) -> None:
        """Wait in the poller and serve, until the engine stops or ``lease`` is no
        longer the engine's."""
