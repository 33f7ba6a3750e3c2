# --- the engine's dispatch of one poll batch, compiled -------------------------------------
#
# Included at the end of _parser.pyx, after _fastpath.pxi. ``DispatchLoop.serve`` is the
# compiled twin of ``Engine._serve_batch`` (fastserve/_engine.py), which defines the
# behaviour: for each ready descriptor, the listener is noted, the wake-up pipe drained,
# and a connection served by this thread (or queued when every serving thread is busy).
# What it does itself is the common case of ``Engine._dispatch``, ``Engine._serve`` and
# ``Engine._settle``: a parked plain connection whose request ends in PARK, idle, in the
# poller as it was; its read is ``HTTPConnection.on_readable`` with the recv() in C (into
# the stack, at most FP_READ_SIZE bytes) when the connection has nothing buffered. Every
# other state, and every other connection, goes to the engine's Python methods.

# a request head is read whole by one recv() of this size (RFC 9112 sets no limit; the
# parser's max_head does); a larger head or a body goes on through HTTPConnection's reads
cdef enum:
    FP_READ_SIZE = 16384


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
    """``Engine._serve_batch`` for one engine, compiled (see the comment above).

    :param engine: the :class:`~fastserve._engine.Engine`.
    :param read: the poller's readable event mask.
    :param idle: the deadline marker of an idle parked connection.
    :param send_batch: most responses kept for one send batch.
    """

    cdef EngineState engine
    cdef dict conns
    cdef object acquire
    cdef object release
    cdef long listen_fd
    cdef long wake_fd
    cdef int read
    cdef double idle
    cdef Py_ssize_t send_batch

    def __init__(self, engine, read, idle, send_batch):
        self.engine = engine
        self.conns = engine.conns
        self.acquire = engine.lock.acquire
        self.release = engine.lock.release
        self.listen_fd = engine.listen_fd
        self.wake_fd = engine.wake_fd
        self.read = read
        self.idle = idle
        self.send_batch = send_batch

    def serve(self, list fds, LeaseState lease not None, bint batch):
        """Serve a poll batch: 1 when the listener is ready, 0 when not, -1 when this
        thread is no longer the leader (or the engine stops)."""
        cdef EngineState engine = self.engine
        cdef bint accept = False
        cdef object item, fd_obj, conn
        cdef long fd
        for item in fds:
            fd_obj = (<tuple>item)[0]
            fd = fd_obj
            if fd == self.listen_fd:
                accept = True  # after the ready connections: they go first
            elif fd == self.wake_fd:
                engine._drain_wakeups()
            else:
                conn = self.conns.get(fd_obj)
                if conn is not None:
                    if engine.serving >= engine.max_serving:
                        engine._enqueue(conn)
                    else:
                        self._dispatch(engine, <ConnectionState?>conn, lease, batch)
            if engine.lease is not lease or engine.stopping:
                return -1
        return 1 if accept else 0

    cdef int _dispatch(self, EngineState engine, ConnectionState conn, LeaseState lease,
                       bint defer) except -1:
        """``Engine._dispatch`` of a parked connection."""
        self.acquire()
        if not conn.parked:
            self.release()
            return 0
        conn.parked = False
        self.release()
        self._serve(engine, conn, lease, defer)
        if engine.ready:
            engine._serve_ready(lease)
        return 0

    cdef int _serve(self, EngineState engine, ConnectionState conn, LeaseState lease,
                    bint defer) except -1:
        """``Engine._serve``, then ``_settle`` of an idle keep-alive connection."""
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
            engine._drop(conn)
            raise
        engine.serving -= 1
        lease.busy = False
        if state == S_DEFER:
            deferred = lease.deferred
            deferred.append(conn)
            if len(deferred) >= self.send_batch:
                engine._flush(deferred)
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
