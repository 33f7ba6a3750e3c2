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
