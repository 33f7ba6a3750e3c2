# --- the hot state of a connection, an engine and a lease, as C fields ---------------------
#
# Included in _parser.pyx before _fastpath.pxi. These are the base classes of
# ``HTTPConnection`` (through ``Transport``), ``Engine`` and
# ``Lease`` when the extension is built; :mod:`fastserve._state` gives the pure-Python
# twins (``__slots__`` of the same names). Python code reads and writes these attributes
# as before; the compiled request cycle (``FastPath``, ``DispatchLoop``) reads them as
# struct fields instead of looking each one up by name, several dozen times a request.


@cython.auto_pickle(False)
cdef class ConnectionState:
    """The per-request fields of a connection (see :mod:`fastserve._state`)."""

    cdef public object server
    cdef public object sock
    cdef public long fd
    cdef public object buf
    cdef public object out
    cdef public double deadline
    cdef public double head_started
    cdef public bint expect
    cdef public bint send_failed
    cdef public bint writing
    cdef public bint waiting
    cdef public bint parked
    cdef public bint lingering
    cdef public bint disabled
    cdef public bint defer
    cdef public int events
    cdef public object feeding
    cdef public object reader
    cdef public object env
    cdef public object exchange
    cdef public object resp_iter
    cdef public object resp_result
    cdef public object fast

    def init_state(self, server, sock, reader, out):
        """Set every field: a new connection of ``server`` on ``sock``, idle, reading
        nothing yet (``reader``), nothing to send (``out``, an empty deque)."""
        self.server = server
        self.sock = sock
        self.fd = sock.fileno()
        self.buf = b""
        self.out = out
        self.deadline = 0.0
        self.head_started = 0.0
        self.expect = False
        self.send_failed = False
        self.writing = False
        self.waiting = False
        self.parked = False
        self.lingering = False
        self.disabled = False
        self.defer = False
        self.events = 1
        self.feeding = None
        self.reader = reader
        self.env = None
        self.exchange = None
        self.resp_iter = None
        self.resp_result = None
        self.fast = None


from cpython.pythread cimport (
    NOWAIT_LOCK, PY_LOCK_ACQUIRED, PyLockStatus, PyThread_acquire_lock,
    PyThread_allocate_lock, PyThread_free_lock, PyThread_release_lock, PyThread_type_lock,
    WAIT_LOCK,
)


cdef extern from "pythread.h":
    PyLockStatus PyThread_acquire_lock_timed(PyThread_type_lock lock, long long microseconds,
                                             int intr_flag) nogil


@cython.final
@cython.auto_pickle(False)
cdef class EngineLock:
    """An engine's lock: ``threading.Lock``'s ``acquire``/``release``/``with`` (not
    reentrant), which the compiled dispatch loop takes and gives back as C calls (a
    ``threading.Lock`` costs two method calls with argument parsing per request)."""

    cdef PyThread_type_lock handle
    cdef bint held

    def __cinit__(self):
        self.handle = PyThread_allocate_lock()
        if self.handle == NULL:
            raise MemoryError("cannot allocate a lock")

    def __dealloc__(self):
        if self.handle != NULL:
            PyThread_free_lock(self.handle)

    cdef inline int take(self) except -1:
        """Acquire, waiting without the GIL when another thread holds it."""
        if not PyThread_acquire_lock(self.handle, NOWAIT_LOCK):
            with nogil:
                PyThread_acquire_lock(self.handle, WAIT_LOCK)
        self.held = True
        return 0

    cdef inline void give(self) noexcept:
        self.held = False
        PyThread_release_lock(self.handle)

    def acquire(self, bint blocking=True, double timeout=-1):
        """As ``threading.Lock.acquire``: whether the lock was acquired."""
        cdef long long wait_us
        cdef bint acquired
        if not blocking:
            if timeout != -1:
                raise ValueError("can't specify a timeout for a non-blocking call")
            wait_us = 0
        elif timeout < 0:
            if timeout != -1:
                raise ValueError("timeout value must be a non-negative number")
            wait_us = -1
        else:
            wait_us = <long long>(timeout * 1e6)
        if PyThread_acquire_lock(self.handle, NOWAIT_LOCK):
            self.held = True
            return True
        if wait_us == 0:
            return False
        with nogil:
            acquired = PyThread_acquire_lock_timed(self.handle, wait_us, 0) == PY_LOCK_ACQUIRED
        if acquired:
            self.held = True
        return acquired

    def release(self):
        """As ``threading.Lock.release``: RuntimeError when it is not held."""
        if not self.held:
            raise RuntimeError("release unlocked lock")
        self.give()

    def locked(self):
        """Whether some thread holds it."""
        return self.held

    def __enter__(self):
        self.take()
        return True

    def __exit__(self, exc_type, exc, tb):
        self.give()


@cython.auto_pickle(False)
cdef class EngineState:
    """The fields of an engine its dispatch loop reads per request and per poll."""

    cdef public Py_ssize_t serving
    cdef public Py_ssize_t max_serving
    cdef public object lease
    cdef public object ready
    cdef public list orphans
    cdef public bint stopping
    cdef public bint draining
    cdef public bint closed
    cdef public double poll_interval
    cdef public double _next_sweep
    cdef public double _accept_resume
    cdef public object _drain_request


@cython.auto_pickle(False)
cdef class LeaseState:
    """The fields of a lease (one thread's turn at the poller)."""

    cdef public bint busy
    cdef public Py_ssize_t dispatches
    cdef public object conn
    cdef public list deferred
