"""RFC 9110/9112 grammar as byte tables, and the default limits.

The single source of truth for both parser implementations: the pure-Python
twin uses these sets directly, the compiled parser copies them into C lookup
tables when it is imported.
"""

from __future__ import annotations

from typing import Final

# RFC 9110 §5.6.2:
#   token = 1*tchar
#   tchar = "!" / "#" / "$" / "%" / "&" / "'" / "*" / "+" / "-" / "." /
#           "^" / "_" / "`" / "|" / "~" / DIGIT / ALPHA
TCHAR: Final[frozenset[int]] = frozenset(
    b"!#$%&'*+-.^_`|~0123456789"
    b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
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

# RFC 9112 §2.3: HTTP-version = HTTP-name "/" DIGIT "." DIGIT
SUPPORTED_VERSIONS: Final[frozenset[bytes]] = frozenset([b"HTTP/1.0", b"HTTP/1.1"])

# RFC 9112 §6.1 / RFC 9110 §8.4.1 (IANA HTTP Transfer Coding Registry): codings
# we recognise. Only "chunked" is decoded; the others are passed to the app,
# and they are legal only when "chunked" comes last.
KNOWN_TRANSFER_CODINGS: Final[frozenset[str]] = frozenset(
    ["chunked", "compress", "deflate", "gzip", "x-compress", "x-gzip", "identity"]
)

# Limits (CRLF not counted). RFC 9112 §3 asks that request lines of at least
# 8000 octets be supported; the others follow common servers' defaults.
MAX_REQUEST_LINE: Final[int] = 8190  # beyond: 414
MAX_FIELD_LINE: Final[int] = 8190  # one field line, trailers too; beyond: 431
MAX_HEAD: Final[int] = 65536  # whole head or trailer section; beyond: 431
MAX_FIELDS: Final[int] = 100  # field lines, trailers too; beyond: 431
# Content-Length and chunk sizes must fit in 63 bits (RFC 9110 §8.6 asks
# recipients to guard against overflow); beyond: 400.
MAX_BODY_LENGTH: Final[int] = (1 << 63) - 1
