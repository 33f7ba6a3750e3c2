# --- the engine's poll loop, compiled ---------------------------------------------------------
#
# Included at the end of _parser.pyx, after _fastpath.pxi. ``DispatchLoop.lead`` is the
# compiled twin of ``Engine._lead`` (fastserve/_engine.py), which defines the behaviour:
# poll; for each ready descriptor, the listener is noted, the wake-up pipe drained, and a
# connection served by this thread (or queued when every serving thread is busy); the
# responses the batch kept are sent; new connections are accepted (each set up by
# ``Engine._new_connection``) and served; then the engine's Python methods for what is
# rarer (a sweep, a drain), each when ``Engine._lead`` would call it. On Linux the
# wait is epoll_wait() itself, on the poller's epoll descriptor, without the GIL (no list
# of tuples per poll); elsewhere it is the poller's poll().
#
# What it does itself of serving a connection is the common case of ``Engine._dispatch``,
# ``Engine._serve`` and ``Engine._settle``: a parked plain connection whose request ends
# in PARK, idle, in the poller as it was, and a new one whose first request ends in CLOSE,
# closed; its read is ``HTTPConnection.on_readable`` with
# the recv() in C (into the stack, at most FP_READ_SIZE bytes) when the connection has
# nothing buffered. Every other state, and every other connection, goes to the engine's
# Python methods.

from libc.math cimport ceil
from time import monotonic as _monotonic

# a request head is read whole by one recv() of this size (RFC 9112 sets no limit; the
# parser's max_head does); a larger head or a body goes on through HTTPConnection's reads
cdef enum:
    FP_READ_SIZE = 16384


cdef extern from *:
    """
    /* most descriptors one poll reports; the others are reported by the next one
       (level-triggered) */
    #define FS_POLL_MAX 256
    #if defined(__linux__)
    #include <errno.h>
    #include <sys/epoll.h>
    /* epoll_wait() keeping only the ready descriptors (Engine._lead ignores the events
       too: a ready descriptor is served whatever it reports) */
    static int fs_epoll_wait(int epfd, int *fds, int timeout_ms, int *err) {
        struct epoll_event events[FS_POLL_MAX];
        int i, n = epoll_wait(epfd, events, FS_POLL_MAX, timeout_ms);
        *err = n < 0 ? errno : 0;
        for (i = 0; i < n; i++)
            fds[i] = events[i].data.fd;
        return n;
    }
    #else
    #include <errno.h>
    /* no epoll: the poller's epoll_fd is -1 and its poll() is called instead */
    static int fs_epoll_wait(int epfd, int *fds, int timeout_ms, int *err) {
        (void)epfd; (void)fds; (void)timeout_ms; *err = ENOSYS; return -1;
    }
    #endif
    """
    enum: FS_POLL_MAX
    int fs_epoll_wait(int epfd, int* fds, int timeout_ms, int* err) nogil


cdef int _fp_readable(FastPath fast, ConnectionState conn) except? -1:
    """``HTTPConnection.on_readable`` of a plain connection with nothing buffered."""
    cdef char chunk[FP_READ_SIZE]
    cdef Py_ssize_t got
    cdef int err = 0
    cdef long fd = conn.fd
    while True:
        got = fs_recv_nowait(fd, chunk, FP_READ_SIZE, &err)
        if got >= 0 or err != FS_EINTR:
            break
        if PyErr_CheckSignals() < 0:  # PEP 475: a handler that raised ends the read
            return -1
    if got < 0:
        if err == FS_EAGAIN or err == FS_EWOULDBLOCK:
            return S_PARK
        return S_CLOSE
    if got == 0:
        return S_CLOSE
    return fast._process(conn, PyBytes_FromStringAndSize(chunk, got))


@cython.final
@cython.auto_pickle(False)
cdef class DispatchLoop:
    """``Engine._lead`` for one engine, compiled (see the comment above).

    :param engine: the :class:`~fastserve._engine.Engine`.
    :param read: the poller's readable event mask.
    :param idle: the deadline marker of an idle parked connection.
    :param send_batch: most responses kept for one send batch.
    """

    cdef EngineState engine
    cdef dict conns
    cdef EngineLock lock
    cdef object poll
    cdef int epoll_fd
    cdef long listen_fd
    cdef object accept
    cdef long wake_fd
    cdef int read
    cdef double idle
    cdef Py_ssize_t send_batch

    def __init__(self, engine, read, idle, send_batch):
        self.engine = engine
        self.conns = engine.conns
        self.lock = engine.lock
        self.poll = engine.poller.poll
        self.epoll_fd = engine.poller.epoll_fd
        self.listen_fd = engine.listen_fd
        self.accept = engine.listener._accept
        self.wake_fd = engine.wake_fd
        self.read = read
        self.idle = idle
        self.send_batch = send_batch

    def lead(self, LeaseState lease not None):
        """Wait in the poller and serve, until the engine stops or ``lease`` is no
        longer the engine's."""
        cdef EngineState engine = self.engine
        cdef list deferred = lease.deferred
        cdef int fds[FS_POLL_MAX]
        cdef int n
        cdef int served = 0
        cdef double now
        while not engine.stopping:
            if engine.orphans:
                engine._flush_orphans()
            n = self._wait(engine, fds)
            if n < 0:
                return
            if n == 0 and not engine.draining and engine.others:
                engine._take_waiting(lease)  # idle for a whole poll interval
                if engine.lease is not lease or engine.stopping:
                    return
            try:
                served = self._serve_batch(engine, fds, n, lease)
            finally:
                if deferred:
                    self._flush(engine, deferred)
            if served < 0:
                return
            if served and not engine.draining:
                self._accept(engine, lease)
                if engine.lease is not lease or engine.stopping:
                    return
            if engine.ready and engine.serving < engine.max_serving:
                engine._serve_ready(lease)
                if engine.lease is not lease or engine.stopping:
                    return
            now = _monotonic()
            if (
                now >= engine._next_sweep
                or engine._accept_resume
                or engine._drain_request is not None
                or engine.draining
            ):
                engine._housekeep(now)

    cdef int _wait(self, EngineState engine, int* fds) except -2:
        """The poll: the ready descriptors into ``fds``, their count; -1 when the
        poller was closed under the engine (it stops)."""
        cdef double interval = engine.poll_interval
        cdef int timeout_ms = -1 if interval < 0 else <int>ceil(interval * 1000.0)
        cdef int i, n, err = 0
        cdef list ready
        if self.epoll_fd < 0:
            try:
                ready = self.poll(interval)
            except (OSError, ValueError):
                if engine.stopping or engine.closed:
                    return -1
                raise
            n = min(len(ready), FS_POLL_MAX)
            for i in range(n):
                fds[i] = (<tuple>ready[i])[0]
            return n
        while True:
            with nogil:
                n = fs_epoll_wait(self.epoll_fd, fds, timeout_ms, &err)
            if n >= 0:
                return n
            if err == FS_EINTR:
                if PyErr_CheckSignals() < 0:  # PEP 475: a handler that raised ends it
                    return -2
                continue
            if engine.stopping or engine.closed:
                return -1
            raise OSError(err, strerror(err).decode("utf-8", "replace"))

    cdef int _serve_batch(self, EngineState engine, int* fds, int n,
                          LeaseState lease) except -2:
        """``Engine._serve_batch``: 1 when the listener is ready, 0 when not, -1 when
        this thread is no longer the leader (or the engine stops)."""
        cdef bint accept = False
        cdef bint batch = n > 1
        cdef object conn
        cdef long fd
        cdef int i
        for i in range(n):
            fd = fds[i]
            if fd == self.listen_fd:
                accept = True  # after the ready connections: they go first
            elif fd == self.wake_fd:
                engine._drain_wakeups()
            else:
                conn = self.conns.get(fd)
                if conn is not None:
                    if engine.serving >= engine.max_serving:
                        engine._enqueue(conn)
                    else:
                        self._dispatch(engine, <ConnectionState?>conn, lease, batch)
            if engine.lease is not lease or engine.stopping:
                return -1
        return 1 if accept else 0

    cdef int _accept(self, EngineState engine, LeaseState lease) except -1:
        """``Engine._accept`` from the engine's listener: a new connection's first
        request is served as a parked connection's is (``_serve``)."""
        cdef object accepted, fd, addr
        cdef ConnectionState conn
        cdef int i
        cdef bint set_nodelay = engine.set_nodelay
        for i in range(64):
            try:
                fd, addr = self.accept()
            except OSError as e:
                engine._accept_ended(e, True)
                return 0
            accepted = engine._new_connection(fd, addr, set_nodelay)
            if accepted is None:
                continue
            conn = <ConnectionState?>accepted
            if accepted.compat or accepted.tls_pending or engine.serving >= engine.max_serving:
                engine._settle(conn, S_PARK, True)
            else:
                self._serve(engine, conn, lease, False, True)
                if engine.ready:
                    engine._serve_ready(lease)
            if engine.lease is not lease or engine.stopping:
                return 0
        return 0

    cdef int _dispatch(self, EngineState engine, ConnectionState conn, LeaseState lease,
                       bint defer) except -1:
        """``Engine._dispatch`` of a parked connection."""
        self.lock.take()
        if not conn.parked:
            self.lock.give()
            return 0
        conn.parked = False
        self.lock.give()
        self._serve(engine, conn, lease, defer)
        if engine.ready:
            engine._serve_ready(lease)
        return 0

    cdef int _serve(self, EngineState engine, ConnectionState conn, LeaseState lease,
                    bint defer, bint first=False) except -1:
        """``Engine._serve``, then ``_settle`` of an idle keep-alive connection (or of
        a new connection that its first request closes)."""
        cdef object fast
        cdef list deferred
        cdef int state
        lease.conn = conn
        lease.dispatches += 1
        lease.busy = True
        engine.serving += 1
        conn.defer = defer
        try:
            if conn.writing:
                state = conn.on_writable()
            elif conn.lingering:
                state = conn.linger_read()
            else:
                fast = conn.fast
                if type(fast) is FastPath and not conn.buf and conn.feeding is None:
                    state = _fp_readable(<FastPath>fast, conn)
                else:
                    state = conn.on_readable()
        except BaseException:
            engine.serving -= 1
            lease.busy = False
            engine._drop(conn, not first)
            raise
        engine.serving -= 1
        lease.busy = False
        if state == S_DEFER:
            deferred = lease.deferred
            deferred.append(conn)
            if len(deferred) >= self.send_batch:
                self._flush(engine, deferred)
            return 0
        return self._settle(engine, conn, state, first)

    cdef int _flush(self, EngineState engine, list deferred) except -1:
        """``Engine._flush``: send the responses of a send batch (each connection's
        ``FastPath.flush``) and settle their connections."""
        cdef object item
        cdef ConnectionState conn
        cdef int state
        try:
            for item in deferred:
                conn = <ConnectionState?>item
                try:
                    state = (<FastPath?>conn.fast)._flush(conn)
                except BaseException:
                    engine._drop(conn)
                    raise
                if state >= 0:  # else another thread sent it (a demoted leader's batch)
                    self._settle(engine, conn, state)
        except BaseException:
            self.lock.take()  # the next leader sends the rest (flush() skips sent ones)
            try:
                engine.orphans.extend(deferred)
            finally:
                self.lock.give()
            raise
        finally:
            del deferred[:]
        return 0

    cdef int _settle(self, EngineState engine, ConnectionState conn, int state,
                     bint first=False) except -1:
        """``Engine._settle``; what it does for an idle keep-alive connection, and for
        a new one its first request closes, in C."""
        if first:
            if state == S_CLOSE:  # Engine._drop(conn, registered=False)
                if self.conns.get(conn.fd) is conn:
                    del self.conns[conn.fd]
                conn.close()
            else:
                engine._settle(conn, state, True)
            return 0
        if (
            state != S_PARK
            or conn.lingering
            or conn.waiting
            or conn.buf
            or conn.disabled
            or engine.draining
            or conn.events != self.read
        ):
            engine._settle(conn, state)
            return 0
        # idle: the next sweep starts its keep_alive_timeout (Engine._settle)
        conn.deadline = self.idle
        conn.parked = True
        if engine.closed:
            engine._unpark_closed(conn)
        return 0
