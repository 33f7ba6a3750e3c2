"""Errors raised while parsing a request.

Every class carries ``status``: the HTTP status the server answers with, so the
connection layer needs no separate error-to-status table (h11's
``error_status_hint`` idea). Both parser implementations raise exactly these
classes; the compiled one imports them from here.

Every reason string is spelled here and only here: a class's ``default_reason``,
or one of the named ``*_REASON`` constants below for a more precise defect.
Reasons reach response bodies and log lines, so both parsers raise with these
objects and never with their own text (tests/parser/test_differential.py
compares ``str(exc)`` of the two builds).
"""

from __future__ import annotations

from typing import Final

__all__ = [
    "HTTPParseError",
    "BadRequestError",
    "InvalidRequestLineError",
    "InvalidMethodError",
    "InvalidTargetError",
    "InvalidVersionError",
    "UnsupportedVersionError",
    "RequestLineTooLongError",
    "InvalidHeaderError",
    "DuplicateHeaderError",
    "HeaderFieldTooLargeError",
    "HeadTooLargeError",
    "TooManyHeadersError",
    "InvalidContentLengthError",
    "InvalidTransferEncodingError",
    "UnsupportedTransferEncodingError",
    "InvalidChunkError",
    "BodyTooLargeError",
    "IncompleteRequestError",
]


# --- reasons more precise than a class's default_reason --------------------------------------
# Grouped by the rule they report; the RFC section is the one docs/parsing.md cites.

# RFC 9112 §2.2, §3: the request line
BARE_LF_REQUEST_LINE_REASON: Final = "Bare LF in the request line"
CR_IN_REQUEST_LINE_REASON: Final = "CR not followed by LF in the request line"
REQUEST_LINE_SP_REASON: Final = "The request line needs exactly two SP"
# RFC 9112 §3.2: the request-target
EMPTY_TARGET_REASON: Final = "Empty request-target"
TARGET_BYTE_REASON: Final = "Invalid byte in request-target"
CONNECT_TARGET_REASON: Final = "CONNECT needs host:port"
ASTERISK_TARGET_REASON: Final = "* is only valid with OPTIONS"
# RFC 9112 §3.2.2 absolute-form, RFC 3986 §3.2 authority, RFC 9110 §4.2.1
EMPTY_HOST_REASON: Final = "Empty host in absolute-form target"
USERINFO_REASON: Final = "Invalid userinfo in absolute-form target"
HOST_REASON: Final = "Invalid host in absolute-form target"
IP_LITERAL_REASON: Final = "Invalid IP literal in absolute-form target"
PORT_REASON: Final = "Invalid port in absolute-form target"
IDNA_REASON: Final = "Host label is not valid IDNA (xn--) in absolute-form target"
# RFC 9112 §2.2, §5, §5.2; RFC 9110 §5.1, §5.5: field lines (trailers too)
BARE_LF_FIELDS_REASON: Final = "Bare LF in the field section"
OBS_FOLD_FIRST_REASON: Final = "obs-fold before any field line"
NO_COLON_REASON: Final = "Field line without a colon"
EMPTY_FIELD_NAME_REASON: Final = "Empty field name"
FIELD_NAME_REASON: Final = "Invalid field name"
FIELD_VALUE_REASON: Final = "Invalid character in field value"
DUPLICATE_HOST_REASON: Final = "More than one Host field"
DUPLICATE_CONTENT_TYPE_REASON: Final = "More than one Content-Type field"
# RFC 9110 §8.6, RFC 9112 §6.3: Content-Length
CONTENT_LENGTH_TOO_LARGE_REASON: Final = "Content-Length too large"
CONTENT_LENGTH_DIFFERS_REASON: Final = "Differing Content-Length values"
# RFC 9112 §6.1, §6.3: Transfer-Encoding
EMPTY_TRANSFER_ENCODING_REASON: Final = "Empty Transfer-Encoding"
CHUNKED_NOT_FINAL_REASON: Final = "chunked must be the final coding, once"
# RFC 9112 §7.1: chunked framing
CHUNK_SIZE_MISSING_REASON: Final = "Missing chunk size"
CHUNK_EXT_REASON: Final = "Invalid chunk extension"
CHUNK_SIZE_TOO_LARGE_REASON: Final = "Chunk size too large"
BARE_LF_CHUNK_SIZE_REASON: Final = "Bare LF in a chunk-size line"
CHUNK_DATA_END_REASON: Final = "Chunk data not followed by CRLF"
BARE_LF_TRAILER_REASON: Final = "Bare LF in the trailer section"


class HTTPParseError(Exception):
    """A request the server must refuse.

    :param reason: a short, human-readable description of the defect; it is
        logged and sent as the response body.
    """

    #: HTTP status code of the response that refuses the request.
    status: int = 400
    #: Default reason when none is given.
    default_reason: str = "Bad Request"

    def __init__(self, reason: str | None = None) -> None:
        self.reason = reason if reason is not None else self.default_reason
        super().__init__(self.reason)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.reason!r})"


class BadRequestError(HTTPParseError):
    """400: the message is malformed (RFC 9110 §15.5.1)."""


class InvalidRequestLineError(BadRequestError):
    """400: the request line does not match RFC 9112 §3."""

    default_reason = "Invalid request line"


class InvalidMethodError(InvalidRequestLineError):
    """400: the method is not a token (RFC 9110 §9.1); also what a TLS
    ClientHello or other non-HTTP bytes on the plain port get."""

    default_reason = "Invalid method"


class InvalidTargetError(InvalidRequestLineError):
    """400: the request-target is not in a form RFC 9112 §3.2 allows."""

    default_reason = "Invalid request target"


class InvalidVersionError(InvalidRequestLineError):
    """400: the HTTP-version is malformed (RFC 9112 §2.3)."""

    default_reason = "Invalid HTTP version"


class UnsupportedVersionError(HTTPParseError):
    """505: a well-formed HTTP-version other than 1.0 and 1.1 (RFC 9110 §15.6.6)."""

    status = 505
    default_reason = "HTTP Version Not Supported"


class RequestLineTooLongError(HTTPParseError):
    """414: the request line exceeds the limit (RFC 9112 §3, RFC 9110 §15.5.15)."""

    status = 414
    default_reason = "Request line too long"


class InvalidHeaderError(BadRequestError):
    """400: a field line violates RFC 9110 §5.5 / RFC 9112 §5."""

    default_reason = "Invalid header field"


class DuplicateHeaderError(InvalidHeaderError):
    """400: a field that must appear at most once appeared again (Host:
    RFC 9112 §3.2; Content-Type: RFC 9110 §8.3)."""

    default_reason = "Duplicate header field"


class HeaderFieldTooLargeError(HTTPParseError):
    """431: one field line exceeds the limit (RFC 6585 §5)."""

    status = 431
    default_reason = "Header field too large"


class HeadTooLargeError(HTTPParseError):
    """431: the whole head (or trailer section) exceeds the limit (RFC 6585 §5)."""

    status = 431
    default_reason = "Request header section too large"


class TooManyHeadersError(HTTPParseError):
    """431: more field lines than the limit (RFC 6585 §5)."""

    status = 431
    default_reason = "Too many header fields"


class InvalidContentLengthError(BadRequestError):
    """400: Content-Length is not 1*DIGIT, overflows, or its values differ
    (RFC 9110 §8.6, RFC 9112 §6.3)."""

    default_reason = "Invalid Content-Length"


class InvalidTransferEncodingError(BadRequestError):
    """400: Transfer-Encoding whose final coding is not chunked, or that applies
    chunked twice (RFC 9112 §6.1, §6.3)."""

    default_reason = "Invalid Transfer-Encoding"


class UnsupportedTransferEncodingError(HTTPParseError):
    """501: a transfer coding the server does not know (RFC 9112 §6.1)."""

    status = 501
    default_reason = "Unsupported Transfer-Encoding"


class InvalidChunkError(BadRequestError):
    """400: malformed chunked body framing (RFC 9112 §7.1)."""

    default_reason = "Invalid chunked body"


class BodyTooLargeError(HTTPParseError):
    """413: the body exceeds ``max_content_length`` (RFC 9110 §15.5.14)."""

    status = 413
    default_reason = "Request body too large"


class IncompleteRequestError(BadRequestError):
    """400: the data ended before the request head did (only
    :func:`fastserve.parse_request` raises it; the incremental parser asks for
    more data instead)."""

    default_reason = "Incomplete request head"
