"""Pure-Python HTTP/1.1 request parser: the executable spec of docs/parsing.md.

The compiled twin (``_parser.pyx``) must behave exactly like this module; when
they disagree, this one decides. It is also the runtime parser on PyPy and
under ``FASTSERVE_NO_EXTENSIONS=1``, so the whole-buffer path uses
``bytes.find``, slicing and precompiled regexes rather than per-byte loops.

Flow of :meth:`RequestParser.parse`
    The caller passes every byte received for the current request so far. The
    parser remembers where the current line starts (``_pos``) and how far it
    has searched for its LF (``_scan``), so completed lines are never looked at
    again. For each LF found, the line before it is validated completely
    (request line, then field lines); the bytes after the last LF form the
    *partial line*, which is checked only for what can already be decided.
    Field lines seen for the first time go through one regex first
    (``_fast_field_lines``): a match is a valid, complete line, and anything
    else falls back to the general line-by-line path, which alone decides
    errors. When
    the empty line arrives, framing is decided, the environ is built, the
    progress state is cleared for the next request, and the head's length is
    returned.

Invariants (the rules that make "whole", "byte by byte" and "with the next
request behind it" give the same answer, and that the twin must keep):

1. A line is checked in the order its bytes arrive. The checks on a partial
   line (its length limit; while it is the request line, its method bytes)
   run again on the same bytes, in the same order, when its LF shows up, and
   only then do the complete-line checks run. So the first defect in byte
   order is the one reported, however the data was split.
2. A CR at the end of the received data may be the first half of the line
   end: it is not counted toward a line's length and not judged until the
   next byte arrives.
3. Limits exclude CRLFs. Line limits are enforced on partial lines;
   ``max_head`` and ``max_fields`` when a line is complete.
4. A request line with no SP has a line end in the method position: that is
   ``InvalidMethodError`` (the method is checked byte by byte; CR and LF are
   not tchar), except for an empty line (``CRLF``) before the request line,
   which is skipped (RFC 9112 §2.2).
5. Results (``environ`` ... ``expect_continue``) are replaced only when a head
   is complete; the progress state is cleared at the same moment.

:class:`ChunkedDecoder` follows the same rules for size lines and trailers;
:func:`serialize_response_head` is the response side, refusing anything that
could split a response.
"""

from __future__ import annotations

import re
from typing import Any, Final
from urllib.parse import unquote

from . import _abnf
from .errors import (
    ASTERISK_TARGET_REASON,
    BARE_LF_CHUNK_SIZE_REASON,
    BARE_LF_FIELDS_REASON,
    BARE_LF_REQUEST_LINE_REASON,
    BARE_LF_TRAILER_REASON,
    CHUNK_DATA_END_REASON,
    CHUNK_EXT_REASON,
    CHUNK_SIZE_MISSING_REASON,
    CHUNK_SIZE_TOO_LARGE_REASON,
    CHUNKED_NOT_FINAL_REASON,
    CONNECT_TARGET_REASON,
    CONTENT_LENGTH_DIFFERS_REASON,
    CONTENT_LENGTH_TOO_LARGE_REASON,
    CR_IN_REQUEST_LINE_REASON,
    EMPTY_FIELD_NAME_REASON,
    EMPTY_TARGET_REASON,
    EMPTY_TRANSFER_ENCODING_REASON,
    FIELD_NAME_REASON,
    FIELD_VALUE_REASON,
    NO_COLON_REASON,
    OBS_FOLD_FIRST_REASON,
    REQUEST_LINE_SP_REASON,
    TARGET_BYTE_REASON,
    DuplicateHeaderError,
    HeaderFieldTooLargeError,
    HeadTooLargeError,
    InvalidChunkError,
    InvalidContentLengthError,
    InvalidHeaderError,
    InvalidMethodError,
    InvalidRequestLineError,
    InvalidTargetError,
    InvalidTransferEncodingError,
    InvalidVersionError,
    RequestLineTooLongError,
    TooManyHeadersError,
    UnsupportedTransferEncodingError,
    UnsupportedVersionError,
)

__all__ = ["RequestParser", "ChunkedDecoder", "serialize_response_head"]

Buffer = bytes | bytearray | memoryview

_CR: Final = 0x0D
_SP: Final = 0x20
_HTAB: Final = 0x09
_MAX_LENGTH: Final = _abnf.MAX_BODY_LENGTH


def _char_class(chars: frozenset[int], negate: bool = False) -> bytes:
    """A regex character class (bytes) matching exactly ``chars`` (or their complement)."""
    inner = b"".join(re.escape(bytes([c])) for c in sorted(chars))
    return (b"[^" if negate else b"[") + inner + b"]"


# RFC 9110 §5.6.2: token = 1*tchar
_TCHAR: Final = _char_class(_abnf.TCHAR)
_TOKEN_PREFIX_RE: Final = re.compile(_TCHAR + b"*")
_TOKEN_RE: Final = re.compile(_TCHAR + b"+")
# RFC 9112 §3.2: request-target, visible ASCII only (see _abnf.TARGET_CHAR)
_TARGET_BAD_RE: Final = re.compile(_char_class(_abnf.TARGET_CHAR, negate=True))
# RFC 9110 §5.5: field-value = *( field-vchar / SP / HTAB )
_VALUE_BAD_RE: Final = re.compile(_char_class(_abnf.FIELD_VALUE_CHAR, negate=True))
# RFC 9110 §8.6: Content-Length = 1*DIGIT
_DIGITS_RE: Final = re.compile(rb"[0-9]+")
# RFC 3986 §3.1: scheme = ALPHA *( ALPHA / DIGIT / "+" / "-" / "." ), then "://" authority
_ABSOLUTE_RE: Final = re.compile(rb"[A-Za-z][A-Za-z0-9+\-.]*://([^/?#]*)")
# RFC 9112 §2.3: HTTP-version = HTTP-name "/" DIGIT "." DIGIT
_VERSION_RE: Final = re.compile(rb"HTTP/[0-9]\.[0-9]")
# RFC 9112 §7.1 / §7.1.1, RFC 9110 §5.6.4:
#   chunk-size = 1*HEXDIG
#   chunk-ext  = *( BWS ";" BWS chunk-ext-name [ BWS "=" BWS chunk-ext-val ] )
#   chunk-ext-val = token / quoted-string
#   quoted-string = DQUOTE *( qdtext / quoted-pair ) DQUOTE
#   qdtext = HTAB / SP / %x21 / %x23-5B / %x5D-7E / obs-text
#   quoted-pair = "\" ( HTAB / SP / VCHAR / obs-text )
_QUOTED: Final = rb'"(?:[\t !\x23-\x5b\x5d-\x7e\x80-\xff]|\\[\t \x21-\x7e\x80-\xff])*"'
_TOKEN: Final = _TCHAR + b"+"
_CHUNK_EXT: Final = (
    rb"(?:[ \t]*;[ \t]*" + _TOKEN + rb"(?:[ \t]*=[ \t]*(?:" + _TOKEN + b"|" + _QUOTED + b"))?)*"
)
_HEX_RE: Final = re.compile(_char_class(_abnf.HEXDIG) + b"+")
_CHUNK_EXT_RE: Final = re.compile(_CHUNK_EXT)
# RFC 9112 §5: field-line = field-name ":" OWS field-value OWS, CRLF; a line that
# matches is valid (the general path would accept it with the same name/value).
_FIELD_LINE_RE: Final = re.compile(
    b"(" + _TOKEN + rb"):[ \t]*(" + _char_class(_abnf.FIELD_VALUE_CHAR) + rb"*)\r\n"
)

_KNOWN_CODINGS: Final = frozenset(c.encode("ascii") for c in _abnf.KNOWN_TRANSFER_CODINGS)
_VERSIONS: Final = {b"HTTP/1.0": "HTTP/1.0", b"HTTP/1.1": "HTTP/1.1"}
_OWS: Final = _abnf.OWS


_KEYS: dict[bytes, str] = {}
_KEYS_MAX: Final = 512  # bounded: clients choose the names


def _environ_key(name: bytes) -> str:
    """The environ key of field ``name`` (:func:`fastserve._abnf.environ_key`), cached."""
    key = _abnf.environ_key(name)
    if len(_KEYS) < _KEYS_MAX:
        _KEYS[name] = key
    return key


def _as_buffer(data: Buffer) -> bytes | bytearray:
    """bytes and bytearray are searched in place; a memoryview is copied once."""
    if isinstance(data, memoryview):
        return data.tobytes()
    return data


def _line_length(data: bytes | bytearray, start: int, end: int) -> int:
    """Length of a partial line ``data[start:end]``; a trailing CR may be half a CRLF."""
    n = end - start
    if n and data[end - 1] == _CR:
        n -= 1
    return n


def _elements(values: list[bytes]) -> list[bytes]:
    """RFC 9110 §5.6.1: the elements of a comma-separated list, OWS trimmed."""
    return [e.strip(_OWS) for v in values for e in v.split(b",")]


def _check_field_line(
    data: bytes | bytearray, start: int, end: int, after_field: bool
) -> tuple[bytes, bytes] | None:
    """Validate one complete field line ``data[start:end]`` (CRLF excluded).

    RFC 9112 §5: ``field-line = field-name ":" OWS field-value OWS``. Returns
    ``(name, value)`` with the value's leading OWS removed, or ``None`` for an
    obs-fold line (RFC 9112 §5.2), which is then valid only ``after_field``.
    """
    first = data[start]
    if first == _SP or first == _HTAB:
        # RFC 9112 §5.2: obs-fold; the caller appends the whole line (its
        # whitespace kept) to the previous field's value.
        if not after_field:
            raise InvalidHeaderError(OBS_FOLD_FIRST_REASON)
        if _VALUE_BAD_RE.search(data, start, end) is not None:
            raise InvalidHeaderError(FIELD_VALUE_REASON)
        return None
    colon = data.find(b":", start, end)
    if colon < 0:
        raise InvalidHeaderError(NO_COLON_REASON)
    # RFC 9110 §5.1: field-name = token; RFC 9112 §5.1: no whitespace before ":"
    if colon == start:
        raise InvalidHeaderError(EMPTY_FIELD_NAME_REASON)
    if _TOKEN_RE.fullmatch(data, start, colon) is None:
        raise InvalidHeaderError(FIELD_NAME_REASON)
    # RFC 9110 §5.5: NUL, CR, LF and other CTLs (HTAB aside) are refused
    if _VALUE_BAD_RE.search(data, colon + 1, end) is not None:
        raise InvalidHeaderError(FIELD_VALUE_REASON)
    return bytes(data[start:colon]), bytes(data[colon + 1 : end]).lstrip(_OWS)


# Host and Content-Type (name -> reason); the fields framing and persistence read
_SINGLETONS: Final = _abnf.SINGLETON_FIELDS
_INTERPRETED: Final = _abnf.FRAMING_FIELDS


def _check_singleton(fields: list[list[bytes]], lower: bytes) -> None:
    """Refuse a second Host or Content-Type field line."""
    for other in fields:
        if other[0] == lower:
            raise DuplicateHeaderError(_SINGLETONS[lower])


def _path_info(path: bytes) -> str:
    """PATH_INFO as werkzeug 3.1 builds it: percent-decoded, UTF-8 (replace), latin-1."""
    text = path.decode("latin-1")
    if b"%" in path:
        return unquote(text).encode("utf-8").decode("latin-1")
    return text


def _split_path(rest: bytes) -> tuple[bytes, bytes]:
    """``path ["?" query] ["#" fragment]`` -> (path, query); the fragment is dropped."""
    hash_ = rest.find(b"#")
    if hash_ >= 0:
        rest = rest[:hash_]
    qmark = rest.find(b"?")
    if qmark < 0:
        return rest, b""
    return rest[:qmark], rest[qmark + 1 :]


class RequestParser:
    """Incremental HTTP/1.1 request-head parser (RFC 9112 §2-§6); see docs/parsing.md.

    :param max_request_line: longest request line accepted, CRLF excluded (414 beyond).
    :param max_field_line: longest field line accepted, CRLF excluded (431 beyond).
    :param max_head: most bytes of request line plus field lines, CRLFs excluded,
        plus 2 per skipped empty line (431 beyond).
    :param max_fields: most field lines, obs-fold lines included (431 beyond).

    :meth:`set_base` gives the per-connection entries every ``environ`` starts with.
    """

    __slots__ = (
        "max_request_line",
        "max_field_line",
        "max_head",
        "max_fields",
        "environ",
        "method",
        "version",
        "content_length",
        "chunked",
        "keep_alive",
        "must_close",
        "expect_continue",
        "_pos",
        "_scan",
        "_mscan",
        "_method_end",
        "_head_size",
        "_in_fields",
        "_fields",
        "_lines",
        "_request",
        "_base",
    )

    def __init__(
        self,
        max_request_line: int = _abnf.MAX_REQUEST_LINE,
        max_field_line: int = _abnf.MAX_FIELD_LINE,
        max_head: int = _abnf.MAX_HEAD,
        max_fields: int = _abnf.MAX_FIELDS,
    ) -> None:
        self.max_request_line = max_request_line
        self.max_field_line = max_field_line
        self.max_head = max_head
        self.max_fields = max_fields
        self.environ: dict[str, Any] = {}
        self.method = ""
        self.version = ""
        self.content_length = 0
        self.chunked = False
        self.keep_alive = False
        self.must_close = False
        self.expect_continue = False
        self._base: dict[str, Any] = {}
        self.reset()

    def set_base(self, base: dict[Any, Any], /) -> None:
        """Start every later request's ``environ`` with a copy of ``base``'s entries.

        For the entries that are the same for every request on the connection
        (``wsgi.*``, ``SERVER_*``, ``REMOTE_*``, ...); ``base`` is copied now, and
        ``{}`` removes them. Its keys may not be ones a head sets (``REQUEST_METHOD``
        ... ``SERVER_PROTOCOL``, ``CONTENT_TYPE``, ``CONTENT_LENGTH``, ``HTTP_*``:
        :func:`fastserve._abnf.is_request_key`), so an environ holds the same entries
        as the head's environ updated with ``base``.

        :raises TypeError: ``base`` is not a dict.
        :raises ValueError: a key of ``base`` is a request key.
        """
        if not isinstance(base, dict):
            raise TypeError(f"set_base() needs a dict, not {type(base).__name__}")
        for key in base:
            if _abnf.is_request_key(key):
                raise ValueError(f"set_base(): {key!r} is set by the request head")
        self._base = dict(base)

    def reset(self) -> None:
        """Forget any partly parsed head; the next :meth:`parse` starts a new request."""
        self._pos = 0  # start of the current line in the caller's buffer
        self._scan = 0  # where the search for the current line's LF resumes
        self._mscan = 0  # request line: method bytes before this offset are tchar
        self._method_end = -1  # request line: offset of its first SP, once seen
        self._head_size = 0  # bytes counted toward max_head so far
        self._in_fields = False  # the request line is complete
        self._fields: list[list[bytes]] = []  # [lower-case name, name, value]
        self._lines = 0  # field lines so far, obs-fold lines included
        self._request: tuple[str, str, str, str, str, bytes | None] | None = None

    def parse(self, data: Buffer, /) -> int:
        """Parse the head at the start of ``data``; see docs/parsing.md.

        :param data: the bytes received for this request so far (the same bytes,
            extended, across calls that returned 0).
        :return: 0 while the head is incomplete, else its length in bytes.
        :raises fastserve.errors.HTTPParseError: at the first defect.
        """
        buf = _as_buffer(data)
        pos = self._pos
        scan = self._scan
        while True:
            if scan == pos and self._in_fields:
                pos = scan = self._fast_field_lines(buf, pos)
                if buf.startswith(b"\r\n", pos):
                    return self._finish(pos + 2)
            lf = buf.find(b"\n", scan)
            if lf < 0:
                self._check_partial(buf, pos, len(buf))
                self._pos = pos
                self._scan = len(buf)
                return 0
            self._check_partial(buf, pos, lf)
            if not self._in_fields:
                pos = self._request_line_end(buf, pos, lf)
            else:
                # RFC 9112 §2.2: a bare LF is refused
                if lf == pos or buf[lf - 1] != _CR:
                    raise InvalidHeaderError(BARE_LF_FIELDS_REASON)
                if lf == pos + 1:
                    return self._finish(lf + 1)
                self._field_line(buf, pos, lf - 1)
                pos = lf + 1
            scan = pos

    def _check_partial(self, buf: bytes | bytearray, pos: int, end: int) -> None:
        """Checks that need only the bytes so far of the line ``buf[pos:end]`` (no LF in it)."""
        length = _line_length(buf, pos, end)
        if self._in_fields:
            # RFC 9112 §5 / RFC 6585 §5: one field line, CRLF excluded
            if length > self.max_field_line:
                raise HeaderFieldTooLargeError()
            return
        limit = self.max_request_line
        # Offset of the byte whose arrival makes the line too long (invariant 2:
        # a CR right at the limit is judged by the byte after it).
        too_long_at = -1
        if length > limit:
            too_long_at = limit + 1 if buf[pos + limit] == _CR else limit
        if self._method_end < 0:
            # RFC 9112 §3.1 / RFC 9110 §9.1: method = token, checked as it arrives
            start = max(pos, self._mscan)
            bad = _TOKEN_PREFIX_RE.match(buf, start, end).end()  # type: ignore[union-attr]
            self._mscan = bad
            if bad < end:
                byte = buf[bad]
                offset = bad - pos
                if byte == _SP and offset > 0:
                    self._method_end = bad
                elif byte == _CR and offset == 0:
                    # maybe an empty line before the request line (RFC 9112 §2.2);
                    # a byte after the CR (not LF: there is none here) settles it
                    if end - pos > 1:
                        raise InvalidMethodError()
                elif too_long_at < 0 or offset <= too_long_at:
                    raise InvalidMethodError()
        if too_long_at >= 0:
            # RFC 9112 §3: request-line length; RFC 9110 §15.5.15: 414
            raise RequestLineTooLongError()

    def _request_line_end(self, buf: bytes | bytearray, pos: int, lf: int) -> int:
        """A line of the request-line state ended at ``lf``; return the next line's start."""
        if lf == pos + 1 and buf[pos] == _CR:
            # RFC 9112 §2.2: empty lines before the request line are skipped, but
            # count toward max_head so an endless stream of them is refused.
            self._head_size += 2
            if self._head_size > self.max_head:
                raise HeadTooLargeError()
            self._mscan = lf + 1
            return lf + 1
        if self._method_end < 0:
            # the line end arrived in the method position (invariant 4)
            raise InvalidMethodError()
        if buf[lf - 1] != _CR:
            raise InvalidRequestLineError(BARE_LF_REQUEST_LINE_REASON)
        end = lf - 1
        self._head_size += end - pos
        if self._head_size > self.max_head:
            raise HeadTooLargeError()
        self._request = self._request_line(buf, pos, end)
        self._in_fields = True
        return lf + 1

    def _request_line(
        self, buf: bytes | bytearray, pos: int, end: int
    ) -> tuple[str, str, str, str, str, bytes | None]:
        """RFC 9112 §3: ``method SP request-target SP HTTP-version``, CRLF excluded.

        Checked in this order: stray CR, SP count, target, version. Returns
        (method, version, uri, path_info, query, host from an absolute-form target).
        """
        if buf.find(b"\r", pos, end) >= 0:
            raise InvalidRequestLineError(CR_IN_REQUEST_LINE_REASON)
        sp1 = self._method_end
        sp2 = buf.find(b" ", sp1 + 1, end)
        if sp2 < 0 or buf.find(b" ", sp2 + 1, end) >= 0:
            raise InvalidRequestLineError(REQUEST_LINE_SP_REASON)
        method = buf[pos:sp1].decode("ascii")
        target = bytes(buf[sp1 + 1 : sp2])
        uri, path, query, host = _parse_target(method, target)
        # RFC 9112 §2.3: HTTP-version; RFC 9110 §15.6.6: 505 for other versions
        raw_version = bytes(buf[sp2 + 1 : end])
        version = _VERSIONS.get(raw_version)
        if version is None:
            if _VERSION_RE.fullmatch(raw_version):
                raise UnsupportedVersionError()
            raise InvalidVersionError()
        return method, version, uri, path, query, host

    def _fast_field_lines(self, buf: bytes | bytearray, pos: int) -> int:
        """Take the complete, valid field lines from ``pos`` on; return where they stop.

        A line that matches ``_FIELD_LINE_RE`` within ``max_field_line`` is one
        the general path would accept with the same name and value, and the
        limits are checked in the same order, so this changes nothing but speed.
        Only lines not searched before get here: partial lines are not rescanned.
        """
        head_size = self._head_size
        lines = self._lines
        max_line = self.max_field_line
        max_head = self.max_head
        max_fields = self.max_fields
        fields = self._fields
        match_line = _FIELD_LINE_RE.match
        try:
            while (match := match_line(buf, pos)) is not None:
                end = match.end()
                length = end - 2 - pos
                if length > max_line:
                    break
                # RFC 6585 §5
                head_size += length
                if head_size > max_head:
                    raise HeadTooLargeError()
                lines += 1
                if lines > max_fields:
                    raise TooManyHeadersError()
                name, value = match.group(1, 2)
                lower = name.lower()
                if lower in _SINGLETONS:
                    _check_singleton(fields, lower)
                fields.append([lower, name, value])
                pos = end
        finally:
            self._head_size = head_size
            self._lines = lines
        return pos

    def _count_line(self, length: int) -> None:
        """RFC 6585 §5: limits on the whole head and on the number of field lines."""
        self._head_size += length
        if self._head_size > self.max_head:
            raise HeadTooLargeError()
        self._lines += 1
        if self._lines > self.max_fields:
            raise TooManyHeadersError()

    def _field_line(self, buf: bytes | bytearray, pos: int, end: int) -> None:
        """One complete field line ``buf[pos:end]`` (CRLF excluded)."""
        self._count_line(end - pos)
        fields = self._fields
        parsed = _check_field_line(buf, pos, end, after_field=bool(fields))
        if parsed is None:
            # RFC 9112 §5.2: obs-fold replaced by its whitespace, CRLF removed
            fields[-1][2] += bytes(buf[pos:end])
            return
        self._add_field(*parsed)

    def _add_field(self, name: bytes, value: bytes) -> None:
        """Record a validated field line."""
        fields = self._fields
        lower = name.lower()
        if lower in _SINGLETONS:
            _check_singleton(fields, lower)
        fields.append([lower, name, value])

    def _finish(self, consumed: int) -> int:
        """The empty line arrived: decide framing, build the environ, reset progress."""
        assert self._request is not None
        method, version, uri, path, query, host = self._request
        environ: dict[str, Any] = {
            "REQUEST_METHOD": method,
            "SCRIPT_NAME": "",
            "PATH_INFO": path,
            "QUERY_STRING": query,
            "REQUEST_URI": uri,
            "RAW_URI": uri,
            "SERVER_PROTOCOL": version,
            **self._base,
        }
        te: list[bytes] = []
        cl: list[bytes] = []
        connection: list[bytes] = []
        expect_continue = False
        for lower, name, value in self._fields:
            if lower in _INTERPRETED:
                if lower == b"transfer-encoding":
                    te.append(value)
                elif lower == b"content-length":
                    cl.append(value)
                elif lower == b"connection":
                    connection.append(value)
                else:
                    # RFC 9110 §10.1.1
                    expect_continue |= value.strip(_OWS).lower() == b"100-continue"
            if b"_" in name:
                continue  # werkzeug drops them: "_" and "-" map to the same key
            key = _KEYS.get(name)
            if key is None:
                key = _environ_key(name)
            text = value.decode("latin-1")
            previous = environ.get(key)
            environ[key] = text if previous is None else previous + "," + text
        if host is not None:
            environ["HTTP_HOST"] = host.decode("ascii")

        must_close = False
        if te:
            content_length = -1
            chunked = True
            _check_transfer_coding(te)
            # RFC 9112 §6.1/§6.3: TE with CL, or TE in HTTP/1.0: framing in doubt
            must_close = bool(cl) or version == "HTTP/1.0"
            if cl:
                environ["CONTENT_LENGTH"] = cl[-1].decode("latin-1")
        elif cl:
            chunked = False
            content_length, plain = _content_length(cl)
            if not plain:
                environ["CONTENT_LENGTH"] = str(content_length)
        else:
            chunked = False
            content_length = 0

        # RFC 9112 §9.3: persistence
        tokens = [t.lower() for t in _elements(connection)] if connection else []
        if must_close or b"close" in tokens:
            keep_alive = False
        elif version == "HTTP/1.1":
            keep_alive = True
        else:
            keep_alive = b"keep-alive" in tokens

        self.environ = environ
        self.method = method
        self.version = version
        self.content_length = content_length
        self.chunked = chunked
        self.keep_alive = keep_alive
        self.must_close = must_close
        self.expect_continue = expect_continue
        self.reset()
        return consumed


def _parse_target(method: str, target: bytes) -> tuple[str, str, str, bytes | None]:
    """RFC 9112 §3.2 request-target -> (REQUEST_URI, PATH_INFO, QUERY_STRING, host).

    ``host`` is the authority of an absolute-form target without userinfo, else None.
    """
    if not target:
        raise InvalidTargetError(EMPTY_TARGET_REASON)
    if _TARGET_BAD_RE.search(target) is not None:
        raise InvalidTargetError(TARGET_BYTE_REASON)
    host: bytes | None = None
    if method == "CONNECT":
        # RFC 9112 §3.2.3: authority-form = uri-host ":" port, only with CONNECT
        name, colon, port = target.rpartition(b":")
        if (
            not colon
            or not name
            or _DIGITS_RE.fullmatch(port) is None
            or any(c in name for c in b"/?#@")
        ):
            raise InvalidTargetError(CONNECT_TARGET_REASON)
        return target.decode("ascii"), "", "", None
    if target[0] == 0x2F:
        # RFC 9112 §3.2.1: origin-form; werkzeug collapses a leading run of "/"
        if target.startswith(b"//"):
            target = b"/" + target.lstrip(b"/")
        path, query = _split_path(target)
    elif target == b"*":
        # RFC 9112 §3.2.4: asterisk-form, only with OPTIONS
        if method != "OPTIONS":
            raise InvalidTargetError(ASTERISK_TARGET_REASON)
        path, query = target, b""
    else:
        # RFC 9112 §3.2.2: absolute-form; RFC 9110 §4.2.4: userinfo is never used
        match = _ABSOLUTE_RE.match(target)
        if match is None:
            raise InvalidTargetError()
        # RFC 3986 §3.2 (the shared rule, see _abnf.authority_host)
        authority = match.group(1)
        host = authority[_abnf.authority_host(authority) :]
        path, query = _split_path(target[match.end() :])
    return target.decode("ascii"), _path_info(path), query.decode("ascii"), host


def _check_transfer_coding(values: list[bytes]) -> None:
    """RFC 9112 §6.1, §6.3: the codings must be known, and chunked final and once."""
    codings = [c.lower() for c in _elements(values) if c]
    if not codings:
        raise InvalidTransferEncodingError(EMPTY_TRANSFER_ENCODING_REASON)
    for coding in codings:
        if coding not in _KNOWN_CODINGS:
            raise UnsupportedTransferEncodingError()
    if codings[-1] != b"chunked" or codings.count(b"chunked") != 1:
        raise InvalidTransferEncodingError(CHUNKED_NOT_FINAL_REASON)


def _content_length(values: list[bytes]) -> tuple[int, bool]:
    """RFC 9110 §8.6, RFC 9112 §6.3: (length, whether it was one plain field line)."""
    elements = _elements(values)
    length = -1
    for element in elements:
        if _DIGITS_RE.fullmatch(element) is None:
            raise InvalidContentLengthError()
        value = int(element)
        if value > _MAX_LENGTH:
            raise InvalidContentLengthError(CONTENT_LENGTH_TOO_LARGE_REASON)
        if length >= 0 and value != length:
            raise InvalidContentLengthError(CONTENT_LENGTH_DIFFERS_REASON)
        length = value
    return length, len(elements) == 1


# ChunkedDecoder states
_SIZE: Final = 0  # expecting a chunk-size line
_DATA: Final = 1  # inside chunk data
_DATA_END: Final = 2  # expecting the CRLF after chunk data
_TRAILER: Final = 3  # expecting a trailer field line or the final CRLF
_DONE: Final = 4


class ChunkedDecoder:
    """Incremental decoder of a chunked request body (RFC 9112 §7.1).

    :param max_field_line: longest chunk-size line or trailer line, CRLF excluded (431).
    :param max_head: most bytes of trailer field lines, CRLFs excluded (431).
    :param max_fields: most trailer field lines (431).
    """

    __slots__ = (
        "max_field_line",
        "max_head",
        "max_fields",
        "done",
        "_state",
        "_remaining",
        "_scan",
        "_trailer_size",
        "_trailer_lines",
    )

    def __init__(
        self,
        max_field_line: int = _abnf.MAX_FIELD_LINE,
        max_head: int = _abnf.MAX_HEAD,
        max_fields: int = _abnf.MAX_FIELDS,
    ) -> None:
        self.max_field_line = max_field_line
        self.max_head = max_head
        self.max_fields = max_fields
        #: True once the last chunk, the trailer section and its final CRLF are in.
        self.done = False
        self._state = _SIZE
        self._remaining = 0  # bytes of chunk data still to come
        self._scan = 0  # bytes of the pending line already searched for LF
        self._trailer_size = 0
        self._trailer_lines = 0

    def decode(self, data: Buffer, /) -> tuple[bytes, int]:
        """Decode what ``data`` holds of the chunked body.

        :param data: bytes that follow what earlier calls consumed.
        :return: ``(decoded body bytes, bytes of data consumed)``; a partial
            size line, trailer line or post-data CRLF is left unconsumed.
        :raises fastserve.errors.HTTPParseError: at the first framing defect.
        """
        buf = _as_buffer(data)
        end = len(buf)
        pos = 0
        out: list[bytes] = []
        state = self._state
        while pos < end and state != _DONE:
            if state == _DATA:
                take = min(self._remaining, end - pos)
                out.append(bytes(buf[pos : pos + take]))
                pos += take
                self._remaining -= take
                if not self._remaining:
                    state = _DATA_END
            elif state == _DATA_END:
                # RFC 9112 §7.1: chunk-data is followed by exactly CRLF
                if buf[pos] != _CR or (end - pos > 1 and buf[pos + 1] != 0x0A):
                    raise InvalidChunkError(CHUNK_DATA_END_REASON)
                if end - pos < 2:
                    break
                pos += 2
                state = _SIZE
            else:
                lf = buf.find(b"\n", pos + self._scan)
                if lf < 0:
                    if _line_length(buf, pos, end) > self.max_field_line:
                        raise HeaderFieldTooLargeError()
                    self._scan = end - pos
                    break
                self._scan = 0
                if _line_length(buf, pos, lf) > self.max_field_line:
                    raise HeaderFieldTooLargeError()
                bare = lf == pos or buf[lf - 1] != _CR
                if state == _SIZE:
                    if bare:
                        raise InvalidChunkError(BARE_LF_CHUNK_SIZE_REASON)
                    state = self._size_line(buf, pos, lf - 1)
                else:
                    if bare:
                        raise InvalidHeaderError(BARE_LF_TRAILER_REASON)
                    if lf == pos + 1:
                        state = _DONE
                        self.done = True
                    else:
                        self._trailer_line(buf, pos, lf - 1)
                pos = lf + 1
        self._state = state
        return b"".join(out), pos

    def _size_line(self, buf: bytes | bytearray, pos: int, end: int) -> int:
        """``chunk-size [ chunk-ext ]`` (CRLF excluded); return the next state."""
        match = _HEX_RE.match(buf, pos, end)
        if match is None:
            raise InvalidChunkError(CHUNK_SIZE_MISSING_REASON)
        if _CHUNK_EXT_RE.fullmatch(buf, match.end(), end) is None:
            raise InvalidChunkError(CHUNK_EXT_REASON)
        size = int(match.group(), 16)
        # RFC 9112 §7.1: guard against overflow of chunk-size (judged after the syntax)
        if size > _MAX_LENGTH:
            raise InvalidChunkError(CHUNK_SIZE_TOO_LARGE_REASON)
        if size == 0:
            return _TRAILER
        self._remaining = size
        return _DATA

    def _trailer_line(self, buf: bytes | bytearray, pos: int, end: int) -> None:
        """RFC 9112 §7.1.2: a trailer field line, same rules and limits as the head; dropped."""
        self._trailer_size += end - pos
        if self._trailer_size > self.max_head:
            raise HeadTooLargeError()
        self._trailer_lines += 1
        if self._trailer_lines > self.max_fields:
            raise TooManyHeadersError()
        _check_field_line(buf, pos, end, after_field=self._trailer_lines > 1)


# RFC 9110 §15: status-code = 3DIGIT; reason-phrase without CR/LF (NUL refused too)
_STATUS_RE: Final = re.compile(r"([0-9]{3})(?: [^\r\n\x00]*)?", re.ASCII)
_NAME_RE: Final = re.compile(_TOKEN.decode("latin-1"), re.ASCII)
_SPLITTERS: Final = ("\r", "\n", "\x00")
_DIGITS_STR_RE: Final = re.compile(r"[0-9]+", re.ASCII)


def _latin1(text: str, what: str) -> bytes:
    try:
        return text.encode("latin-1")
    except UnicodeEncodeError:
        raise ValueError(f"{what} is not latin-1 encodable: {text!r}") from None


def serialize_response_head(
    version: bytes, status: str, headers: list[tuple[str, str]], preamble: bytes
) -> tuple[bytes, int, int, int]:
    """Build a response's status line and the application's header lines.

    :param version: the status line's HTTP-version, e.g. ``b"HTTP/1.1"``.
    :param status: ``"3DIGIT [SP reason]"``, the code 100..999.
    :param headers: ``(name, value)`` pairs of ``str``; names are tokens and
        values hold no CR, LF or NUL (RFC 9110 §5.5).
    :param preamble: bytes inserted after the status line (e.g. Server, Date).
    :return: ``(head, status code, Content-Length or -1, flags)``; flags bit 1:
        ``Connection: close``, bit 2: Transfer-Encoding present, bit 4:
        Content-Length present. The head has no final empty line.
    :raises ValueError: a status, name or value that could split the response,
        is not latin-1, or an invalid Content-Length.
    :raises TypeError: a status, name or value that is not ``str``.
    """
    if not isinstance(status, str):
        raise TypeError(f"status must be str, not {type(status).__name__}")
    match = _STATUS_RE.fullmatch(status)
    if match is None:
        raise ValueError(f"Invalid status {status!r}")
    code = int(match.group(1))
    if code < 100:
        raise ValueError(f"Invalid status code {code}")
    parts = [version, b" ", _latin1(status, "status"), b"\r\n", preamble]
    content_length = -1
    flags = 0
    for name, value in headers:
        if not isinstance(name, str) or not isinstance(value, str):
            raise TypeError(f"Header names and values must be str: {name!r}: {value!r}")
        if _NAME_RE.fullmatch(name) is None:
            raise ValueError(f"Invalid header name {name!r}")
        if any(c in value for c in _SPLITTERS):
            raise ValueError(f"Header value contains CR, LF or NUL: {name}: {value!r}")
        parts += (name.encode("ascii"), b": ", _latin1(value, "header value"), b"\r\n")
        lower = name.lower()
        if lower == "content-length":
            # RFC 9110 §8.6: Content-Length = 1*DIGIT; the last one counts
            digits = value.strip(" \t")
            if _DIGITS_STR_RE.fullmatch(digits) is None or int(digits) > _MAX_LENGTH:
                raise ValueError(f"Invalid Content-Length {value!r}")
            content_length = int(digits)
            flags |= 4
        elif lower == "transfer-encoding":
            flags |= 2
        elif lower == "connection":
            # RFC 9112 §9.6: the "close" connection option
            if any(t.strip(" \t").lower() == "close" for t in value.split(",")):
                flags |= 1
    return b"".join(parts), code, content_length, flags
