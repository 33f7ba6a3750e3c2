"""Compiled HTTP/1.1 request-head parser, chunked-body decoder and response-head serializer.

The contract is docs/parsing.md; ``fastserve._parser_py`` is the executable spec and
this module must agree with it byte for byte (tests/parser/test_differential.py).
Public docstrings live in ``_parser.pyi``.

What lives here (STYLE.md, "The Cython/Python boundary"): the per-byte work on the
raw buffer through ``const unsigned char*`` pointers - finding line ends, checking
bytes against 256-entry tables, CRLF stripping, header name -> environ key
conversion, Content-Length / chunk-size arithmetic, framing decisions - and building
the environ dict directly. Policy stays in Python: the error classes and their
reasons come from :mod:`fastserve.errors`; the character sets, the field names the
parser interprets, the field name -> environ key rule, known transfer codings and
default limits from :mod:`fastserve._abnf` (copied into C tables at import). The
SSE2 scans are C, in ``_scan.h``.

Incremental parsing keeps only offsets between calls: ``parse()`` is always given
the same bytes extended by new ones, so a completed line is validated once and
recorded as offsets; the environ is built from those offsets when the final empty
line arrives. The twin's seams, by the twin's names:

- ``parse`` -> ``_check_partial`` (partial line), ``_request_line`` (``_target``,
  ``_version``), ``_field_line`` (``_check_field_content``), ``_finish``;
- ``_finish`` -> ``_request_environ``, ``_add_fields`` (the framing fields read into a
  ``Framing`` record on the way: ``_content_length_line``, ``_transfer_coding_line``,
  ``_connection_line``, each over ``_next_element``, the twin's ``_elements``), then
  ``_framing`` (``_check_transfer_coding``, ``_content_length``) and persistence;
- ``ChunkedDecoder.decode`` -> ``_size_line``, ``_trailer_line``;
- ``serialize_response_head`` -> ``_response_field``, ``_response_head``.
"""

cimport cython
from libc.stdint cimport uint64_t
from cpython.buffer cimport PyBUF_SIMPLE, PyBuffer_Release, PyObject_GetBuffer
from cpython.bytearray cimport PyByteArray_AS_STRING, PyByteArray_CheckExact, PyByteArray_GET_SIZE
from cpython.bytes cimport (
    PyBytes_AS_STRING, PyBytes_CheckExact, PyBytes_FromStringAndSize, PyBytes_GET_SIZE,
)
from cpython.mem cimport PyMem_Free, PyMem_Malloc, PyMem_Realloc
from cpython.object cimport PyObject
from cpython.ref cimport Py_INCREF, Py_XDECREF
from cpython.unicode cimport PyUnicode_Check
from libc.string cimport memchr, memcmp, memcpy, memset

import sys

from fastserve import _abnf
# Reasons too: every one is spelled in fastserve.errors, never here (docs/parsing.md).
from fastserve.errors import (
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
    DUPLICATE_CONTENT_TYPE_REASON,
    DUPLICATE_HOST_REASON,
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

__all__ = [
    "RequestParser", "ChunkedDecoder", "serialize_response_head", "FastPath", "configure_fast_path",
    "fast_path_for",
]


cdef extern from "Python.h":
    object PyUnicode_New(Py_ssize_t size, Py_UCS4 maxchar)
    void* PyUnicode_DATA(object o)
    int PyUnicode_KIND(object o)
    Py_ssize_t PyUnicode_GET_LENGTH(object o)
    int PyUnicode_READY(object o) except -1
    object PyUnicode_DecodeUTF8(const char* s, Py_ssize_t size, const char* errors)
    object PyUnicode_DecodeLatin1(const char* s, Py_ssize_t size, const char* errors)
    object PyUnicode_InternFromString(const char* v)
    enum: PyUnicode_1BYTE_KIND
    PyObject* PyDict_SetDefault(object d, object key, object default) except NULL
    int PyDict_SetItem(object d, object key, object value) except -1
    Py_ssize_t PyDict_GET_SIZE(object d)
    object PyDict_Copy(object d)
    int PyDict_Update(object a, object b) except -1
    int PyDict_Next(object d, Py_ssize_t* pos, PyObject** key, PyObject** value)
    PyObject* PyTuple_GET_ITEM(object t, Py_ssize_t i)
    Py_ssize_t PyTuple_GET_SIZE(object t)
    # Cython's portable wrapper (plain PyDict_New where CPython's presizing is unavailable)
    object __Pyx_PyDict_NewPresized(Py_ssize_t minused)


# --- character classes (RFC 9110 §5.6.2, §5.5; RFC 9112 §3.2; RFC 5234 HEXDIG) -------------

cdef enum:
    C_TCHAR = 1     # RFC 9110 §5.6.2 tchar
    C_TARGET = 2    # request-target bytes: visible ASCII 0x21-0x7E
    C_VALUE = 4     # RFC 9110 §5.5 field-value bytes: SP, HTAB, VCHAR, obs-text
    C_HEX = 8       # RFC 5234 HEXDIG (either case)
    C_OWS = 16      # RFC 9110 §5.6.3 OWS: SP / HTAB

cdef unsigned char CT[256]
cdef signed char HEXVAL[256]
cdef unsigned char KEY_CHAR[256]   # field name byte -> environ key byte (werkzeug's rule)


cdef void _build_tables() except *:
    cdef int i
    for i in range(256):
        CT[i] = 0
        HEXVAL[i] = -1
    for i in _abnf.TCHAR:
        CT[i] |= C_TCHAR
    for i in _abnf.TARGET_CHAR:
        CT[i] |= C_TARGET
    for i in _abnf.FIELD_VALUE_CHAR:
        CT[i] |= C_VALUE
    for i in _abnf.OWS:
        CT[i] |= C_OWS
    for i in _abnf.HEXDIG:
        CT[i] |= C_HEX
        HEXVAL[i] = int(chr(i), 16)
    for i in range(256):
        KEY_CHAR[i] = _abnf.ENVIRON_KEY_CHAR[i]


_build_tables()

# RFC 9110 §8.6 / §7.1 of RFC 9112: lengths and chunk sizes must fit in 63 bits.
cdef unsigned long long MAX_LENGTH = _abnf.MAX_BODY_LENGTH

# RFC 3986 §3.2: the absolute-form authority rule, shared with the twin (run in Python).
cdef object _authority_host = _abnf.authority_host

# RFC 9112 §6.1: transfer codings we recognise (lower-cased, from _abnf).
cdef tuple KNOWN_CODINGS = tuple(
    sorted(c.lower().encode("ascii") for c in _abnf.KNOWN_TRANSFER_CODINGS)
)

# Interned result strings.
cdef str S_HTTP11 = "HTTP/1.1"
cdef str S_HTTP10 = "HTTP/1.0"
cdef str S_EMPTY = ""
cdef str S_STAR = "*"
cdef str K_REQUEST_METHOD = "REQUEST_METHOD"
cdef str K_SCRIPT_NAME = "SCRIPT_NAME"
cdef str K_PATH_INFO = "PATH_INFO"
cdef str K_QUERY_STRING = "QUERY_STRING"
cdef str K_REQUEST_URI = "REQUEST_URI"
cdef str K_RAW_URI = "RAW_URI"
cdef str K_SERVER_PROTOCOL = "SERVER_PROTOCOL"
cdef str K_CONTENT_TYPE = "CONTENT_TYPE"
cdef str K_CONTENT_LENGTH = "CONTENT_LENGTH"
cdef str K_HTTP_HOST = "HTTP_HOST"
cdef tuple METHODS = (
    "GET", "POST", "HEAD", "PUT", "DELETE", "OPTIONS", "PATCH", "CONNECT", "TRACE",
)

# Every environ starts as a copy of a template: CPython copies a dict with one allocation and
# a memcpy, and replacing a value is cheaper than inserting a key. The template is this dict,
# or (``set_base``) a per-connection one holding its entries and then the connection's. It
# is presized so that a copy takes the request's entries *and* the ~16 a server adds
# (wsgi.*, SERVER_*, REMOTE_*, PEP 3333: its base entries, then wsgi.input and wsgi.errors)
# without growing: growing rehashes every entry, which costs more than the parse of a
# typical head. Heads with more fields get a dict presized for them.
cdef enum:
    SERVER_ENTRIES = 16
    TEMPLATE_FIELDS = 19  # 7 + 19 + 16 = 42 entries: the usable part of a 64-slot table
    LATER_ENTRIES = 3     # room after a base: wsgi.errors, wsgi.input, wsgi.input_terminated
cdef dict _TEMPLATE = __Pyx_PyDict_NewPresized(7 + TEMPLATE_FIELDS + SERVER_ENTRIES)
_TEMPLATE[K_REQUEST_METHOD] = "GET"
_TEMPLATE[K_SCRIPT_NAME] = S_EMPTY
_TEMPLATE[K_PATH_INFO] = "/"
_TEMPLATE[K_QUERY_STRING] = S_EMPTY
_TEMPLATE[K_REQUEST_URI] = "/"
_TEMPLATE[K_RAW_URI] = "/"
_TEMPLATE[K_SERVER_PROTOCOL] = S_HTTP11
if tuple(_TEMPLATE) != _abnf.REQUEST_LINE_KEYS:
    raise ImportError("fastserve._parser's environ template is not fastserve._abnf's")

# The request line's values in a dict an environ is copied from (the template, a shape), by
# LINE_* index; REQUEST_URI's is RAW_URI's too. _request_environ puts in only the values
# that are not these objects.
cdef enum:
    LINE_METHOD = 0
    LINE_VERSION = 1
    LINE_PATH = 2
    LINE_QUERY = 3
    LINE_URI = 4
    LINE_VALUES = 5

cdef PyObject* _TEMPLATE_LINE[LINE_VALUES]  # borrowed from _TEMPLATE, which never changes
_TEMPLATE_LINE[LINE_METHOD] = <PyObject*>_TEMPLATE[K_REQUEST_METHOD]
_TEMPLATE_LINE[LINE_VERSION] = <PyObject*>_TEMPLATE[K_SERVER_PROTOCOL]
_TEMPLATE_LINE[LINE_PATH] = <PyObject*>_TEMPLATE[K_PATH_INFO]
_TEMPLATE_LINE[LINE_QUERY] = <PyObject*>_TEMPLATE[K_QUERY_STRING]
_TEMPLATE_LINE[LINE_URI] = <PyObject*>_TEMPLATE[K_REQUEST_URI]


# --- field kinds: names the parser interprets (compared case-insensitively) ----------------

cdef enum:
    F_OTHER = 0
    F_DROP = 1        # name contains "_": validated and counted, never in the environ
    F_FOLD = 2        # obs-fold continuation line (RFC 9112 §5.2)
    F_HOST = 3
    F_CTYPE = 4
    F_CLEN = 5
    F_TE = 6
    F_CONN = 7
    F_EXPECT = 8


cdef inline bint _ieq(const unsigned char* p, const char* lower, Py_ssize_t n) noexcept:
    """``p[:n]`` equals the lower-case ASCII ``lower``, ignoring case."""
    cdef Py_ssize_t i
    for i in range(n):
        if (p[i] | 0x20) != <unsigned char>lower[i]:
            return False
    return True


# --- known field names: kind + environ key --------------------------------------------------
# An open-addressing table keyed by the field name (case-insensitive), filled once at import
# and only read afterwards (no locking needed). One probe per field line gives both the kind
# the parser interprets and the interned environ key; a name that is not in the table is
# F_OTHER (or F_DROP with a "_") and its key is built when the environ is. The hash is
# deliberately cheap (length and three letters): the table is sparse and a probe compares the
# length first, then the name eight bytes at a time.

cdef enum:
    NAME_TABLE_SIZE = 256  # power of two, > 3x the names below
    NAME_WORDS = 4         # 8-byte words per name
    NAME_MAX = 32          # NAME_WORDS * 8, > the longest name below

cdef struct NameEntry:
    Py_ssize_t n                    # 0: empty slot
    uint64_t lower[NAME_WORDS]      # the name in lower case, zero-padded
    uint64_t fold[NAME_WORDS]       # 0x20 where the name has a letter (case may differ), else 0
    int kind
    PyObject* key                   # borrowed from _name_keys

cdef NameEntry _names[NAME_TABLE_SIZE]
cdef list _name_keys = []           # keeps the interned keys alive

# The names the parser interprets: _abnf.SINGLETON_FIELDS and _abnf.FRAMING_FIELDS, each
# with the code that reads it (RFC 9110 §7.2, §8.3, §8.6, §10.1.1; RFC 9112 §6.1, §9.6)
_INTERPRETED = {
    b"host": F_HOST, b"content-type": F_CTYPE, b"content-length": F_CLEN,
    b"transfer-encoding": F_TE, b"connection": F_CONN, b"expect": F_EXPECT,
}
if _INTERPRETED.keys() != _abnf.SINGLETON_FIELDS.keys() | _abnf.FRAMING_FIELDS:
    raise ImportError("fastserve._parser does not interpret the fields fastserve._abnf names")
# ... and names browsers, proxies and API clients commonly send, only to reuse their keys.
# Letters, digits and "-" only (see _name_eq).
_COMMON_FIELDS = (
    "Accept", "Accept-Charset", "Accept-Encoding", "Accept-Language",
    "Access-Control-Request-Headers", "Access-Control-Request-Method", "Authorization",
    "Cache-Control", "Content-Encoding", "Content-MD5", "Cookie", "Date", "DNT", "Forwarded",
    "From", "If-Match", "If-Modified-Since", "If-None-Match", "If-Range", "If-Unmodified-Since",
    "Keep-Alive", "Max-Forwards", "Origin", "Pragma", "Priority", "Proxy-Authorization",
    "Proxy-Connection", "Range", "Referer",
    "Sec-CH-UA", "Sec-CH-UA-Mobile", "Sec-CH-UA-Platform", "Sec-Fetch-Dest", "Sec-Fetch-Mode",
    "Sec-Fetch-Site", "Sec-Fetch-User", "Sec-GPC", "Sec-WebSocket-Extensions", "Sec-WebSocket-Key",
    "Sec-WebSocket-Protocol", "Sec-WebSocket-Version", "TE", "Trailer", "Upgrade",
    "Upgrade-Insecure-Requests", "User-Agent", "Via", "Warning", "X-CSRF-Token", "X-CSRFToken",
    "X-Forwarded-For", "X-Forwarded-Host", "X-Forwarded-Proto", "X-Real-IP", "X-Request-ID",
    "X-Requested-With",
)


cdef inline unsigned int _name_hash(const unsigned char* p, Py_ssize_t n) noexcept:
    """Cheap case-insensitive hash of a non-empty field name."""
    return <unsigned int>(n * 37 + (p[0] | 0x20) * 7 + (p[n - 1] | 0x20) + (p[n >> 1] | 0x20) * 3)


cdef inline bint _name_eq(const unsigned char* p, const NameEntry* entry, Py_ssize_t n) noexcept:
    """``p[:n]`` (``n == entry.n``, the bytes before a ":") is the entry's name in any case.

    Only letters may differ in case (``fold``): every other byte must be equal, so a match
    is itself a valid token and needs no further check. Eight bytes at a time, the last
    word overlapping; a name shorter than 8 byte by byte.
    """
    cdef Py_ssize_t i = 0
    cdef uint64_t x, y, m
    cdef const unsigned char* lower = <const unsigned char*>entry.lower
    cdef const unsigned char* fold = <const unsigned char*>entry.fold
    if n >= 8:
        while i + 8 < n:
            memcpy(&x, p + i, 8)
            memcpy(&y, lower + i, 8)
            memcpy(&m, fold + i, 8)
            if (x | m) != y:
                return False
            i += 8
        i = n - 8
        memcpy(&x, p + i, 8)
        memcpy(&y, lower + i, 8)
        memcpy(&m, fold + i, 8)
        return (x | m) == y
    for i in range(n):
        if (p[i] | fold[i]) != lower[i]:
            return False
    return True


cdef inline NameEntry* _lookup_name(const unsigned char* p, Py_ssize_t n) noexcept:
    """The table entry of the field name ``p[:n]``, or NULL."""
    cdef unsigned int slot = _name_hash(p, n) & (NAME_TABLE_SIZE - 1)
    cdef NameEntry* entry
    while True:
        entry = &_names[slot]
        if entry.n == 0:
            return NULL
        if entry.n == n and _name_eq(p, entry, n):
            return entry
        slot = (slot + 1) & (NAME_TABLE_SIZE - 1)


cdef void _build_name_table() except *:
    cdef unsigned int slot
    cdef bytes raw
    cdef Py_ssize_t n, i
    cdef unsigned char* lower
    cdef unsigned char* fold
    cdef int k
    for k in range(NAME_TABLE_SIZE):
        _names[k].n = 0
    entries = [(name.lower().encode("ascii"), F_OTHER) for name in _COMMON_FIELDS]
    for raw, kind in entries + list(_INTERPRETED.items()):
        n = len(raw)
        assert 0 < n < NAME_MAX and raw.replace(b"-", b"").isalnum(), raw
        key = sys.intern(_abnf.environ_key(raw))
        _name_keys.append(key)
        slot = _name_hash(<const unsigned char*>PyBytes_AS_STRING(raw), n) & (NAME_TABLE_SIZE - 1)
        while _names[slot].n != 0:
            slot = (slot + 1) & (NAME_TABLE_SIZE - 1)
        _names[slot].n = n
        lower = <unsigned char*>_names[slot].lower
        fold = <unsigned char*>_names[slot].fold
        for i in range(NAME_MAX):
            lower[i] = raw[i] if i < n else 0
            fold[i] = 0x20 if i < n and b"a"[0] <= raw[i] <= b"z"[0] else 0
        _names[slot].kind = kind
        _names[slot].key = <PyObject*>key


_build_name_table()


# _abnf.environ_key for the names not in the table (so never Content-Type / Content-Length)
cdef str KEY_PREFIX_STR = _abnf.ENVIRON_KEY_PREFIX
cdef bytes KEY_PREFIX = KEY_PREFIX_STR.encode("ascii")
# _abnf.is_request_key: what set_base refuses
cdef frozenset REQUEST_KEYS = _abnf.REQUEST_KEYS


cdef object _environ_key(const unsigned char* name, Py_ssize_t n):
    """The environ key of the field name ``name[:n]`` (a token) as a new str: ``KEY_PREFIX``
    then each byte through ``KEY_CHAR``."""
    cdef Py_ssize_t i, k = PyBytes_GET_SIZE(KEY_PREFIX)
    cdef object key = PyUnicode_New(k + n, 127)  # tchar is ASCII
    cdef unsigned char* out = <unsigned char*>PyUnicode_DATA(key)
    memcpy(out, PyBytes_AS_STRING(KEY_PREFIX), k)
    for i in range(n):
        out[k + i] = KEY_CHAR[name[i]]
    return key


cdef bint _is_environ_key(PyObject* key, const unsigned char* name, Py_ssize_t n) noexcept:
    """``key`` (a str made by ``_environ_key`` or an interned key, or NULL) is the environ key
    of the field name ``name[:n]``."""
    cdef Py_ssize_t i, k = PyBytes_GET_SIZE(KEY_PREFIX)
    cdef const unsigned char* data
    if key == NULL or PyUnicode_GET_LENGTH(<object>key) != k + n:
        return False
    data = <const unsigned char*>PyUnicode_DATA(<object>key)
    if memcmp(data, PyBytes_AS_STRING(KEY_PREFIX), k) != 0:
        return False
    for i in range(n):
        if data[k + i] != KEY_CHAR[name[i]]:
            return False
    return True


# --- vectorised scans (SSE2 where the compiler offers it, else eight bytes at a time) --------

cdef extern from "_scan.h":
    # RFC 9110 §5.5 field values: first control byte or DEL (HTAB included), and whether
    # obs-text (>= 0x80) was seen; RFC 9112 §3.2: first byte outside 0x21-0x7E
    Py_ssize_t fs_find_ctl(const unsigned char* p, Py_ssize_t n, const unsigned char* base,
                           int* high) noexcept nogil
    Py_ssize_t fs_find_nontarget(const unsigned char* p, Py_ssize_t n) noexcept nogil


# --- small helpers --------------------------------------------------------------------------

cdef inline object _ascii(const unsigned char* p, Py_ssize_t n):
    """A str of ASCII bytes (the caller guarantees every byte < 0x80)."""
    cdef object s = PyUnicode_New(n, 127)
    memcpy(PyUnicode_DATA(s), p, n)
    return s


cdef inline object _latin1(const unsigned char* p, Py_ssize_t n, bint high):
    """A str of latin-1 bytes; ``high`` says whether one of them is >= 0x80 (canonical kind)."""
    cdef object s = PyUnicode_New(n, 255 if high else 127)
    memcpy(PyUnicode_DATA(s), p, n)
    return s


cdef object _kept_or_new(PyObject** slot, const unsigned char* p, Py_ssize_t n, bint high):
    """The str of the latin-1 bytes ``p[:n]``: the one ``slot`` keeps when it holds exactly
    these bytes, else a new one, then kept in ``slot`` (``high`` as for ``_latin1``).

    A keep-alive client sends most values of its previous request again, byte for byte
    (User-Agent, Accept, Cookie, the target of a polling or benchmarking client): each
    is one length compare and a memcmp instead of an allocation, a copy and a free. A str
    is immutable, so environs of successive requests sharing one is invisible to an app.
    """
    cdef PyObject* kept = slot[0]
    cdef object s
    if (kept != NULL and PyUnicode_GET_LENGTH(<object>kept) == n
            and memcmp(PyUnicode_DATA(<object>kept), p, n) == 0):
        return <object>kept
    s = _latin1(p, n, high)
    Py_INCREF(s)
    slot[0] = <PyObject*>s
    Py_XDECREF(kept)
    return s


cdef struct Buffer:
    const unsigned char* p
    Py_ssize_t n
    bint release
    Py_buffer view


cdef inline int _acquire(object data, Buffer* b) except -1:
    """Point ``b`` at the bytes of ``data``: bytes/bytearray directly, else the buffer protocol."""
    if PyBytes_CheckExact(data):
        b.p = <const unsigned char*>PyBytes_AS_STRING(data)
        b.n = PyBytes_GET_SIZE(data)
        b.release = False
    elif PyByteArray_CheckExact(data):
        b.p = <const unsigned char*>PyByteArray_AS_STRING(data)
        b.n = PyByteArray_GET_SIZE(data)
        b.release = False
    else:
        PyObject_GetBuffer(data, &b.view, PyBUF_SIMPLE)
        b.p = <const unsigned char*>b.view.buf
        b.n = b.view.len
        b.release = True
    return 0


cdef inline void _release(Buffer* b) noexcept:
    if b.release:
        PyBuffer_Release(&b.view)
        b.release = False


cdef inline Py_ssize_t _partial_len(const unsigned char* p, Py_ssize_t s, Py_ssize_t n) noexcept:
    """Length of a line still missing its LF, a trailing CR not counted (it may start CRLF)."""
    if n > s and p[n - 1] == b"\r":
        return n - 1 - s
    return n - s


cdef int _check_field_content(const unsigned char* p, Py_ssize_t s, Py_ssize_t le, bint has_prev,
                              Py_ssize_t* name_end, Py_ssize_t* value_start, bint* high,
                              PyObject** key) except -1:
    """Validate one field line ``p[s:le]`` (CRLF stripped); RFC 9110 §5.5, RFC 9112 §5.

    ``field-line = field-name ":" OWS field-value OWS``; a line starting with SP/HTAB is an
    obs-fold (RFC 9112 §5.2), allowed only after another field line (``has_prev``).
    Returns the kind (F_*); sets the name end, the value start (leading OWS skipped),
    whether the value holds obs-text, and the interned environ key of a known name (else
    NULL).
    """
    cdef Py_ssize_t i = s, j
    cdef int kind
    cdef NameEntry* entry
    cdef const unsigned char* colon
    cdef unsigned char all_tchar = C_TCHAR
    key[0] = NULL
    if CT[p[s]] & C_OWS:
        if not has_prev:
            raise InvalidHeaderError(OBS_FOLD_FIRST_REASON)
        kind = F_FOLD
        name_end[0] = s
    else:
        # RFC 9110 §5.1: field-name = token; RFC 9112 §5.1: no whitespace before ":"
        colon = <const unsigned char*>memchr(p + s, b":", le - s)
        if colon == NULL:
            raise InvalidHeaderError(NO_COLON_REASON)
        i = colon - p
        if i == s:
            raise InvalidHeaderError(EMPTY_FIELD_NAME_REASON)
        entry = _lookup_name(p + s, i - s)
        if entry != NULL:  # a known name: a valid token (see _name_eq)
            kind = entry.kind
            key[0] = entry.key
        else:
            for j in range(s, i):
                all_tchar &= CT[p[j]]  # no early exit: names are short, branches cost more
            if not all_tchar:
                raise InvalidHeaderError(FIELD_NAME_REASON)
            if memchr(p + s, b"_", i - s) != NULL:
                kind = F_DROP  # werkzeug drops them: "_" and "-" map to the same key
            else:
                kind = F_OTHER
        name_end[0] = i
        i += 1
        while i < le and CT[p[i]] & C_OWS:
            i += 1
    value_start[0] = i
    high[0] = _check_value(p + i, le - i, p)
    return kind


# The vectorised scans hard-code the byte classes below; they are used only while
# fastserve._abnf agrees with them (else every byte goes through the tables), and a byte
# they stop at is always judged by the table.
cdef bint _VALUE_FAST = all(
    c in _abnf.FIELD_VALUE_CHAR for c in range(256) if c >= 0x20 and c != 0x7F
)
cdef bint _TARGET_FAST = all(c in _abnf.TARGET_CHAR for c in range(0x21, 0x7F))


cdef int _check_value(const unsigned char* p, Py_ssize_t n, const unsigned char* base) except -1:
    """RFC 9110 §5.5: every byte is SP, HTAB, VCHAR or obs-text; returns whether one is
    obs-text (1) or not (0). ``base`` is the start of the buffer ``p`` points into."""
    cdef Py_ssize_t i = 0
    cdef int high = 0
    if _VALUE_FAST:
        while True:
            i += fs_find_ctl(p + i, n - i, base, &high)
            if i >= n:
                return high
            if not (CT[p[i]] & C_VALUE):
                raise InvalidHeaderError(FIELD_VALUE_REASON)
            i += 1
    for i in range(n):
        if not (CT[p[i]] & C_VALUE):
            raise InvalidHeaderError(FIELD_VALUE_REASON)
        high |= p[i] >= 0x80
    return high


# --- framing fields: read while the environ is built, judged once the head is complete ------
# The twin's _elements / _check_transfer_coding / _content_length, without lists: every
# comma-separated list goes through _next_element, and what the fields say is gathered in
# a Framing record, field by field, so that no value is scanned twice.

cdef enum:
    # the first defect of Content-Length (RFC 9110 §8.6, RFC 9112 §6.3)
    CL_OK = 0
    CL_SYNTAX = 1       # not 1*DIGIT (or an empty element)
    CL_TOO_LARGE = 2    # over 63 bits
    CL_DIFFERS = 3      # a value differs from the one before it

cdef struct Framing:
    bint te                         # a Transfer-Encoding field line was seen
    Py_ssize_t te_codings           # its non-empty elements
    Py_ssize_t te_chunked           # ... that are "chunked"
    bint te_last_chunked            # the last one is "chunked"
    bint te_unknown                 # one is not in _abnf.KNOWN_TRANSFER_CODINGS
    Py_ssize_t cl_lines             # Content-Length field lines
    Py_ssize_t cl_last              # the field index of the last one
    Py_ssize_t cl_elems             # their elements
    int cl_bad                      # the first defect (CL_*)
    unsigned long long cl_value     # the value while there is none
    bint close                      # Connection: close
    bint keep_alive                 # Connection: keep-alive
    bint expect_continue            # Expect: 100-continue


cdef inline void _trim_ows(const unsigned char* v, Py_ssize_t* start, Py_ssize_t* end) noexcept:
    """Narrow ``v[start:end]`` by its leading and trailing OWS (RFC 9110 §5.6.3)."""
    cdef Py_ssize_t k = start[0], d = end[0]
    while k < d and CT[v[k]] & C_OWS:
        k += 1
    while d > k and CT[v[d - 1]] & C_OWS:
        d -= 1
    start[0] = k
    end[0] = d


cdef inline bint _next_element(const unsigned char* v, Py_ssize_t n, Py_ssize_t* pos,
                               Py_ssize_t* start, Py_ssize_t* end) noexcept:
    """RFC 9110 §5.6.1: the next element of the comma-separated list ``v[:n]``.

    ``pos`` starts at 0 and is advanced past the element; the element, OWS trimmed (maybe
    empty, as in the twin's ``_elements``), is ``v[start:end]``. False when none is left.
    """
    cdef Py_ssize_t a = pos[0], b
    if a > n:
        return False
    b = a
    while b < n and v[b] != b",":
        b += 1
    pos[0] = b + 1
    start[0] = a
    end[0] = b
    _trim_ows(v, start, end)
    return True


cdef inline int _decimal(const unsigned char* v, Py_ssize_t k, Py_ssize_t d,
                         unsigned long long* value) noexcept:
    """RFC 9110 §8.6: ``v[k:d]`` as ``1*DIGIT`` of at most 63 bits: CL_OK (and ``value``),
    CL_SYNTAX or CL_TOO_LARGE (a non-digit after the overflow is still CL_SYNTAX)."""
    cdef unsigned long long x = 0
    cdef bint big = False
    if d == k:
        return CL_SYNTAX
    while k < d:
        if v[k] < b"0" or v[k] > b"9":
            return CL_SYNTAX
        if x > (MAX_LENGTH - (v[k] - 48)) // 10:
            big = True
        else:
            x = x * 10 + (v[k] - 48)
        k += 1
    if big:
        return CL_TOO_LARGE
    value[0] = x
    return CL_OK


cdef void _content_length_line(Framing* fr, const unsigned char* v, Py_ssize_t n) noexcept:
    """One Content-Length field value: RFC 9112 §6.3, a list of identical values counts once.

    Element by element, the first defect (syntax, size, a value different from the one
    before) is kept; :func:`_content_length` reports it if Transfer-Encoding is absent.
    """
    cdef Py_ssize_t pos = 0, k, d
    cdef unsigned long long x = 0
    while _next_element(v, n, &pos, &k, &d):
        fr.cl_elems += 1
        if fr.cl_bad != CL_OK:
            continue
        fr.cl_bad = _decimal(v, k, d, &x)
        if fr.cl_bad == CL_OK:
            if fr.cl_elems > 1 and x != fr.cl_value:
                fr.cl_bad = CL_DIFFERS
            fr.cl_value = x


cdef void _transfer_coding_line(Framing* fr, const unsigned char* v, Py_ssize_t n) noexcept:
    """One Transfer-Encoding field value: RFC 9112 §6.1, comma-separated transfer codings,
    case-insensitive, empty elements ignored; judged by :func:`_check_transfer_coding`."""
    cdef Py_ssize_t pos = 0, k, d
    fr.te = True
    while _next_element(v, n, &pos, &k, &d):
        if d > k:
            fr.te_codings += 1
            fr.te_last_chunked = d - k == 7 and _ieq(v + k, b"chunked", 7)
            if fr.te_last_chunked:
                fr.te_chunked += 1
            elif not _known_coding(v + k, d - k):
                fr.te_unknown = True


cdef void _connection_line(Framing* fr, const unsigned char* v, Py_ssize_t n) noexcept:
    """One Connection field value: RFC 9112 §9.3, §9.6, the options "close" and "keep-alive"."""
    cdef Py_ssize_t pos = 0, k, d
    while _next_element(v, n, &pos, &k, &d):
        if d - k == 5 and _ieq(v + k, b"close", 5):
            fr.close = True
        elif d - k == 10 and _ieq(v + k, b"keep-alive", 10):
            fr.keep_alive = True


cdef inline bint _is_100_continue(const unsigned char* v, Py_ssize_t n) noexcept:
    """RFC 9110 §10.1.1: the Expect field value is ``100-continue`` (OWS trimmed, any case)."""
    cdef Py_ssize_t k = 0, d = n
    _trim_ows(v, &k, &d)
    return d - k == 12 and _ieq(v + k, b"100-continue", 12)


cdef inline void _framing_field(Framing* fr, int kind, Py_ssize_t index, object value) noexcept:
    """Read field ``index`` (``value``: its logical value, one latin-1 byte per character)
    into ``fr`` when it is one of the framing fields (kind F_CLEN, F_TE, F_CONN, F_EXPECT)."""
    cdef const unsigned char* v = <const unsigned char*>PyUnicode_DATA(value)
    cdef Py_ssize_t n = PyUnicode_GET_LENGTH(value)
    if kind == F_CLEN:
        fr.cl_lines += 1
        fr.cl_last = index
        _content_length_line(fr, v, n)
    elif kind == F_TE:
        _transfer_coding_line(fr, v, n)
    elif kind == F_CONN:
        _connection_line(fr, v, n)
    elif kind == F_EXPECT:
        fr.expect_continue |= _is_100_continue(v, n)


cdef int _check_transfer_coding(const Framing* fr) except -1:
    """RFC 9112 §6.1, §6.3: the codings must be known, and chunked final and once."""
    if fr.te_codings == 0:
        raise InvalidTransferEncodingError(EMPTY_TRANSFER_ENCODING_REASON)
    if fr.te_unknown:
        raise UnsupportedTransferEncodingError()  # RFC 9110 §15.6.2: 501
    if fr.te_chunked != 1 or not fr.te_last_chunked:
        raise InvalidTransferEncodingError(CHUNKED_NOT_FINAL_REASON)
    return 0


cdef long long _content_length(const Framing* fr) except -1:
    """RFC 9110 §8.6, RFC 9112 §6.3: the length the Content-Length lines give, or their
    first defect raised."""
    if fr.cl_bad == CL_SYNTAX:
        raise InvalidContentLengthError()
    if fr.cl_bad == CL_TOO_LARGE:
        raise InvalidContentLengthError(CONTENT_LENGTH_TOO_LARGE_REASON)
    if fr.cl_bad == CL_DIFFERS:
        raise InvalidContentLengthError(CONTENT_LENGTH_DIFFERS_REASON)
    return <long long>fr.cl_value


cdef bint _known_coding(const unsigned char* p, Py_ssize_t n) noexcept:
    """``p[:n]`` is in ``_abnf.KNOWN_TRANSFER_CODINGS`` (case-insensitive)."""
    cdef bytes c
    cdef const unsigned char* q
    cdef Py_ssize_t i
    for c in KNOWN_CODINGS:
        if PyBytes_GET_SIZE(c) == n:
            q = <const unsigned char*>PyBytes_AS_STRING(c)
            for i in range(n):
                if (p[i] | 0x20 if p[i] >= b"A" and p[i] <= b"Z" else p[i]) != q[i]:
                    break
            else:
                return True
    return False


cdef inline int _add_value(dict env, object key, object value) except -1:
    """``env[key] = value``; a repeated field is joined with "," in arrival order
    (RFC 9110 §5.3). Returns 1 when it was a repeat, else 0."""
    # compare sizes, not identity: "" is a singleton
    cdef Py_ssize_t size = PyDict_GET_SIZE(env)
    cdef PyObject* prev = PyDict_SetDefault(env, key, value)
    if PyDict_GET_SIZE(env) == size:
        env[key] = <object>prev + "," + value
        return 1
    return 0


# --- request parser ------------------------------------------------------------------------

cdef struct Field:
    Py_ssize_t name_start
    Py_ssize_t name_end
    Py_ssize_t value_start   # after leading OWS (a fold: the whole line)
    Py_ssize_t value_end     # CRLF excluded
    int kind
    bint high                # the value holds obs-text
    PyObject* key            # interned environ key of a known name (borrowed), else NULL


cdef enum:
    P_START = 0     # before / inside the request line
    P_FIELDS = 1    # field lines
    P_DONE = 2      # head complete; the next parse() starts a new request

# What a parser keeps from the previous head for the next (docs/parsing.md, "Successive
# heads"): the target's three strs, and for each of the first KEPT_FIELDS field lines, by
# position (a client sends its fields in the same order each time), a KeptField. The
# KeptField array grows to the most field lines a head of the connection had (at most
# KEPT_FIELDS), so an idle connection holds no more than its last head needed.
cdef enum:
    KEPT_URI = 0
    KEPT_PATH = 1
    KEPT_QUERY = 2
    KEPT_TARGET = 3
    KEPT_FIELDS = 32

cdef struct KeptField:
    PyObject* value         # the value's str (owned), or NULL
    PyObject* key           # the environ key (owned), or NULL
    PyObject* shape_value   # the value the shape holds under the key (borrowed from _shape)

cdef enum:
    T_ORIGIN = 0
    T_ABSOLUTE = 1
    T_AUTHORITY = 2
    T_ASTERISK = 3


# set_base(): the connections of a server have bases with the same keys in the same order
# (fastserve._environ.connection_environ), so the last base's keys, checked, and a template
# holding them are kept. The next base with those keys is a copy of that template with the
# base's values put in (a copy is one allocation and a memcpy, and a value put under a key
# already there is not an insert), instead of the checks and two merges.
@cython.final
@cython.auto_pickle(False)
cdef class _BaseShape:
    cdef tuple keys       # the base's keys (the same objects), in order
    cdef dict template    # _TEMPLATE's entries, then these keys with the value None
    cdef Py_ssize_t later

    cdef bint fits(self, dict base) noexcept:
        """``base`` is a dict with exactly these keys (the same objects), in this order."""
        cdef Py_ssize_t pos = 0, i = 0, n = PyTuple_GET_SIZE(self.keys)
        cdef PyObject* key
        cdef PyObject* value
        if type(base) is not dict or PyDict_GET_SIZE(base) != n:
            return False
        while PyDict_Next(base, &pos, &key, &value):
            if i >= n or key != PyTuple_GET_ITEM(self.keys, i):
                return False
            i += 1
        return True

    cdef dict template_for(self, dict base):
        """The template of a base that fits."""
        cdef dict template = PyDict_Copy(self.template)
        PyDict_Update(template, base)
        return template


cdef _BaseShape _base_shape = None


cdef void _keep_base_shape(dict base, dict template, Py_ssize_t later) except *:
    """Keep the shape of ``base`` (checked) and ``template`` (built for it) for the next
    base."""
    global _base_shape
    cdef _BaseShape shape = _BaseShape.__new__(_BaseShape)
    shape.keys = tuple(base)
    shape.template = PyDict_Copy(template)
    for key in shape.keys:
        shape.template[key] = None
    shape.later = later
    _base_shape = shape


@cython.final
cdef class RequestParser:
    cdef public Py_ssize_t max_request_line
    cdef public Py_ssize_t max_field_line
    cdef public Py_ssize_t max_head
    cdef public Py_ssize_t max_fields

    cdef readonly dict environ
    cdef readonly str method
    cdef readonly str version
    cdef readonly long long content_length
    cdef readonly bint chunked
    cdef readonly bint keep_alive
    cdef readonly bint must_close
    cdef readonly bint expect_continue

    # the environ template (see _TEMPLATE) and the room it keeps for entries added later
    cdef dict _template
    cdef Py_ssize_t _later
    # incremental state (offsets into the request's data)
    cdef int _phase
    cdef Py_ssize_t _pos          # start of the first line not yet complete
    cdef Py_ssize_t _scanned      # no LF in data[_pos:_scanned]
    cdef Py_ssize_t _mscan        # request line: the method bytes before this offset are tchar
    cdef Py_ssize_t _head_size
    cdef Py_ssize_t _nlines       # physical field lines
    cdef bint _seen_host
    cdef bint _seen_ctype
    # request line
    cdef Py_ssize_t _rl_start
    cdef Py_ssize_t _m_end        # request line: offset of its first SP; -1 until seen
    cdef Py_ssize_t _t_start
    cdef Py_ssize_t _t_end
    cdef Py_ssize_t _uri_start    # REQUEST_URI start (origin-form "//" collapse)
    cdef Py_ssize_t _path_start
    cdef Py_ssize_t _path_end
    cdef Py_ssize_t _q_start      # -1: no query
    cdef Py_ssize_t _q_end
    cdef Py_ssize_t _host_start   # absolute-form authority without userinfo
    cdef Py_ssize_t _host_end
    cdef int _form
    cdef bint _http11
    # field records
    cdef Field* _fields
    cdef Py_ssize_t _nfields
    cdef Py_ssize_t _cap
    cdef PyObject* _kept_target[KEPT_TARGET]  # owned or NULL (tp_alloc zeroes them)
    cdef KeptField* _kept      # _kept_cap entries, zeroed when added
    cdef Py_ssize_t _kept_cap
    # how many fields the previous head had, -1 when more than KEPT_FIELDS or one was an
    # obs-fold, a dropped or a repeated name
    cdef Py_ssize_t _kept_n
    # the shape of those fields, once two heads in a row had them (see _shaped_environ):
    # _shape_template's entries with the request line's values of the head it was made
    # from (_shape_line, borrowed from _shape), then each kept key with the kept shape_value
    cdef dict _shape
    cdef dict _shape_template
    cdef PyObject* _shape_line[LINE_VALUES]

    def __cinit__(self):
        self._cap = 32
        self._fields = <Field*>PyMem_Malloc(self._cap * sizeof(Field))
        if self._fields == NULL:
            raise MemoryError()

    def __dealloc__(self):
        cdef int i
        PyMem_Free(self._fields)
        for i in range(KEPT_TARGET):
            Py_XDECREF(self._kept_target[i])
        for i in range(self._kept_cap):
            Py_XDECREF(self._kept[i].value)
            Py_XDECREF(self._kept[i].key)
        PyMem_Free(self._kept)

    def __init__(self, Py_ssize_t max_request_line=_abnf.MAX_REQUEST_LINE,
                 Py_ssize_t max_field_line=_abnf.MAX_FIELD_LINE,
                 Py_ssize_t max_head=_abnf.MAX_HEAD,
                 Py_ssize_t max_fields=_abnf.MAX_FIELDS):
        self.max_request_line = max_request_line
        self.max_field_line = max_field_line
        self.max_head = max_head
        self.max_fields = max_fields
        self.environ = {}
        self.method = ""
        self.version = ""
        self._template = _TEMPLATE
        self._later = SERVER_ENTRIES
        self._kept_n = -1
        self.reset()

    def set_base(self, base, /):
        cdef Py_ssize_t n, later
        cdef dict template
        cdef _BaseShape shape
        if not isinstance(base, dict):
            raise TypeError(f"set_base() needs a dict, not {type(base).__name__}")
        n = PyDict_GET_SIZE(base)
        if n == 0:
            self._template = _TEMPLATE
            self._later = SERVER_ENTRIES
            return
        shape = _base_shape
        if shape is not None and shape.fits(<dict>base):
            self._template = shape.template_for(<dict>base)
            self._later = shape.later
            return
        for key in base:
            if key in REQUEST_KEYS or (PyUnicode_Check(key) and key.startswith(KEY_PREFIX_STR)):
                raise ValueError(f"set_base(): {key!r} is set by the request head")
        later = SERVER_ENTRIES - n
        if later < LATER_ENTRIES:
            later = LATER_ENTRIES
        template = __Pyx_PyDict_NewPresized(7 + TEMPLATE_FIELDS + n + later)
        PyDict_Update(template, _TEMPLATE)
        for key, value in base.items():
            # interned keys: the server's lookups of "wsgi.errors" and "wsgi.input" (interned
            # too) then match at the first compare, not by comparing characters
            template[sys.intern(key) if type(key) is str else key] = value
        if type(base) is dict:
            _keep_base_shape(<dict>base, template, later)
        self._template = template
        self._later = later

    cpdef void reset(self):
        """Forget the current request (needed after an error)."""
        self._phase = P_START
        self._pos = 0
        self._scanned = 0
        self._mscan = 0
        self._m_end = -1
        self._head_size = 0
        self._nlines = 0
        self._nfields = 0
        self._seen_host = False
        self._seen_ctype = False

    def parse(self, data, /):
        cdef Buffer b
        _acquire(data, &b)
        if not b.release:
            return self._parse(b.p, b.n)
        try:
            return self._parse(b.p, b.n)
        finally:
            _release(&b)

    cdef Py_ssize_t _parse(self, const unsigned char* p, Py_ssize_t n) except -1:
        cdef Py_ssize_t s, e, le
        cdef const unsigned char* lf
        if self._phase == P_DONE:
            self.reset()
        if n < self._pos:
            raise ValueError(
                "parse() must get the same bytes, extended, until the head is complete"
            )
        while True:
            s = self._pos
            if self._scanned < s:
                self._scanned = s
            lf = <const unsigned char*>memchr(p + self._scanned, b"\n", n - self._scanned)
            if lf == NULL:
                self._scanned = n
                self._check_partial(p, s, n)
                return 0
            e = lf - p
            if e > s and p[e - 1] == b"\r":
                le = e - 1
            else:
                le = e
            # the partial-line checks run again on the complete line, in the same byte
            # order, so the first defect in byte order is reported however data was split
            if self._phase != P_START:
                if _partial_len(p, s, e) > self.max_field_line:
                    raise HeaderFieldTooLargeError()  # RFC 9112 §5, RFC 6585 §5: 431
            else:
                self._check_partial(p, s, e)
            if self._phase == P_START:
                if le == s and e > s:
                    # RFC 9112 §2.2: empty lines before the request line are skipped; they
                    # count toward max_head so an endless stream of them ends.
                    self._head_size += 2
                    if self._head_size > self.max_head:
                        raise HeadTooLargeError()
                    self._pos = self._mscan = e + 1
                    continue
                self._request_line(p, s, le, e)
                self._phase = P_FIELDS
            else:
                if le == e:
                    raise InvalidHeaderError(BARE_LF_FIELDS_REASON)  # RFC 9112 §2.2
                if le == s:
                    self._finish(p)
                    self._phase = P_DONE
                    return e + 1
                self._field_line(p, s, le)
            self._pos = e + 1

    cdef int _check_partial(self, const unsigned char* p, Py_ssize_t s, Py_ssize_t end) except -1:
        """Checks that need only the bytes so far of the line ``p[s:end]`` (no LF in it): the
        line's length limit and, in the request line, its method bytes as they arrive (so a
        TLS ClientHello or any non-token byte is refused at once)."""
        cdef Py_ssize_t length = _partial_len(p, s, end)
        cdef Py_ssize_t limit, too_long_at = -1, i, offset
        cdef unsigned char c
        if self._phase != P_START:
            if length > self.max_field_line:
                raise HeaderFieldTooLargeError()  # RFC 9112 §5, RFC 6585 §5: 431
            return 0
        limit = self.max_request_line
        if length > limit:
            # the byte whose arrival made the line too long (a CR right at the limit is
            # judged by the byte after it)
            too_long_at = limit + 1 if p[s + limit] == b"\r" else limit
        if self._m_end < 0:
            # RFC 9112 §3.1, RFC 9110 §9.1: method = token
            i = s if self._mscan < s else self._mscan
            while i < end and CT[p[i]] & C_TCHAR:
                i += 1
            self._mscan = i
            if i < end:
                c = p[i]
                offset = i - s
                if c == b" " and offset > 0:
                    self._m_end = i
                elif c == b"\r" and offset == 0:
                    # maybe an empty line (RFC 9112 §2.2); the next byte decides
                    if end - s > 1:
                        raise InvalidMethodError()
                elif too_long_at < 0 or offset <= too_long_at:
                    raise InvalidMethodError()
        if too_long_at >= 0:
            raise RequestLineTooLongError()  # RFC 9112 §3, RFC 9110 §15.5.15: 414
        return 0

    cdef int _request_line(self, const unsigned char* p, Py_ssize_t s, Py_ssize_t le,
                           Py_ssize_t e) except -1:
        """RFC 9112 §3: ``request-line = method SP request-target SP HTTP-version CRLF``.

        After the method and length checks (done by ``_check_partial``): line end in the
        method position, bare LF, max_head, stray CR, SP count, target, version.
        """
        cdef Py_ssize_t m = self._m_end, t, i
        cdef const unsigned char* q
        if m < 0:
            raise InvalidMethodError()  # the line ended in the method position
        if le == e:
            raise InvalidRequestLineError(BARE_LF_REQUEST_LINE_REASON)  # RFC 9112 §2.2
        self._head_size += le - s
        if self._head_size > self.max_head:
            raise HeadTooLargeError()
        if memchr(p + s, b"\r", le - s) != NULL:
            raise InvalidRequestLineError(CR_IN_REQUEST_LINE_REASON)
        # exactly one SP between the parts
        q = <const unsigned char*>memchr(p + m + 1, b" ", le - m - 1)
        if q == NULL or memchr(q + 1, b" ", le - (q + 1 - p)) != NULL:
            raise InvalidRequestLineError(REQUEST_LINE_SP_REASON)
        t = q - p
        self._rl_start = s
        self._t_start = m + 1
        self._t_end = t
        # RFC 9112 §3.2: request-target = 1*( visible ASCII )
        if t == m + 1:
            raise InvalidTargetError(EMPTY_TARGET_REASON)
        i = m + 1
        while i < t:
            if _TARGET_FAST:
                i += fs_find_nontarget(p + i, t - i)
                if i == t:
                    break
            if not (CT[p[i]] & C_TARGET):
                raise InvalidTargetError(TARGET_BYTE_REASON)
            i += 1
        self._target(p, m + 1, t)
        self._version(p, t + 1, le)
        return 0

    cdef int _target(self, const unsigned char* p, Py_ssize_t ts, Py_ssize_t te) except -1:
        """Classify the request-target ``p[ts:te]`` (RFC 9112 §3.2) and record its parts."""
        cdef Py_ssize_t i, path_start, end
        cdef const unsigned char* hash_
        cdef const unsigned char* qmark
        cdef Py_ssize_t mlen = self._m_end - self._rl_start
        self._q_start = -1
        self._q_end = -1
        self._host_start = -1
        if mlen == 7 and memcmp(p + self._rl_start, b"CONNECT", 7) == 0:
            self._authority_form(p, ts, te)
            return 0
        if p[ts] == b"/":
            # §3.2.1 origin-form; a leading run of "/" collapses to one (werkzeug)
            i = ts
            while i + 1 < te and p[i + 1] == b"/":
                i += 1
            self._form = T_ORIGIN
            self._uri_start = i
            path_start = i
        elif te - ts == 1 and p[ts] == b"*":
            # §3.2.4 asterisk-form, only with OPTIONS
            if not (mlen == 7 and memcmp(p + self._rl_start, b"OPTIONS", 7) == 0):
                raise InvalidTargetError(ASTERISK_TARGET_REASON)
            self._form = T_ASTERISK
            self._uri_start = ts
            self._path_start = ts
            self._path_end = te
            return 0
        else:
            path_start = self._absolute_form(p, ts, te)
        # path up to "?" or "#"; query after "?" up to "#" (the fragment is dropped)
        hash_ = <const unsigned char*>memchr(p + path_start, b"#", te - path_start)
        end = te if hash_ == NULL else hash_ - p
        qmark = <const unsigned char*>memchr(p + path_start, b"?", end - path_start)
        self._path_start = path_start
        if qmark == NULL:
            self._path_end = end
        else:
            self._path_end = qmark - p
            self._q_start = qmark - p + 1
            self._q_end = end
        return 0

    cdef int _authority_form(self, const unsigned char* p, Py_ssize_t ts,
                             Py_ssize_t te) except -1:
        """RFC 9112 §3.2.3: ``authority-form = uri-host ":" port``, only (and always) with
        CONNECT."""
        cdef Py_ssize_t i = te - 1, a
        cdef unsigned char c
        while i >= ts and p[i] >= b"0" and p[i] <= b"9":
            i -= 1
        if i <= ts or p[i] != b":" or i == te - 1:
            raise InvalidTargetError(CONNECT_TARGET_REASON)
        for a in range(ts, te):
            c = p[a]
            if c == b"/" or c == b"?" or c == b"#" or c == b"@":
                raise InvalidTargetError(CONNECT_TARGET_REASON)
        self._form = T_AUTHORITY
        self._uri_start = ts
        self._path_start = self._path_end = ts
        return 0

    cdef Py_ssize_t _absolute_form(self, const unsigned char* p, Py_ssize_t ts,
                                   Py_ssize_t te) except -1:
        """RFC 9112 §3.2.2: ``absolute-form = absolute-URI``; records the host and returns
        where the path starts. RFC 3986 §3.1:
        ``scheme = ALPHA *( ALPHA / DIGIT / "+" / "-" / "." )``, then ``"://" authority``."""
        cdef Py_ssize_t i, a, ae, h
        cdef unsigned char c = p[ts] | 0x20
        if not (c >= b"a" and c <= b"z"):
            raise InvalidTargetError()
        i = ts + 1
        while i < te:
            c = p[i]
            if not ((c | 0x20) >= b"a" and (c | 0x20) <= b"z" or c >= b"0" and c <= b"9"
                    or c == b"+" or c == b"-" or c == b"."):
                break
            i += 1
        if te - i < 3 or memcmp(p + i, b"://", 3) != 0:
            raise InvalidTargetError()
        a = i + 3
        ae = a
        while ae < te:
            c = p[ae]
            if c == b"/" or c == b"?" or c == b"#":
                break
            ae += 1
        # RFC 3986 §3.2, RFC 9110 §4.2.1: the one Python rule (absolute-form is rare);
        # the host starts after the userinfo, which never reaches HTTP_HOST
        h = a + <Py_ssize_t>_authority_host(PyBytes_FromStringAndSize(<const char*>p + a, ae - a))
        self._form = T_ABSOLUTE
        self._host_start = h
        self._host_end = ae
        self._uri_start = ts
        return ae

    cdef int _version(self, const unsigned char* p, Py_ssize_t vs, Py_ssize_t ve) except -1:
        """RFC 9112 §2.3: ``HTTP-version = "HTTP/" DIGIT "." DIGIT``; only 1.0 and 1.1 served."""
        if ve - vs != 8:
            raise InvalidVersionError()
        if memcmp(p + vs, b"HTTP/1.", 7) == 0 and (p[vs + 7] == b"1" or p[vs + 7] == b"0"):
            self._http11 = p[vs + 7] == b"1"
            return 0
        if (memcmp(p + vs, b"HTTP/", 5) == 0 and p[vs + 5] >= b"0" and p[vs + 5] <= b"9"
                and p[vs + 6] == b"." and p[vs + 7] >= b"0" and p[vs + 7] <= b"9"):
            raise UnsupportedVersionError()  # RFC 9110 §15.6.6: 505
        raise InvalidVersionError()

    cdef int _field_line(self, const unsigned char* p, Py_ssize_t s, Py_ssize_t le) except -1:
        """One complete field line ``p[s:le]`` (RFC 9110 §5.5, RFC 9112 §5), validated and
        recorded as offsets. Its length and line end were checked by the caller."""
        cdef Py_ssize_t name_end, value_start
        cdef bint high
        cdef int kind
        cdef Field* f
        cdef PyObject* key
        # RFC 6585 §5: limits on the whole head and on the number of field lines
        self._head_size += le - s
        if self._head_size > self.max_head:
            raise HeadTooLargeError()
        self._nlines += 1
        if self._nlines > self.max_fields:
            raise TooManyHeadersError()
        kind = _check_field_content(p, s, le, self._nfields > 0,
                                    &name_end, &value_start, &high, &key)
        if kind == F_HOST:
            if self._seen_host:
                raise DuplicateHeaderError(DUPLICATE_HOST_REASON)  # RFC 9112 §3.2
            self._seen_host = True
        elif kind == F_CTYPE:
            if self._seen_ctype:
                raise DuplicateHeaderError(DUPLICATE_CONTENT_TYPE_REASON)  # RFC 9110 §8.3
            self._seen_ctype = True
        if self._nfields == self._cap:
            f = <Field*>PyMem_Realloc(self._fields, 2 * self._cap * sizeof(Field))
            if f == NULL:
                raise MemoryError()
            self._fields = f
            self._cap *= 2
        f = &self._fields[self._nfields]
        f.name_start = s
        f.name_end = name_end
        f.value_start = value_start
        f.value_end = le
        f.kind = kind
        f.high = high
        f.key = key
        self._nfields += 1
        return 0

    cdef object _path_info(self, const unsigned char* p):
        """PATH_INFO: percent-decoded, then ``.decode("utf-8", "replace")``, re-encoded and read
        as latin-1 (exactly ``unquote(path).encode().decode("latin-1")``)."""
        cdef Py_ssize_t s = self._path_start, e = self._path_end
        cdef Py_ssize_t i, j
        cdef unsigned char* buf
        cdef unsigned char acc = 0
        cdef signed char hi, lo
        if memchr(p + s, b"%", e - s) == NULL:
            return _kept_or_new(&self._kept_target[KEPT_PATH], p + s, e - s, False)
        buf = <unsigned char*>PyMem_Malloc(e - s)
        if buf == NULL:
            raise MemoryError()
        try:
            i = s
            j = 0
            while i < e:
                if p[i] == b"%" and e - i >= 3:
                    hi = HEXVAL[p[i + 1]]
                    lo = HEXVAL[p[i + 2]]
                    if hi >= 0 and lo >= 0:
                        buf[j] = <unsigned char>(hi * 16 + lo)
                        acc |= buf[j]
                        j += 1
                        i += 3
                        continue
                buf[j] = p[i]
                j += 1
                i += 1
            if not (acc & 0x80):
                return _ascii(buf, j)
            text = PyUnicode_DecodeUTF8(<const char*>buf, j, "replace")
            raw = text.encode("utf-8")
            return PyUnicode_DecodeLatin1(PyBytes_AS_STRING(raw), PyBytes_GET_SIZE(raw), NULL)
        finally:
            PyMem_Free(buf)

    cdef inline str _method_name(self, const unsigned char* p):
        """The method: one of the interned METHODS, else a new str."""
        cdef Py_ssize_t ms = self._rl_start, mlen = self._m_end - ms
        cdef str name
        for name in METHODS:
            if (PyUnicode_GET_LENGTH(name) == mlen
                    and memcmp(PyUnicode_DATA(name), p + ms, mlen) == 0):
                return name
        return _ascii(p + ms, mlen)

    cdef inline dict _request_environ(self, const unsigned char* p, str method, str version,
                                      dict source, PyObject** line):
        """A new environ: the entries of ``source`` (the template, see ``_TEMPLATE``, or the
        shape, see ``_shaped_environ``), then the request line's values that are not the
        ones ``source`` holds (``line``, by LINE_* index)."""
        cdef dict env
        cdef object path, query, uri
        if source is not self._template or self._nfields <= TEMPLATE_FIELDS:
            env = PyDict_Copy(source)
        else:
            env = __Pyx_PyDict_NewPresized(
                PyDict_GET_SIZE(self._template) + self._nfields + self._later
            )
            PyDict_Update(env, self._template)
        if <PyObject*>method != line[LINE_METHOD]:
            env[K_REQUEST_METHOD] = method
        if <PyObject*>version != line[LINE_VERSION]:
            env[K_SERVER_PROTOCOL] = version
        path = S_STAR if self._form == T_ASTERISK else self._path_info(p)
        if <PyObject*>path != line[LINE_PATH]:
            env[K_PATH_INFO] = path
        if self._q_start >= 0:
            query = _kept_or_new(&self._kept_target[KEPT_QUERY], p + self._q_start,
                                 self._q_end - self._q_start, False)
        else:
            query = S_EMPTY
        if <PyObject*>query != line[LINE_QUERY]:
            env[K_QUERY_STRING] = query
        uri = _kept_or_new(&self._kept_target[KEPT_URI], p + self._uri_start,
                           self._t_end - self._uri_start, False)
        if <PyObject*>uri != line[LINE_URI]:
            env[K_REQUEST_URI] = uri
            env[K_RAW_URI] = uri
        return env

    cdef inline Py_ssize_t _fold_end(self, Py_ssize_t i) noexcept:
        """The index of the first field after field ``i`` and its obs-fold lines."""
        i += 1
        while i < self._nfields and self._fields[i].kind == F_FOLD:
            i += 1
        return i

    cdef inline object _field_value(self, const unsigned char* p, Py_ssize_t i, Py_ssize_t end):
        """The value of field ``i`` as a latin-1 str, with its obs-fold lines ``i+1:end``
        appended whole, CRLFs removed (RFC 9112 §5.2)."""
        cdef Field* f = &self._fields[i]
        if end != i + 1:
            return self._folded_value(p, i, end)
        if i < self._kept_cap:
            return _kept_or_new(&self._kept[i].value, p + f.value_start,
                                f.value_end - f.value_start, f.high)
        return _latin1(p + f.value_start, f.value_end - f.value_start, f.high)

    cdef object _folded_value(self, const unsigned char* p, Py_ssize_t i, Py_ssize_t end):
        """``_field_value`` when there are obs-fold lines: one str, written in place."""
        cdef Field* f = &self._fields[i]
        cdef Field* g
        cdef Py_ssize_t k, n = f.value_end - f.value_start
        cdef bint high = f.high
        cdef unsigned char* w
        for k in range(i + 1, end):
            g = &self._fields[k]
            n += g.value_end - g.value_start
            high |= g.high
        value = PyUnicode_New(n, 255 if high else 127)
        w = <unsigned char*>PyUnicode_DATA(value)
        for k in range(i, end):
            g = &self._fields[k]
            memcpy(w, p + g.value_start, g.value_end - g.value_start)
            w += g.value_end - g.value_start
        return value

    cdef int _add_fields(self, const unsigned char* p, dict env, Framing* fr) except -1:
        """Every field into the environ under werkzeug's key, the framing fields into ``fr``;
        the keys are kept for the next head (``_kept_n``).

        Names with "_" are left out (werkzeug drops them: "_" and "-" map to the same key).
        """
        cdef Py_ssize_t i = 0, end
        cdef Field* f
        cdef object key, value
        cdef bint plain = self._nfields <= KEPT_FIELDS
        while i < self._nfields:
            f = &self._fields[i]
            end = self._fold_end(i)
            if f.kind == F_DROP or end != i + 1:
                plain = False
            if f.kind != F_DROP:
                value = self._field_value(p, i, end)
                if f.kind != F_OTHER:
                    _framing_field(fr, f.kind, i, value)
                key = self._field_key(p, i)
                if _add_value(env, key, value):
                    plain = False
            i = end
        self._kept_n = self._nfields if plain else -1
        return 0

    cdef object _field_key(self, const unsigned char* p, Py_ssize_t i):
        """The environ key of field ``i``: the table's, else the one kept at this position
        when it is this name's, else a new one; kept for the next head."""
        cdef Field* f = &self._fields[i]
        cdef PyObject* kept
        cdef object key
        if f.key != NULL:
            key = <object>f.key
        elif i < self._kept_cap and _is_environ_key(self._kept[i].key, p + f.name_start,
                                                    f.name_end - f.name_start):
            return <object>self._kept[i].key
        else:
            key = _environ_key(p + f.name_start, f.name_end - f.name_start)
        if i < self._kept_cap and self._kept[i].key != <PyObject*>key:
            kept = self._kept[i].key
            Py_INCREF(key)
            self._kept[i].key = <PyObject*>key
            Py_XDECREF(kept)
        return key

    cdef int _keep_room(self) except -1:
        """Room in ``_kept`` for this head's field lines (at most KEPT_FIELDS)."""
        cdef Py_ssize_t n = self._nfields if self._nfields < KEPT_FIELDS else KEPT_FIELDS
        cdef KeptField* grown
        if n <= self._kept_cap:
            return 0
        grown = <KeptField*>PyMem_Realloc(self._kept, n * sizeof(KeptField))
        if grown == NULL:
            raise MemoryError()
        memset(grown + self._kept_cap, 0, (n - self._kept_cap) * sizeof(KeptField))
        self._kept = grown
        self._kept_cap = n
        return 0

    cdef bint _same_keys(self, const unsigned char* p) noexcept:
        """This head's fields have the kept keys, in the same order (so no obs-fold, no
        dropped and no repeated name: see ``_kept_n``)."""
        cdef Py_ssize_t i
        cdef Field* f
        if self._nfields == 0 or self._kept_n != self._nfields:
            return False
        for i in range(self._nfields):
            f = &self._fields[i]
            if f.key != NULL:
                if f.key != self._kept[i].key:
                    return False
            elif f.kind != F_OTHER or not _is_environ_key(
                    self._kept[i].key, p + f.name_start, f.name_end - f.name_start):
                return False
        return True

    cdef void _keep_shape(self, dict env) except *:
        """Keep the shape of this head's fields (they have the kept keys and values) and
        request line (its values in ``env``, the environ just made)."""
        cdef dict shape = PyDict_Copy(self._template)
        cdef Py_ssize_t i
        cdef int k
        cdef tuple line_keys = (K_REQUEST_METHOD, K_SERVER_PROTOCOL, K_PATH_INFO, K_QUERY_STRING,
                                K_REQUEST_URI)
        for k in range(LINE_VALUES):
            value = env[line_keys[k]]
            shape[line_keys[k]] = value
            self._shape_line[k] = <PyObject*>value
        shape[K_RAW_URI] = env[K_RAW_URI]
        for i in range(self._kept_n):
            PyDict_SetItem(shape, <object>self._kept[i].key, <object>self._kept[i].value)
            self._kept[i].shape_value = self._kept[i].value
        self._shape = shape
        self._shape_template = self._template

    cdef dict _shaped_environ(self, const unsigned char* p, str method, str version,
                              Framing* fr):
        """The environ of a head whose fields have the kept keys, in order, when their shape
        is kept: a copy of the shape (its keys in place, most values too: a keep-alive
        client repeats its fields), then the values that differ put in.

        A value that differs from the shape's but repeats the previous head's goes into
        the shape too; one that changes every time (a request id) costs one put per head,
        as it would in ``_add_fields``.
        """
        cdef dict env = self._request_environ(p, method, version, self._shape, self._shape_line)
        cdef Py_ssize_t i
        cdef Field* f
        cdef PyObject** slot
        cdef PyObject* before
        cdef object key, value
        for i in range(self._nfields):
            f = &self._fields[i]
            slot = &self._kept[i].value
            before = slot[0]
            value = _kept_or_new(slot, p + f.value_start, f.value_end - f.value_start, f.high)
            if f.kind != F_OTHER:
                _framing_field(fr, f.kind, i, value)
            if <PyObject*>value != self._kept[i].shape_value:
                key = <object>self._kept[i].key
                PyDict_SetItem(env, key, value)
                if <PyObject*>value == before:
                    PyDict_SetItem(self._shape, key, value)
                    self._kept[i].shape_value = <PyObject*>value
        return env

    cdef inline long long _framing(self, const unsigned char* p, dict env, const Framing* fr,
                                   bint* must_close) except -2:
        """RFC 9112 §6.1, §6.3: the body's length, ``-1`` when Transfer-Encoding frames it
        (Content-Length is then ignored); ``must_close`` when the framing is in doubt."""
        cdef long long length
        must_close[0] = False
        if fr.te:
            _check_transfer_coding(fr)
            if fr.cl_lines:
                # passed through unchecked (werkzeug)
                env[K_CONTENT_LENGTH] = self._field_value(p, fr.cl_last, self._fold_end(fr.cl_last))
            # TE with CL, or TE in HTTP/1.0: close after the response
            must_close[0] = fr.cl_lines > 0 or not self._http11
            return -1
        if not fr.cl_lines:
            return 0
        length = _content_length(fr)
        if fr.cl_elems > 1:
            env[K_CONTENT_LENGTH] = str(length)
        return length

    cdef int _finish(self, const unsigned char* p) except -1:
        """The head is complete: build the environ and decide the framing (RFC 9112 §6)."""
        cdef Framing fr
        cdef bint must_close
        cdef long long content_length
        cdef str method = self._method_name(p)
        cdef str version = S_HTTP11 if self._http11 else S_HTTP10
        cdef dict env
        cdef bint same_keys
        self._keep_room()
        same_keys = self._same_keys(p)
        memset(&fr, 0, sizeof(Framing))
        if same_keys and self._shape is not None and self._shape_template is self._template:
            env = self._shaped_environ(p, method, version, &fr)
        else:
            self._shape = None
            env = self._request_environ(p, method, version, self._template, _TEMPLATE_LINE)
            self._add_fields(p, env, &fr)
            if same_keys:
                # the same names as the previous head: keep their shape for the next
                self._keep_shape(env)
        if self._host_start >= 0:
            # RFC 9112 §3.2.2: an absolute-form target's authority replaces Host
            env[K_HTTP_HOST] = _ascii(p + self._host_start, self._host_end - self._host_start)
        content_length = self._framing(p, env, &fr, &must_close)
        # results are replaced only once the head is known to be good
        self.environ = env
        self.method = method
        self.version = version
        self.content_length = content_length
        self.chunked = content_length < 0
        self.must_close = must_close
        # RFC 9112 §9.3: persistence
        if must_close or fr.close:
            self.keep_alive = False
        elif self._http11:
            self.keep_alive = True
        else:
            self.keep_alive = fr.keep_alive
        self.expect_continue = fr.expect_continue
        return 0


# --- chunked body decoder (RFC 9112 §7.1) --------------------------------------------------

cdef enum:
    D_SIZE = 0      # chunk-size line
    D_DATA = 1      # chunk data
    D_CRLF = 2      # the CRLF after chunk data
    D_TRAILER = 3   # trailer section
    D_DONE = 4


cdef int _parse_chunk_size(const unsigned char* p, Py_ssize_t s, Py_ssize_t e,
                           unsigned long long* size) except -1:
    """``chunk-size [ chunk-ext ]`` in ``p[s:e]`` (CRLF stripped), RFC 9112 §7.1.1.

    ``chunk-size = 1*HEXDIG`` (63 bits at most); ``chunk-ext = *( BWS ";" BWS ext-name
    [ BWS "=" BWS ext-val ] )`` with ext-val a token or quoted-string (RFC 9110 §5.6.4),
    skipped.
    """
    cdef Py_ssize_t i = s, j
    cdef unsigned long long v = 0
    cdef unsigned char c
    cdef bint too_large = False
    while i < e and HEXVAL[p[i]] >= 0:
        # an overflow is reported after the syntax checks (the order of the twin)
        if v > (MAX_LENGTH >> 4):
            too_large = True
        else:
            v = (v << 4) | <unsigned long long>HEXVAL[p[i]]
            if v > MAX_LENGTH:
                too_large = True
        i += 1
    if i == s:
        raise InvalidChunkError(CHUNK_SIZE_MISSING_REASON)
    while i < e:
        while i < e and CT[p[i]] & C_OWS:
            i += 1
        if i == e or p[i] != b";":
            raise InvalidChunkError(CHUNK_EXT_REASON)
        i += 1
        while i < e and CT[p[i]] & C_OWS:
            i += 1
        j = i
        while i < e and CT[p[i]] & C_TCHAR:
            i += 1
        if i == j:
            raise InvalidChunkError(CHUNK_EXT_REASON)
        j = i
        while j < e and CT[p[j]] & C_OWS:
            j += 1
        if j < e and p[j] == b"=":
            i = j + 1
            while i < e and CT[p[i]] & C_OWS:
                i += 1
            if i < e and p[i] == b'"':
                i += 1
                while True:
                    if i >= e:
                        raise InvalidChunkError(CHUNK_EXT_REASON)
                    c = p[i]
                    if c == b'"':
                        i += 1
                        break
                    if c == b"\\":
                        # quoted-pair = "\" ( HTAB / SP / VCHAR / obs-text )
                        if i + 1 >= e or not (CT[p[i + 1]] & C_VALUE):
                            raise InvalidChunkError(CHUNK_EXT_REASON)
                        i += 2
                        continue
                    # qdtext = HTAB / SP / %x21 / %x23-5B / %x5D-7E / obs-text
                    if not (CT[c] & C_VALUE):
                        raise InvalidChunkError(CHUNK_EXT_REASON)
                    i += 1
            else:
                j = i
                while i < e and CT[p[i]] & C_TCHAR:
                    i += 1
                if i == j:
                    raise InvalidChunkError(CHUNK_EXT_REASON)
    if too_large:
        raise InvalidChunkError(CHUNK_SIZE_TOO_LARGE_REASON)  # RFC 9112 §7.1: 63 bits at most
    size[0] = v
    return 0


@cython.final
cdef class ChunkedDecoder:
    cdef public Py_ssize_t max_field_line
    cdef public Py_ssize_t max_head
    cdef public Py_ssize_t max_fields
    cdef readonly bint done

    cdef int _state
    cdef unsigned long long _remaining
    cdef Py_ssize_t _trailer_size
    cdef Py_ssize_t _trailer_lines
    cdef Py_ssize_t* _pieces      # (start, length) pairs of chunk data in the current call
    cdef Py_ssize_t _cap

    def __cinit__(self):
        self._cap = 8
        self._pieces = <Py_ssize_t*>PyMem_Malloc(2 * self._cap * sizeof(Py_ssize_t))
        if self._pieces == NULL:
            raise MemoryError()

    def __dealloc__(self):
        PyMem_Free(self._pieces)

    def __init__(self, Py_ssize_t max_field_line=_abnf.MAX_FIELD_LINE,
                 Py_ssize_t max_head=_abnf.MAX_HEAD,
                 Py_ssize_t max_fields=_abnf.MAX_FIELDS):
        self.max_field_line = max_field_line
        self.max_head = max_head
        self.max_fields = max_fields
        self.done = False
        self._state = D_SIZE
        self._remaining = 0
        self._trailer_size = 0
        self._trailer_lines = 0

    def decode(self, data, /):
        cdef Buffer b
        _acquire(data, &b)
        try:
            return self._decode(b.p, b.n)
        finally:
            _release(&b)

    cdef tuple _decode(self, const unsigned char* p, Py_ssize_t n):
        cdef Py_ssize_t pos = 0, npieces = 0, total = 0, e, le, k, i
        cdef const unsigned char* lf
        cdef bytes out
        cdef char* w
        while pos < n:
            if self._state == D_DATA:
                k = n - pos
                if <unsigned long long>k > self._remaining:
                    k = <Py_ssize_t>self._remaining
                self._add_piece(npieces, pos, k)
                npieces += 1
                total += k
                pos += k
                self._remaining -= k
                if self._remaining == 0:
                    self._state = D_CRLF
            elif self._state == D_CRLF:
                # RFC 9112 §7.1: chunk = chunk-size [ chunk-ext ] CRLF chunk-data CRLF
                if p[pos] != b"\r":
                    raise InvalidChunkError(CHUNK_DATA_END_REASON)
                if n - pos < 2:
                    break
                if p[pos + 1] != b"\n":
                    raise InvalidChunkError(CHUNK_DATA_END_REASON)
                pos += 2
                self._state = D_SIZE
            elif self._state == D_SIZE or self._state == D_TRAILER:
                lf = <const unsigned char*>memchr(p + pos, b"\n", n - pos)
                if lf == NULL:
                    if _partial_len(p, pos, n) > self.max_field_line:
                        raise HeaderFieldTooLargeError()
                    break
                e = lf - p
                le = e - 1 if e > pos and p[e - 1] == b"\r" else e
                if le - pos > self.max_field_line:
                    raise HeaderFieldTooLargeError()
                if self._state == D_SIZE:
                    if le == e:
                        raise InvalidChunkError(BARE_LF_CHUNK_SIZE_REASON)
                    self._size_line(p, pos, le)
                else:
                    if le == e:
                        raise InvalidHeaderError(BARE_LF_TRAILER_REASON)
                    if le == pos:
                        pos = e + 1
                        self._state = D_DONE
                        self.done = True
                        break
                    self._trailer_line(p, pos, le)
                pos = e + 1
            else:  # D_DONE: never consume past the end of the message
                break
        out = PyBytes_FromStringAndSize(NULL, total)
        w = PyBytes_AS_STRING(out)
        for i in range(npieces):
            memcpy(w, p + self._pieces[2 * i], self._pieces[2 * i + 1])
            w += self._pieces[2 * i + 1]
        return out, pos

    cdef int _add_piece(self, Py_ssize_t index, Py_ssize_t start, Py_ssize_t length) except -1:
        """Record chunk data ``p[start:start + length]`` as piece ``index`` of this call."""
        cdef Py_ssize_t* grown
        if index == self._cap:
            grown = <Py_ssize_t*>PyMem_Realloc(self._pieces, 4 * self._cap * sizeof(Py_ssize_t))
            if grown == NULL:
                raise MemoryError()
            self._pieces = grown
            self._cap *= 2
        self._pieces[2 * index] = start
        self._pieces[2 * index + 1] = length
        return 0

    cdef int _size_line(self, const unsigned char* p, Py_ssize_t s, Py_ssize_t le) except -1:
        """``chunk-size [ chunk-ext ]`` in ``p[s:le]`` (CRLF excluded); sets the next state."""
        cdef unsigned long long size
        _parse_chunk_size(p, s, le, &size)
        if size == 0:
            self._state = D_TRAILER  # last-chunk (RFC 9112 §7.1)
        else:
            self._remaining = size
            self._state = D_DATA
        return 0

    cdef int _trailer_line(self, const unsigned char* p, Py_ssize_t s, Py_ssize_t le) except -1:
        """RFC 9112 §7.1.2: ``trailer-section = *( field-line CRLF )``; a field line
        ``p[s:le]`` with the same rules and limits as the head's, then dropped."""
        cdef Py_ssize_t name_end, value_start
        cdef bint high
        cdef PyObject* key
        self._trailer_size += le - s
        if self._trailer_size > self.max_head:
            raise HeadTooLargeError()
        self._trailer_lines += 1
        if self._trailer_lines > self.max_fields:
            raise TooManyHeadersError()
        _check_field_content(p, s, le, self._trailer_lines > 1,
                             &name_end, &value_start, &high, &key)
        return 0


# --- response head (RFC 9112 §4, RFC 9110 §5.5) --------------------------------------------

cdef inline const unsigned char* _latin1_data(object s, Py_ssize_t* n, str what) except NULL:
    """The UCS1 data of a str, or ``ValueError`` when it is not latin-1 encodable."""
    PyUnicode_READY(s)
    if PyUnicode_KIND(s) != PyUnicode_1BYTE_KIND:
        raise ValueError(f"{what} is not latin-1 encodable: {s!r}")
    n[0] = PyUnicode_GET_LENGTH(s)
    return <const unsigned char*>PyUnicode_DATA(s)


cdef inline bint _has_ctl_split(const unsigned char* p, Py_ssize_t n) noexcept:
    """``p[:n]`` holds CR, LF or NUL: bytes that could split or truncate the head."""
    cdef Py_ssize_t i
    cdef unsigned char c
    for i in range(n):
        c = p[i]
        if c == b"\r" or c == b"\n" or c == 0:
            return True
    return False


cdef int _response_field(object item, object name, object value, int* flags,
                         long long* content_length) except -1:
    """Check one header ``item`` (``name, value``) of the application's and note what the
    server must know about it in ``flags`` (1: Connection: close, 2: Transfer-Encoding, 4:
    Content-Length); a Content-Length's value goes into ``content_length``."""
    cdef const unsigned char* np_
    cdef const unsigned char* vp
    cdef Py_ssize_t nlen, vlen, i, k, d, pos = 0
    cdef unsigned long long length
    if not PyUnicode_Check(name) or not PyUnicode_Check(value):
        raise TypeError(f"header names and values must be str: {item!r}")
    np_ = _latin1_data(name, &nlen, "header name")
    vp = _latin1_data(value, &vlen, "header value")
    # RFC 9110 §5.1: field-name = token; §5.5: no CR, LF or NUL in a value
    if nlen == 0:
        raise ValueError("empty header name")
    for i in range(nlen):
        if not (CT[np_[i]] & C_TCHAR):
            raise ValueError(f"invalid header name {name!r}")
    if _has_ctl_split(vp, vlen):
        raise ValueError(f"invalid header value for {name!r}: {value!r}")
    if nlen == 14 and _ieq(np_, b"content-length", 14):
        # RFC 9110 §8.6: Content-Length = 1*DIGIT; the last one counts
        flags[0] |= 4
        k = 0
        d = vlen
        _trim_ows(vp, &k, &d)
        if _decimal(vp, k, d, &length) != CL_OK:
            raise ValueError(f"invalid Content-Length {value!r}")
        content_length[0] = <long long>length
        return 0
    if nlen == 10 and _ieq(np_, b"connection", 10):
        # RFC 9112 §9.6: the "close" connection option
        while _next_element(vp, vlen, &pos, &k, &d):
            if d - k == 5 and _ieq(vp + k, b"close", 5):
                flags[0] |= 1
    elif nlen == 17 and _ieq(np_, b"transfer-encoding", 17):
        flags[0] |= 2
    return 0


cdef bytes _response_head(const Buffer* vb, const unsigned char* sp, Py_ssize_t slen,
                          const Buffer* pre, int npre, list parts,
                          const Buffer* post, int npost):
    """``version SP status CRLF``, the ``pre`` pieces, then ``name ": " value CRLF`` for each
    (name, value) in ``parts`` (checked latin-1 strs), then the ``post`` pieces, in one
    allocation."""
    cdef Py_ssize_t total = vb.n + 1 + slen + 2, i, nlen, vlen
    cdef bytes out
    cdef unsigned char* w
    for i in range(npre):
        total += pre[i].n
    for i in range(npost):
        total += post[i].n
    for i in range(0, len(parts), 2):
        total += PyUnicode_GET_LENGTH(parts[i]) + 2 + PyUnicode_GET_LENGTH(parts[i + 1]) + 2
    out = PyBytes_FromStringAndSize(NULL, total)
    w = <unsigned char*>PyBytes_AS_STRING(out)
    memcpy(w, vb.p, vb.n)
    w += vb.n
    w[0] = b" "
    w += 1
    memcpy(w, sp, slen)
    w += slen
    w[0] = b"\r"
    w[1] = b"\n"
    w += 2
    for i in range(npre):
        memcpy(w, pre[i].p, pre[i].n)
        w += pre[i].n
    for i in range(0, len(parts), 2):
        name = parts[i]
        value = parts[i + 1]
        nlen = PyUnicode_GET_LENGTH(name)
        vlen = PyUnicode_GET_LENGTH(value)
        memcpy(w, PyUnicode_DATA(name), nlen)
        w += nlen
        w[0] = b":"
        w[1] = b" "
        w += 2
        memcpy(w, PyUnicode_DATA(value), vlen)
        w += vlen
        w[0] = b"\r"
        w[1] = b"\n"
        w += 2
    for i in range(npost):
        memcpy(w, post[i].p, post[i].n)
        w += post[i].n
    return out


cdef int _status_code(str status, const unsigned char** sp, Py_ssize_t* slen) except -1:
    """Check the application's status (RFC 9112 §4: status-line = HTTP-version SP
    status-code SP [ reason-phrase ]); its code, and its latin-1 data in ``sp``."""
    cdef const unsigned char* p = _latin1_data(status, slen, "status")
    cdef Py_ssize_t n = slen[0]
    cdef int code
    if (n < 3 or not (b"0" <= p[0] <= b"9" and b"0" <= p[1] <= b"9" and b"0" <= p[2] <= b"9")
            or (n > 3 and p[3] != b" ") or _has_ctl_split(p, n)):
        raise ValueError(f"invalid status {status!r}")
    code = (p[0] - 48) * 100 + (p[1] - 48) * 10 + (p[2] - 48)
    if code < 100:
        raise ValueError(f"invalid status code {status!r}")
    sp[0] = p
    return code


cdef list _head_fields(list items, int* flags, long long* content_length):
    """Check the application's headers: ``[name, value, ...]`` for
    :func:`_response_head`, what the server must know in ``flags`` and the last
    ``Content-Length`` in ``content_length`` (left alone when there is none)."""
    cdef list parts = []
    cdef object name, value
    # a plain loop over the list: unpacking an item that is not a tuple runs Python code,
    # which may change the list (the twin's loop sees the change the same way)
    for item in items:
        if type(item) is tuple and PyTuple_GET_SIZE(item) == 2:
            name = <object>PyTuple_GET_ITEM(item, 0)
            value = <object>PyTuple_GET_ITEM(item, 1)
        else:
            name, value = item
        _response_field(item, name, value, flags, content_length)
        parts.append(name)
        parts.append(value)
    return parts


def serialize_response_head(version, str status not None, headers, preamble):
    cdef Buffer vb, pb
    cdef const unsigned char* sp
    cdef Py_ssize_t slen
    cdef int code, flags = 0
    cdef long long content_length = -1
    cdef list items = headers if type(headers) is list else list(headers)
    cdef list parts
    cdef bytes out

    code = _status_code(status, &sp, &slen)
    parts = _head_fields(items, &flags, &content_length)
    _acquire(version, &vb)
    try:
        _acquire(preamble, &pb)
        try:
            out = _response_head(&vb, sp, slen, &pb, 1, parts, NULL, 0)
        finally:
            _release(&pb)
    finally:
        _release(&vb)
    return out, code, content_length, flags


include "_state.pxi"
include "_fastpath.pxi"
include "_dispatch.pxi"
