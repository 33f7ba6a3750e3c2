"""RFC 9110/9112 grammar as byte tables, the default limits, and the authority rule.

The single source of truth for both parser implementations: the pure-Python
twin uses these sets directly, the compiled parser copies them into C lookup
tables when it is imported. That holds for the character classes, the field
names the parsers interpret and the field name -> environ key rule too. The one
rule both call rather than copy is :func:`authority_host` (RFC 3986 §3.2), run
only for absolute-form targets.
"""

from __future__ import annotations

import re
from typing import Final

from .errors import (
    DUPLICATE_CONTENT_TYPE_REASON,
    DUPLICATE_HOST_REASON,
    EMPTY_HOST_REASON,
    HOST_REASON,
    IDNA_REASON,
    IP_LITERAL_REASON,
    PORT_REASON,
    USERINFO_REASON,
    InvalidTargetError,
)

# RFC 9110 §5.6.2:
#   token = 1*tchar
#   tchar = "!" / "#" / "$" / "%" / "&" / "'" / "*" / "+" / "-" / "." /
#           "^" / "_" / "`" / "|" / "~" / DIGIT / ALPHA
TCHAR: Final[frozenset[int]] = frozenset(
    b"!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
)

# RFC 9112 §3.2 request-target; RFC 3986 limits URI characters to a subset of
# VCHAR, but browsers send raw "|{}^" and others, so any visible ASCII
# (0x21-0x7E) is accepted and everything else (SP, CTLs, DEL, non-ASCII) refused.
TARGET_CHAR: Final[frozenset[int]] = frozenset(range(0x21, 0x7F))

# RFC 9110 §5.5:
#   field-value = *field-content
#   field-vchar = VCHAR / obs-text        ; obs-text = %x80-FF
# plus SP and HTAB inside the value. NUL, CR, LF and the other CTLs are refused.
FIELD_VALUE_CHAR: Final[frozenset[int]] = frozenset(
    [0x09, 0x20, *range(0x21, 0x7F), *range(0x80, 0x100)]
)

# RFC 9110 §5.6.3: OWS = *( SP / HTAB )
OWS: Final[bytes] = b" \t"

# RFC 5234 Appendix B.1: HEXDIG = DIGIT / "A" / "B" / "C" / "D" / "E" / "F", either case
# (chunk sizes, RFC 9112 §7.1; percent-encoding, RFC 3986 §2.1)
HEXDIG: Final[frozenset[int]] = frozenset(b"0123456789abcdefABCDEF")

# RFC 9112 §2.3: HTTP-version = HTTP-name "/" DIGIT "." DIGIT
SUPPORTED_VERSIONS: Final[frozenset[bytes]] = frozenset([b"HTTP/1.0", b"HTTP/1.1"])

# RFC 9112 §6.1 / RFC 9110 §8.4.1 (IANA HTTP Transfer Coding Registry): codings
# we recognise. Only "chunked" is decoded; the others are passed to the app,
# and they are legal only when "chunked" comes last.
KNOWN_TRANSFER_CODINGS: Final[frozenset[str]] = frozenset(
    ["chunked", "compress", "deflate", "gzip", "x-compress", "x-gzip", "identity"]
)

# Field names (lower case) the parsers interpret, everything else is only passed on.
# RFC 9112 §3.2: exactly one Host; RFC 9110 §8.3: at most one Content-Type. A second
# field line of one of these is refused, with this reason:
SINGLETON_FIELDS: Final[dict[bytes, str]] = {
    b"host": DUPLICATE_HOST_REASON,
    b"content-type": DUPLICATE_CONTENT_TYPE_REASON,
}
# Framing and persistence, read once the head is complete: RFC 9112 §6.1
# Transfer-Encoding, RFC 9110 §8.6 Content-Length, RFC 9112 §9.6 Connection,
# RFC 9110 §10.1.1 Expect.
FRAMING_FIELDS: Final[frozenset[bytes]] = frozenset(
    [b"transfer-encoding", b"content-length", b"connection", b"expect"]
)

# Field name -> environ key, werkzeug's make_environ (after CGI, RFC 3875 §4.1.18):
# upper case with "-" -> "_", after "HTTP_"; Content-Type and Content-Length keep CGI's
# own keys (RFC 3875 §4.1.2, §4.1.3). A name holding "_" never gets a key: werkzeug
# drops it, as "_" and "-" would map to the same key.
ENVIRON_KEY_PREFIX: Final[str] = "HTTP_"
UNPREFIXED_KEYS: Final[dict[bytes, str]] = {
    b"content-type": "CONTENT_TYPE",
    b"content-length": "CONTENT_LENGTH",
}
ENVIRON_KEY_CHAR: Final[bytes] = bytes(
    c - 0x20 if 0x61 <= c <= 0x7A else 0x5F if c == 0x2D else c for c in range(256)
)


# The keys a request head gives the environ besides its fields' (docs/parsing.md,
# "Environ entries"). A parser's per-connection base entries (``set_base``) may hold none
# of these and no key starting with ENVIRON_KEY_PREFIX: the head alone decides them.
REQUEST_LINE_KEYS: Final[tuple[str, ...]] = (
    "REQUEST_METHOD",
    "SCRIPT_NAME",
    "PATH_INFO",
    "QUERY_STRING",
    "REQUEST_URI",
    "RAW_URI",
    "SERVER_PROTOCOL",
)
REQUEST_KEYS: Final[frozenset[str]] = frozenset(REQUEST_LINE_KEYS) | frozenset(
    UNPREFIXED_KEYS.values()
)


def is_request_key(key: object) -> bool:
    """``key`` is an environ key a request head may set (so not a base entry's)."""
    return key in REQUEST_KEYS or (isinstance(key, str) and key.startswith(ENVIRON_KEY_PREFIX))


def environ_key(name: bytes) -> str:
    """The environ key of the field named ``name`` (a token without "_")."""
    key = UNPREFIXED_KEYS.get(name.lower())
    if key is None:
        key = ENVIRON_KEY_PREFIX + name.translate(ENVIRON_KEY_CHAR).decode("ascii")
    return key


# Limits (CRLF not counted). RFC 9112 §3 asks that request lines of at least
# 8000 octets be supported; the others follow common servers' defaults.
MAX_REQUEST_LINE: Final[int] = 8190  # beyond: 414
MAX_FIELD_LINE: Final[int] = 8190  # one field line, trailers too; beyond: 431
MAX_HEAD: Final[int] = 65536  # whole head or trailer section; beyond: 431
MAX_FIELDS: Final[int] = 100  # field lines, trailers too; beyond: 431
# Content-Length and chunk sizes must fit in 63 bits (RFC 9110 §8.6 asks
# recipients to guard against overflow); beyond: 400.
MAX_BODY_LENGTH: Final[int] = (1 << 63) - 1


# --- RFC 3986 §3.2: the authority of an absolute-form target ---------------------------------
# Both parsers hand the authority (the bytes between "://" and the first "/", "?" or "#")
# to authority_host(); absolute-form is rare (proxies), so one Python implementation
# serves the compiled parser too. The grammar, RFC 3986 §3.2 / §3.2.1-§3.2.3:
#   authority   = [ userinfo "@" ] host [ ":" port ]
#   userinfo    = *( unreserved / pct-encoded / sub-delims / ":" )  ; here also "@"
#   host        = IP-literal / IPv4address / reg-name
#   IP-literal  = "[" ( IPv6address / IPvFuture ) "]"
#   IPvFuture   = "v" 1*HEXDIG "." 1*( unreserved / sub-delims / ":" )
#   reg-name    = *( unreserved / pct-encoded / sub-delims )   ; IPv4address is one too
#   port        = *DIGIT
#   unreserved  = ALPHA / DIGIT / "-" / "." / "_" / "~"
#   sub-delims  = "!" / "$" / "&" / "'" / "(" / ")" / "*" / "+" / "," / ";" / "="
# Narrowed so that werkzeug's access log (uri_to_iri -> urllib.parse.urlsplit) reads every
# accepted target: the "v" of IPvFuture is lower case (urlsplit refuses "V"), a port has at
# most 5 digits and a value up to 65535, and host labels starting "xn--" must be valid IDNA.
_UNRESERVED = rb"A-Za-z0-9\-._~"
_SUB_DELIMS = rb"!$&'()*+,;="
_PCT = rb"%[0-9A-Fa-f]{2}"
# "@" too: the userinfo runs to the last "@" (werkzeug reads "a@b@h" as host "h", and
# fastserve's environ must equal werkzeug's: tests/parser/test_werkzeug_equivalence.py)
_USERINFO_RE: Final = re.compile(rb"(?:[" + _UNRESERVED + _SUB_DELIMS + rb":@]|" + _PCT + rb")*")
_REG_NAME_RE: Final = re.compile(rb"(?:[" + _UNRESERVED + _SUB_DELIMS + rb"]|" + _PCT + rb")*")
_IPV_FUTURE_RE: Final = re.compile(rb"v[0-9A-Fa-f]+\.[" + _UNRESERVED + _SUB_DELIMS + rb":]+")


def _ipv6_re() -> re.Pattern[bytes]:
    """RFC 3986 §3.2.2 IPv6address, alternative by alternative."""
    h16 = rb"[0-9A-Fa-f]{1,4}"
    dec_octet = rb"(?:25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9][0-9]|[0-9])"
    ls32 = rb"(?:" + h16 + rb":" + h16 + rb"|" + rb"\.".join([dec_octet] * 4) + rb")"

    def before(n: int) -> bytes:  # [ *n( h16 ":" ) h16 ]
        return rb"(?:(?:" + h16 + rb":){0," + str(n).encode() + rb"}" + h16 + rb")?"

    def groups(n: int) -> bytes:  # n( h16 ":" )
        return rb"(?:" + h16 + rb":){" + str(n).encode() + rb"}"

    alternatives = [
        groups(6) + ls32,
        rb"::" + groups(5) + ls32,
        rb"(?:" + h16 + rb")?::" + groups(4) + ls32,
        before(1) + rb"::" + groups(3) + ls32,
        before(2) + rb"::" + groups(2) + ls32,
        before(3) + rb"::" + groups(1) + ls32,
        before(4) + rb"::" + ls32,
        before(5) + rb"::" + h16,
        before(6) + rb"::",
    ]
    return re.compile(b"|".join(rb"(?:" + a + rb")" for a in alternatives))


_IPV6_RE: Final = _ipv6_re()


def idna_readable(hostname: bytes) -> bool:
    """Whether every ``xn--`` label of ``hostname`` is IDNA that decodes (RFC 5890 §2.3.2.1:
    an A-label must be valid punycode; RFC 3490 ToUnicode is the stdlib codec).

    werkzeug's ``_decode_idna`` (run by ``uri_to_iri`` in ``log_request``) raises on such a
    label up to Python 3.12, where the codec raises a bare ``UnicodeError``, and keeps it as
    ASCII on 3.13, where it raises ``UnicodeDecodeError``. Both are refused here, so the
    parser's answer does not depend on the Python it runs on.
    """
    try:
        hostname.decode("idna")
    except UnicodeError:
        return False
    return True


def authority_host(authority: bytes) -> int:
    """Validate the authority of an absolute-form target (RFC 3986 §3.2, RFC 9110 §4.2.1).

    :param authority: the bytes between ``"://"`` and the first ``"/"``, ``"?"`` or ``"#"``.
    :return: the offset of the host in ``authority`` (after the userinfo and its ``"@"``);
        the host and port from there on become ``HTTP_HOST``.
    :raises fastserve.errors.InvalidTargetError: the first defect, checked in the order
        userinfo, empty host, host, port, IDNA.
    """
    at = authority.rfind(b"@") + 1
    if at and _USERINFO_RE.fullmatch(authority, 0, at - 1) is None:
        raise InvalidTargetError(USERINFO_REASON)
    end = len(authority)
    # RFC 9110 §4.2.1: an http(s) URI with an empty host is invalid (refused for any scheme)
    if at == end or authority[at] == 0x3A:
        raise InvalidTargetError(EMPTY_HOST_REASON)
    if authority[at] == 0x5B:  # "[": IP-literal
        close = authority.find(b"]", at)
        if close < 0 or not (
            _IPV6_RE.fullmatch(authority, at + 1, close)
            or _IPV_FUTURE_RE.fullmatch(authority, at + 1, close)
        ):
            raise InvalidTargetError(IP_LITERAL_REASON)
        hostname = authority[at + 1 : close]
        port_at = close + 1
        if port_at < end and authority[port_at] != 0x3A:
            raise InvalidTargetError(IP_LITERAL_REASON)
    else:
        colon = authority.find(b":", at)
        port_at = end if colon < 0 else colon
        if _REG_NAME_RE.fullmatch(authority, at, port_at) is None:
            raise InvalidTargetError(HOST_REASON)
        hostname = authority[at:port_at]
    if port_at < end:
        port = authority[port_at + 1 :]
        # port = *DIGIT: empty is allowed (RFC 3986 §3.2.3)
        if port and (len(port) > 5 or not port.isdigit() or int(port) > 65535):
            raise InvalidTargetError(PORT_REASON)
    # urlsplit's hostname: lower-cased up to a "%" (a zone ID's case is kept)
    name, pct, zone = hostname.partition(b"%")
    if b"xn--" in name.lower() + pct + zone and not idna_readable(name.lower() + pct + zone):
        raise InvalidTargetError(IDNA_REASON)
    return at
