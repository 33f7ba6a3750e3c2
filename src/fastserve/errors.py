"""Errors raised while parsing a request.

Every class carries ``status``: the HTTP status the server answers with, so the
connection layer needs no separate error-to-status table (h11's
``error_status_hint`` idea). Both parser implementations raise exactly these
classes; the compiled one imports them from here.
"""

from __future__ import annotations

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
