"""``fastserve bench``: fastserve against other WSGI servers, on this machine, over loopback.

How a run goes (each module has one job):

* ``command.py`` - the options (``fastserve bench --help``; ``bench/bench_server.py``
  uses the same with longer defaults), then the run, the tables and the chart;
* ``servers.py`` - the catalogue of servers and one running server: a
  subprocess in its own session, bound to 127.0.0.1 on a free port
  (``serve.py`` for the servers with a Python API, ``target.py`` for those
  started by their own command line), its process group's CPU from ``/proc``;
* ``apps.py`` - the built-in apps: hello world, and a one-route Flask app;
* ``scenarios.py`` - what a cell sends (``ka32``, ``close32``, ``post32``, ``flask32``);
* ``runner.py`` - interleaved rounds, a warm-up per cell, progress after each;
* ``drivers.py`` - wrk, or the bundled ``loadgen.py`` (one selector loop per
  process), each run as a child whose own CPU time is measured;
* ``verdict.py`` - whether the client rather than the server was the limit;
* ``report.py`` - medians, ratios to the baseline, notes, the PNG chart.

POSIX only (sessions, process groups, ``wait4``); the server CPU column needs Linux.
"""
