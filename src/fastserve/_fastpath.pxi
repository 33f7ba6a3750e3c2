# --- the keep-alive fast path: connection.py's request cycle, compiled ----------------------
#
# Included at the end of _parser.pyx (it reads the parser's C fields). ``FastPath`` is the
# compiled twin of ``HTTPConnection._process`` for a plain (not TLS, not compatibility)
# connection whose handler does not override ``make_environ``. It serves, without a Python
# frame, the common request: a complete head without a body and without Upgrade, an
# application that returns a list of bytes (or one bytes object) totalling less than
# 64 KiB, a status that carries a body (not 1xx, 204, 304, not HEAD), no Transfer-Encoding
# and a Content-Length (if the application set one) that matches the body. Every other
# request, and every request at the first surprise, goes to the Python code that defines
# the behaviour, at the point where the surprise happened:
#
# - a body, Upgrade:                  HTTPConnection._serve(n), as _process would
# - anything unusual once the application returned (a non-list result, write(), a HEAD,
#   a mismatching Content-Length, a bad header...): the Python Exchange is built with the
#   state so far and HTTPConnection._answer(result) runs under _guarded(), exactly as
#   _start_app would after the application call (nothing was sent or logged yet)
# - the application raised, a send failed: _guarded() gets the exception
# - a response the socket did not take whole: the rest waits in ``conn.out`` (WRITE), with
#   the Python Exchange in ``conn.exchange`` for on_writable()
#
# Send batching: when the engine has more ready connections in the same poll batch it sets
# ``conn.defer``, and a complete keep-alive response (nothing pipelined behind it, nothing
# queued before it) is kept in the FastPath (DEFER) until the engine calls flush() after
# the batch. The responses of a batch then reach the client back to back: a client that
# drives many connections is woken once per batch rather than once per response, which on
# loopback (the wake-up runs in the sender's send()) is most of the kernel time a request
# costs. Anything unusual after a deferral (the iterator goes on or fails, close() fails)
# sends the response at once first, so the Python path sees what it would have seen.
#
# The decisions it makes itself are those of Exchange._commit and send_whole for that case
# (RFC 9112 §6.3 framing: Content-Length, the application's or the server's; RFC 9112 §9.3
# and §9.6 persistence: "Connection: close" when the connection will close, "Connection:
# keep-alive" to an HTTP/1.0 client that asked for it). The constants come from
# connection.py and _response.py through configure_fast_path(), never spelled twice here;
# tests/server/test_fast_path.py runs the same scenarios with and without this class and
# compares the bytes on the wire, the connection's state and the log lines.

from cpython.exc cimport PyErr_CheckSignals
from libc.stdio cimport snprintf
from libc.string cimport strerror


cdef extern from "<time.h>":
    ctypedef long time_t
    time_t time(time_t* t) nogil


# set by configure_fast_path() (fastserve.connection, at import)
cdef bint _fp_ready = False
cdef int S_PARK = 0
cdef int S_CLOSE = 1
cdef int S_LINGER = 2
cdef int S_GONE = 3
cdef int S_WRITE = 4
cdef int S_DEFER = 5
cdef int FR_LENGTH = 1
cdef int FLAG_CLOSE = 1
cdef int FLAG_TE = 2
cdef Py_ssize_t FP_JOIN_LIMIT = 0
cdef Py_ssize_t FP_WHOLE_LIMIT = 0
cdef int FP_MSG_DONTWAIT = 0
cdef object _fp_exchange = None
cdef object _fp_empty_input = None
cdef object _fp_date_line = None
cdef object _fp_queued_bytes = None
cdef dict _fp_wz_vars = None  # vars(werkzeug._internal)
cdef object _fp_monotonic = None
cdef object _fp_parse_error = None
cdef object _fp_chain = None

cdef time_t _fp_date_second = -1
cdef bytes _fp_date = b""

# interned, as set_base interns the keys of a connection's template
cdef str K_WSGI_ERRORS = sys.intern("wsgi.errors")
cdef str K_STDERR = "stderr"
cdef str K_WSGI_INPUT = sys.intern("wsgi.input")
cdef str K_HTTP_UPGRADE = "HTTP_UPGRADE"
cdef str S_HEAD = "HEAD"


def configure_fast_path(*, exchange, empty_input, date_line, queued_bytes, wz_internal,
                        monotonic, parse_error, states, framing_length, flag_close, flag_te,
                        join_limit, whole_limit, msg_dontwait, chain):
    """Wire :class:`FastPath` to the Python modules it is the twin of (called once by
    :mod:`fastserve.connection`): their classes, functions and constants."""
    global _fp_ready, S_PARK, S_CLOSE, S_LINGER, S_GONE, S_WRITE, FR_LENGTH, FLAG_CLOSE
    global FLAG_TE, FP_JOIN_LIMIT, FP_WHOLE_LIMIT, FP_MSG_DONTWAIT, _fp_exchange
    global _fp_empty_input, _fp_date_line, _fp_queued_bytes, _fp_monotonic
    global _fp_parse_error, _fp_chain, _fp_wz_vars
    S_PARK, S_CLOSE, S_LINGER, S_GONE, S_WRITE, S_DEFER = states
    FR_LENGTH = framing_length
    FLAG_CLOSE = flag_close
    FLAG_TE = flag_te
    FP_JOIN_LIMIT = join_limit
    FP_WHOLE_LIMIT = whole_limit
    FP_MSG_DONTWAIT = msg_dontwait
    _fp_exchange = exchange
    _fp_empty_input = empty_input
    _fp_date_line = date_line
    _fp_queued_bytes = queued_bytes
    _fp_wz_vars = vars(wz_internal)
    _fp_monotonic = monotonic
    _fp_parse_error = parse_error
    _fp_chain = chain
    _fp_ready = msg_dontwait != 0


cdef extern from *:
    """
    #ifdef _WIN32
    /* no MSG_DONTWAIT: the fast path (and its socket calls) is never used there */
    static Py_ssize_t fs_recv_nowait(long fd, char *buf, size_t n, int *err) {
        (void)fd; (void)buf; (void)n; *err = 0; return -1;
    }
    static Py_ssize_t fs_send_nowait(long fd, const char *buf, size_t n, int *err) {
        (void)fd; (void)buf; (void)n; *err = 0; return -1;
    }
    #define FS_EAGAIN 0
    #define FS_EWOULDBLOCK 0
    #define FS_EINTR 0
    #else
    #include <errno.h>
    #include <sys/socket.h>
    static Py_ssize_t fs_recv_nowait(long fd, char *buf, size_t n, int *err) {
        Py_ssize_t got = recv((int)fd, buf, n, MSG_DONTWAIT);
        *err = got < 0 ? errno : 0;
        return got;
    }
    static Py_ssize_t fs_send_nowait(long fd, const char *buf, size_t n, int *err) {
    #ifdef MSG_NOSIGNAL
        Py_ssize_t sent = send((int)fd, buf, n, MSG_DONTWAIT | MSG_NOSIGNAL);
    #else
        Py_ssize_t sent = send((int)fd, buf, n, MSG_DONTWAIT);
    #endif
        *err = sent < 0 ? errno : 0;
        return sent;
    }
    #define FS_EAGAIN EAGAIN
    #define FS_EWOULDBLOCK EWOULDBLOCK
    #define FS_EINTR EINTR
    #endif
    """
    Py_ssize_t fs_recv_nowait(long fd, char* buf, size_t n, int* err)
    Py_ssize_t fs_send_nowait(long fd, const char* buf, size_t n, int* err)
    int FS_EAGAIN
    int FS_EWOULDBLOCK
    int FS_EINTR


import logging as _logging_module
import socket as _socket_module

# the socket class the engine accepts into, and its fileno() method: called directly on
# such a socket rather than looked up on it each time (twice a request)
cdef object _fp_socket_class = _socket_module.socket
cdef object _fp_socket_fileno = _socket_module.socket.fileno


cdef inline long _fp_fileno(object sock) except? -1:
    """``sock.fileno()`` (-1 once closed)."""
    if type(sock) is _fp_socket_class:
        return _fp_socket_fileno(sock)
    return sock.fileno()


# werkzeug's logger as _fp_access_log_on() last saw it, and its instance dict when it is
# a plain logging.Logger
cdef object _fp_logger = None
cdef dict _fp_logger_vars = None


cdef bint _fp_access_log_on() except -1:
    """``werkzeug._internal._logger.isEnabledFor(INFO)`` (the logger is set up by the
    connection): for a plain ``logging.Logger``, what that method reads first - its
    ``disabled`` flag, then its cache of levels - without the call; the call when the
    cache has no answer yet (it fills it) or the logger is of another class."""
    global _fp_logger, _fp_logger_vars
    cdef object logger = _fp_wz_vars.get("_logger")
    cdef object disabled, cache, enabled
    if logger is not _fp_logger:
        _fp_logger = logger
        _fp_logger_vars = logger.__dict__ if type(logger) is _logging_module.Logger else None
    if _fp_logger_vars is not None:
        disabled = _fp_logger_vars.get("disabled")
        cache = _fp_logger_vars.get("_cache")
        if disabled is True:
            return False
        if disabled is False and type(cache) is dict:
            enabled = (<dict>cache).get(20)
            if enabled is True or enabled is False:
                return enabled is True
    return bool(logger.isEnabledFor(20))


cdef Py_ssize_t _fp_send(object sock, bytes data) except -1:
    """``sock.send(data, MSG_DONTWAIT)``, the send() in C: the bytes sent; raises what
    the socket method raises (OSError by errno; PEP 475: EINTR retried)."""
    cdef long fd = _fp_fileno(sock)
    cdef Py_ssize_t sent
    cdef int err = 0
    if fd < 0:  # closed (an application that took it over): the method's own error
        return sock.send(data, FP_MSG_DONTWAIT)
    while True:
        sent = fs_send_nowait(fd, PyBytes_AS_STRING(data), PyBytes_GET_SIZE(data), &err)
        if sent >= 0:
            return sent
        if err != FS_EINTR:
            raise OSError(err, strerror(err).decode("utf-8", "replace"))
        if PyErr_CheckSignals() < 0:
            return -1


cdef inline bytes _fp_date_bytes():
    """_response.date_line(), asked again only when the second changed."""
    global _fp_date_second, _fp_date
    cdef time_t now = time(NULL)
    if now != _fp_date_second:
        _fp_date = _fp_date_line()
        _fp_date_second = now
    return _fp_date


@cython.final
@cython.freelist(4)
cdef class _StartResponse:
    """PEP 3333 ``start_response`` of a request on the fast path: stores the status and
    headers. The first ``write()``, or any call once the request left the fast path, goes
    to the Python :class:`~fastserve._response.Exchange` that replaces it."""

    cdef object conn
    cdef object status
    cdef object headers
    cdef object delegate        # the Python Exchange, once the request left the fast path
    cdef bint head_only
    cdef bint chunk_ok
    cdef bint keep
    cdef bint http10_keep_alive
    cdef int code

    def __call__(self, status, headers, exc_info=None):
        if self.delegate is not None:
            return self.delegate.start_response(status, headers, exc_info)
        if exc_info:
            exc_info = None  # nothing was sent yet: the head is replaced (PEP 3333)
        elif self.status is not None:
            raise AssertionError("Headers already set")
        self.status = status
        self.headers = headers
        return self.write

    def write(self, data):
        """PEP 3333 ``write``: the request leaves the fast path."""
        if self.delegate is None:
            self._exchange()
        return self.delegate.write(data)

    cdef object _exchange(self):
        """The Python Exchange with this request's state, in ``conn.exchange``."""
        cdef object ex = _fp_exchange(
            self.conn, self.head_only, self.chunk_ok, self.keep, self.http10_keep_alive
        )
        ex.status = self.status
        ex.headers = self.headers
        self.conn.exchange = ex
        self.delegate = ex
        return ex


@cython.final
cdef class _Step:
    """A step for ``HTTPConnection._guarded``: raise what the fast path caught, or answer
    the application's result the Python way."""

    cdef object conn
    cdef object result
    cdef object error

    def __call__(self):
        if self.error is not None:
            raise self.error
        return self.conn._answer(self.result)


@cython.final
cdef class _Raising:
    """An iterator that raises ``error``: what the application raised after a deferred
    response, for ``_pump`` once the socket took that response (it was queued)."""

    cdef object error

    def __iter__(self):
        return self

    def __next__(self):
        raise self.error


cdef _Raising _raising(object error):
    cdef _Raising it = _Raising.__new__(_Raising)
    it.error = error
    return it


cdef int _fp_guarded(ConnectionState conn, object result, object error) except? -1:
    cdef _Step step = _Step.__new__(_Step)
    step.conn = conn
    step.result = result
    step.error = error
    return conn._guarded(step)


@cython.final
@cython.auto_pickle(False)
cdef class FastPath:
    """``HTTPConnection._process`` for one plain connection (see the comment above)."""

    cdef RequestParser parser
    cdef bytes status_version
    cdef bytes server_line
    cdef bint proto11
    cdef bint log_checked
    cdef object server
    cdef dict sys_vars              # vars(sys): wsgi.errors is sys.stderr at request time
    cdef bytes pending              # a complete response left to the engine's send batch
    cdef _StartResponse pending_sr

    def __init__(self, conn):
        self.parser = conn.parser
        self.status_version = conn.status_version
        self.server_line = conn.server_line
        self.proto11 = conn.proto11
        self.log_checked = conn.log_checked
        self.server = conn.server
        self.sys_vars = vars(sys)

    def __call__(self, conn, buf):
        return self._process(<ConnectionState?>conn, buf)

    def flush(self, conn):
        """Send the response this connection left to the engine's send batch (DEFER):
        the connection's state then, or None when there is none (sent already)."""
        cdef int state = self._flush(<ConnectionState?>conn)
        return None if state < 0 else state

    cdef int _flush(self, ConnectionState conn) except -2:
        """``flush()``: -1 for None."""
        cdef _StartResponse sr = self.pending_sr
        cdef int state
        if self.pending is None:
            return -1
        state = self._undefer(conn, None)
        if state >= 0:
            return state
        return self._after_response(conn, sr)

    cdef int _process(self, ConnectionState conn, object buf) except? -1:
        cdef RequestParser parser = self.parser
        cdef Buffer b
        cdef Py_ssize_t n = 0
        cdef int state, sent
        cdef object error = None
        while True:
            _acquire(buf, &b)
            try:
                n = parser._parse(b.p, b.n)
            except _fp_parse_error as e:
                error = e
            finally:
                _release(&b)
            if error is not None:
                conn.buf = buf
                return conn._refuse(error.status, error.reason)
            if n == 0:
                conn.buf = buf
                if not conn.head_started:
                    conn.head_started = _fp_monotonic()
                return S_PARK
            conn.head_started = 0.0
            if parser.content_length != 0 or K_HTTP_UPGRADE in parser.environ:
                conn.buf = buf
                state = conn._serve(n)
            else:
                conn.buf = buf[n:] if n < len(buf) else b""
                state = self._request(conn)
                if self.pending is not None:
                    if state == S_PARK and not conn.waiting:
                        return S_DEFER
                    sent = self._undefer(conn, None)  # not kept: it goes out now
                    if sent >= 0:
                        state = sent
            if state != S_PARK or conn.waiting:
                return state
            buf = conn.buf
            if not buf:
                return S_PARK

    cdef int _request(self, ConnectionState conn) except? -1:
        """``_run(EMPTY_INPUT)`` and ``_start_app`` for a request without a body."""
        cdef RequestParser parser = self.parser
        cdef dict env = parser.environ
        cdef object server = self.server
        cdef bint req11 = parser.version is S_HTTP11
        cdef bint keep
        cdef object result, error = None
        cdef _StartResponse sr
        # the parser's environ holds the connection's entries already (set_base)
        env[K_WSGI_ERRORS] = self.sys_vars[K_STDERR]
        conn.expect = False
        env[K_WSGI_INPUT] = _fp_empty_input
        conn.reader = _fp_empty_input
        conn.env = env
        # an Upgrade request never gets here (it may take the socket over)
        keep = self.proto11 and parser.keep_alive and not server._closing
        sr = _StartResponse.__new__(_StartResponse)
        sr.conn = conn
        sr.head_only = parser.method == S_HEAD
        sr.chunk_ok = self.proto11 and req11
        sr.keep = keep
        sr.http10_keep_alive = keep and not req11
        conn.send_failed = False
        try:
            result = server.app(env, sr)
        except BaseException as e:
            error = e
        if error is not None:
            if sr.delegate is None:
                sr._exchange()
            return _fp_guarded(conn, None, error)
        return self._respond(conn, sr, result)

    cdef int _respond(self, ConnectionState conn, _StartResponse sr, object result) except? -1:
        """``_start_app`` after the application returned: ``send_whole`` for a list body,
        ``_pump`` for an iterable, then ``_after_response``; else the Python path."""
        cdef object body, piece
        cdef Py_ssize_t count, i, total
        cdef int state
        if sr.delegate is not None or sr.head_only or type(sr.status) is not str:
            return self._fall_back(conn, sr, result)
        if type(result) is not list:
            return self._iterable(conn, sr, result)
        count = len(<list>result)
        if count == 1:
            body = (<list>result)[0]
            if type(body) is not bytes:
                return self._fall_back(conn, sr, result)
        else:
            total = 0
            for i in range(count):
                piece = (<list>result)[i]
                if type(piece) is not bytes:
                    return self._fall_back(conn, sr, result)
                total += PyBytes_GET_SIZE(piece)
            if total > FP_JOIN_LIMIT:
                return self._fall_back(conn, sr, result)
            body = b"".join(<list>result)
        if PyBytes_GET_SIZE(body) >= FP_WHOLE_LIMIT:
            return self._fall_back(conn, sr, result)
        state = self._send(conn, sr, body, True)
        if state == -2:  # not for the fast path: nothing was sent or logged
            return self._fall_back(conn, sr, result)
        if state >= 0:
            return state
        return self._after_response(conn, sr)

    cdef int _iterable(self, ConnectionState conn, _StartResponse sr, object result) except? -1:
        """``_pump`` for an iterable whose one piece is the whole declared Content-Length
        (what Flask returns); at the first difference the Python ``_pump`` goes on with
        the iterator where this left it."""
        cdef object it, piece, close, error = None
        cdef int state
        conn.resp_result = result
        try:
            it = iter(result)
            conn.resp_iter = it
            piece = next(it)
        except StopIteration:
            return self._pump_on(conn, sr, None, False)  # an empty body: Python
        except BaseException as e:
            error = e
        if error is not None:
            if sr.delegate is None:
                sr._exchange()
            return _fp_guarded(conn, None, error)
        if type(piece) is not bytes or PyBytes_GET_SIZE(piece) >= FP_WHOLE_LIMIT:
            return self._pump_on(conn, sr, piece, False)
        state = self._send(conn, sr, piece, False)
        if state == -2:  # not for the fast path: Python encodes this piece itself
            return self._pump_on(conn, sr, piece, False)
        if state >= 0:
            return state  # WRITE (_pump resumes from resp_iter), or a send error
        # the whole declared body went out (or waits in the send batch); the iterator
        # should end now
        try:
            piece = next(it)
        except StopIteration:
            piece = None
        except BaseException as e:
            error = e
        if error is not None:
            state = self._undefer(conn, _raising(error))
            if state >= 0:
                return state
            self._committed(conn, sr)
            return _fp_guarded(conn, None, error)
        if piece is not None:
            state = self._undefer(conn, _fp_chain((piece,), it))
            if state >= 0:
                return state
            return self._pump_on(conn, sr, piece, True)
        # encode_end() is empty (all Content-Length bytes sent); then close() (PEP 3333)
        conn.resp_iter = None
        conn.resp_result = None
        try:
            close = getattr(result, "close", None)
            if close is not None:
                close()
        except BaseException as e:
            error = e
        if error is not None:
            state = self._undefer(conn, _raising(error))
            if state >= 0:
                return state
            self._committed(conn, sr)
            return _fp_guarded(conn, None, error)
        return self._after_response(conn, sr)

    cdef int _pump_on(self, ConnectionState conn, _StartResponse sr, object piece,
                      bint committed) except? -1:
        """Hand an iterable response to ``_pump``, ``piece`` (pulled, not yet encoded)
        first."""
        if committed:
            self._committed(conn, sr)
        elif sr.delegate is None:
            sr._exchange()
        if piece is not None:
            conn.resp_iter = _fp_chain((piece,), conn.resp_iter)
        return conn._guarded(conn._pump)

    cdef int _send(self, ConnectionState conn, _StartResponse sr, bytes body, bint whole) except? -1:
        """``Exchange._commit`` and ``push`` of the head with ``body``, the whole body
        (``whole``: a list) or the first piece of an iterable, which must then be all of
        the declared Content-Length. -2: not for the fast path (nothing sent or logged);
        -1: sent, or kept for the engine's send batch (``conn.defer``); else the
        connection's state (WRITE, or what a send error made it)."""
        cdef object status = sr.status, headers
        cdef list items, parts
        cdef Py_ssize_t size = PyBytes_GET_SIZE(body)
        cdef int code, flags = 0
        cdef long long content_length = -1
        cdef const unsigned char* sp
        cdef Py_ssize_t slen
        cdef bint keep
        cdef char extra[96]
        cdef int extra_n = 0
        cdef Buffer vb
        cdef Buffer pre[2]
        cdef Buffer post[2]
        cdef bytes date, data

        date = _fp_date_bytes()
        headers = sr.headers
        try:
            items = headers if type(headers) is list else list(headers)
            code = _status_code(<str>status, &sp, &slen)
            parts = _head_fields(items, &flags, &content_length)
        except Exception:
            return -2  # the Python path raises the same error, from the same check
        # RFC 9110 §6.4.1: 1xx, 204 and 304 carry no body; RFC 9112 §6.3: Transfer-Encoding
        # set by the application frames the body itself; a Content-Length that does not
        # match the body is logged and closes the connection: all in Python
        if code < 200 or code == 204 or code == 304 or flags & FLAG_TE:
            return -2
        if content_length >= 0:
            if content_length != size:
                return -2
        elif whole:
            # RFC 9112 §6.3: the whole body is known, the server frames it
            extra_n = snprintf(extra, 40, b"Content-Length: %zd\r\n", size)
        else:
            return -2  # chunked or close-delimited: Python
        if size == 0 and not whole:
            return -2  # an empty piece is not the head's moment
        keep = sr.keep and not flags & FLAG_CLOSE and not self.server._closing
        if not keep:
            # RFC 9112 §9.6: a sender that closes says so
            if not flags & FLAG_CLOSE:
                memcpy(extra + extra_n, b"Connection: close\r\n", 19)
                extra_n += 19
        elif sr.http10_keep_alive:
            # RFC 9112 §9.3: an HTTP/1.0 client keeps the connection only when told
            memcpy(extra + extra_n, b"Connection: keep-alive\r\n", 24)
            extra_n += 24
        extra[extra_n] = b"\r"
        extra[extra_n + 1] = b"\n"
        extra_n += 2
        sr.code = code
        sr.keep = keep
        # the access line, when the status is known (werkzeug logs it then)
        if not self.log_checked or _fp_access_log_on():
            conn._bind_handler()
            conn._call_hook("log_request", code)
        vb.p = <const unsigned char*>PyBytes_AS_STRING(self.status_version)
        vb.n = PyBytes_GET_SIZE(self.status_version)
        pre[0].p = <const unsigned char*>PyBytes_AS_STRING(self.server_line)
        pre[0].n = PyBytes_GET_SIZE(self.server_line)
        pre[1].p = <const unsigned char*>PyBytes_AS_STRING(date)
        pre[1].n = PyBytes_GET_SIZE(date)
        post[0].p = <const unsigned char*>extra
        post[0].n = extra_n
        post[1].p = <const unsigned char*>PyBytes_AS_STRING(body)
        post[1].n = size
        data = _response_head(&vb, sp, slen, pre, 2, parts, post, 2)
        if keep and conn.defer and not conn.buf and not conn.out:
            self.pending = data  # the engine sends it with its batch (flush())
            self.pending_sr = sr
            return -1
        return self._push(conn, sr, data)

    cdef int _undefer(self, ConnectionState conn, object resume) except? -1:
        """Push the deferred response now. -1: there is none, or the socket took it
        whole; else the connection's state (WRITE: ``resume``, if given, is what
        ``_pump`` pulls once the socket drained)."""
        cdef bytes data = self.pending
        cdef _StartResponse sr = self.pending_sr
        cdef int state
        if data is None:
            return -1
        self.pending = None
        self.pending_sr = None
        state = self._push(conn, sr, data)
        if state == S_WRITE and resume is not None:
            conn.resp_iter = resume
        return state

    cdef int _push(self, ConnectionState conn, _StartResponse sr, bytes data) except? -1:
        """``HTTPConnection.push(data)`` of a committed response: -1 when the socket took
        it whole; else WRITE (the rest waits in ``conn.out``) or what a send error made
        the connection."""
        cdef object out, sock, now, error = None
        cdef Py_ssize_t sent
        out = conn.out
        if out:
            out.append(data)
        else:
            sock = conn.sock
            try:
                sent = _fp_send(sock, data)
            except BlockingIOError:
                sent = 0
            except OSError:
                try:
                    conn.send_failure()  # re-raises, or raises _TakenOver
                except BaseException as e:
                    error = e
            if error is not None:
                self._committed(conn, sr)
                return _fp_guarded(conn, None, error)
            if sent < PyBytes_GET_SIZE(data):
                out.append(memoryview(data)[sent:])
                conn.stalled_since = now = _fp_monotonic()
                conn.stalled_sent = 0
                conn.stalled_queued = _fp_queued_bytes(sock)
                conn.deadline = now + conn.settings.send_timeout
        if out:  # _wait_for_socket(): on_writable() goes on in Python
            self._committed(conn, sr)
            conn.writing = True
            conn.waiting = True
            return S_WRITE
        return -1

    cdef int _after_response(self, ConnectionState conn, _StartResponse sr) except? -1:
        """``_after_response()`` for a request without a body."""
        if _fp_fileno(conn.sock) < 0:
            return S_GONE  # the application closed the socket it took over
        if not sr.keep:
            # half-close when the client pipelined more: no reset for it
            return S_LINGER if conn.buf else S_CLOSE
        return S_PARK

    cdef void _committed(self, ConnectionState conn, _StartResponse sr) except *:
        """The Python Exchange of a response whose head and whole body were pushed."""
        cdef object ex = sr._exchange()
        ex.code = sr.code
        ex.keep = sr.keep
        ex.head_sent = True
        ex.framing = FR_LENGTH
        ex.left = 0

    cdef int _fall_back(self, ConnectionState conn, _StartResponse sr, object result) except? -1:
        if sr.delegate is None:
            sr._exchange()
        return _fp_guarded(conn, result, None)


def fast_path_for(conn):
    """The :class:`FastPath` of a plain connection, or None when it cannot have one (no
    ``MSG_DONTWAIT``, or the connection parses with the pure-Python twin)."""
    if not _fp_ready or type(conn.parser) is not RequestParser:
        return None
    return FastPath(conn)
