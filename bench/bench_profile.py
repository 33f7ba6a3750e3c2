"""Interleaved A/B throughput against the C servers, with per-request CPU (issue 8).

Each round starts every server in turn (in a rotated order) on 127.0.0.1, runs
every cell against it with ``wrk -t1`` and stops it; the table shows the
median of the rounds and the ratios against bjoern and fastwsgi measured in
the same run. Per-request CPU is the server process's ``utime + stime`` (all
threads, from ``/proc/<pid>/stat``) over the cell divided by the requests wrk
completed; idle CPU is measured over ``--idle`` seconds after the last cell
with no client connected (100% = one core).

Cells (access logs off everywhere):

* ``ka1`` - hello world, keep-alive, 1 connection;
* ``ka32`` - hello world, keep-alive, 32 connections;
* ``close32`` - hello world, ``Connection: close``, 32 connections;
* ``flask32`` - a one-route Flask app, keep-alive, 32 connections.

Servers: ``fastserve`` (``run_simple(threaded=True)``, the interpreter running
this script), ``base`` (the same under another interpreter/checkout:
``--base-python /work/wt-tpbase/.venv/bin/python``), ``bjoern``, ``fastwsgi``.

Usage::

    python bench/bench_profile.py --rounds 5 --duration 4
    python bench/bench_profile.py --servers fastserve,base --cells ka32,flask32 \\
        --base-python ../wt-tpbase/.venv/bin/python
    python bench/bench_profile.py --profile fastserve --cells flask32   # py-spy, per function
    python bench/bench_profile.py serve fastserve flask 8000            # just run one server

Linux-only (``/proc``); needs wrk; bjoern/fastwsgi/flask are skipped when not
importable. Never run by CI; results are not committed.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

HOST = "127.0.0.1"
HELLO = b"Hello, World!"
CELLS = {
    # key: (app, connections, extra wrk args)
    "ka1": ("hello", 1, []),
    "ka32": ("hello", 32, []),
    "close32": ("hello", 32, ["-H", "Connection: close"]),
    "flask32": ("flask", 32, []),
    "flask1": ("flask", 1, []),
}
CLK_TCK = os.sysconf("SC_CLK_TCK")


def hello(environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
    """Hello world, as bench_server.py serves it."""
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "13")])
    return [HELLO]


def flask_app() -> Any:
    """A one-route Flask app."""
    from flask import Flask

    app = Flask("bench")

    @app.route("/")
    def index() -> str:
        return "Hello, World!"

    return app


def serve(server: str, app_name: str, port: int) -> None:
    """Run ``server`` with ``app_name`` in this process."""
    import logging

    app = flask_app() if app_name == "flask" else hello
    if server in ("fastserve", "base"):
        import fastserve.parser
        from fastserve import run_simple

        if fastserve.parser.PARSER_IMPL != "c":
            sys.exit("compiled parser not in use")
        logging.getLogger("werkzeug").setLevel(logging.WARNING)
        run_simple(HOST, port, app, threaded=True)
    elif server == "bjoern":
        import bjoern

        bjoern.run(app, HOST, port)
    elif server == "fastwsgi":
        import fastwsgi

        fastwsgi.run(wsgi_app=app, host=HOST, port=port, loglevel=0)
    else:
        sys.exit(f"unknown server {server!r}")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


def _get_ok(port: int) -> bool:
    try:
        with socket.create_connection((HOST, port), timeout=1.0) as s:
            s.sendall(b"GET / HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n")
            data = b""
            while chunk := s.recv(4096):
                data += chunk
        return b" 200 " in data.split(b"\r\n", 1)[0]
    except OSError:
        return False


def cpu_seconds(pid: int) -> float:
    """utime + stime of all the process's threads, in seconds."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


class Running:
    """One server subprocess in its own session."""

    def __init__(self, python: str, server: str, app_name: str) -> None:
        self.port = _free_port()
        self.proc = subprocess.Popen(
            [python, str(Path(__file__).resolve()), "serve", server, app_name, str(self.port)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        deadline = time.monotonic() + 30
        while not _get_ok(self.port):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"{server}/{app_name} did not start")
            time.sleep(0.1)

    def stop(self) -> None:
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.proc.wait(10)


def run_wrk(port: int, cell: str, duration: float) -> tuple[float, int]:
    _, conns, extra = CELLS[cell]
    proc = subprocess.run(
        [
            "wrk",
            "-t1",
            f"-c{conns}",
            f"-d{max(1, round(duration))}s",
            *extra,
            f"http://{HOST}:{port}/",
        ],
        capture_output=True,
        text=True,
        timeout=duration + 60,
    )
    m = re.search(r"(\d+) requests in", proc.stdout)
    rps = re.search(r"Requests/sec:\s+([\d.]+)", proc.stdout)
    if not m or not rps:
        raise RuntimeError(f"wrk: {proc.stdout}{proc.stderr}")
    if "Non-2xx" in proc.stdout or "Socket errors" in proc.stdout:
        print(f"  warning ({cell}): {proc.stdout.strip().splitlines()[-3:]}", file=sys.stderr)
    return float(rps.group(1)), int(m.group(1))


def measure(
    servers: dict[str, str], cells: list[str], rounds: int, duration: float, idle: float
) -> dict[tuple[str, str], list[tuple[float, float]]]:
    """{(server, cell or 'idle'): [(req/s, us CPU per request) or (cpu %, 0)]}"""
    results: dict[tuple[str, str], list[tuple[float, float]]] = {}
    names = list(servers)
    apps = sorted({CELLS[c][0] for c in cells})
    for r in range(rounds):
        order = names[r % len(names) :] + names[: r % len(names)]
        for name in order:
            for app_name in apps:
                running = Running(servers[name], name, app_name)
                try:
                    pid = running.proc.pid
                    for cell in cells:
                        if CELLS[cell][0] != app_name:
                            continue
                        before = cpu_seconds(pid)
                        rps, count = run_wrk(running.port, cell, duration)
                        used = cpu_seconds(pid) - before
                        results.setdefault((name, cell), []).append((rps, used / count * 1e6))
                        print(
                            f"round {r + 1} {name:10} {cell:8} {rps:10,.0f} req/s "
                            f"{used / count * 1e6:6.1f} us CPU/req",
                            file=sys.stderr,
                        )
                    if idle and app_name == apps[0]:
                        time.sleep(1.0)
                        before = cpu_seconds(pid)
                        time.sleep(idle)
                        pct = (cpu_seconds(pid) - before) / idle * 100
                        results.setdefault((name, "idle"), []).append((pct, 0.0))
                finally:
                    running.stop()
    return results


def table(results: dict[tuple[str, str], list[tuple[float, float]]], cells: list[str]) -> str:
    names = list(dict.fromkeys(n for n, _ in results))
    med = {k: (statistics.median(v[0] for v in vs), statistics.median(v[1] for v in vs))
           for k, vs in results.items()}  # fmt: skip
    lines = [
        "| server | " + " | ".join(f"{c} req/s (us CPU/req)" for c in cells) + " | idle CPU |",
        "|---" * (len(cells) + 2) + "|",
    ]
    for name in names:
        row = [name]
        for cell in cells:
            rps, cpu = med.get((name, cell), (0.0, 0.0))
            row.append(f"{rps:,.0f} ({cpu:.1f})")
        idle = med.get((name, "idle"))
        row.append(f"{idle[0]:.2f} %" if idle else "-")
        lines.append("| " + " | ".join(row) + " |")
    lines.append("")
    for ref in ("bjoern", "fastwsgi", "base"):
        if ref not in names:
            continue
        for name in names:
            if name == ref or name not in ("fastserve", "base"):
                continue
            ratios = []
            for cell in cells:
                a, b = med.get((name, cell)), med.get((ref, cell))
                ratios.append(f"{cell} {a[0] / b[0]:.2f}x" if a and b and b[0] else f"{cell} -")
            lines.append(f"{name} / {ref}: " + ", ".join(ratios))
    return "\n".join(lines)


def profile(python: str, server: str, cell: str, duration: float, native: bool) -> None:
    """py-spy the server while wrk loads it; print self/inclusive shares."""
    py_spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    running = Running(python, server, CELLS[cell][0])
    out = Path(tempfile.mkdtemp(prefix="bench-prof-"))
    try:
        cmd = [py_spy, "record", "--pid", str(running.proc.pid), "--format", "raw",
               "--output", str(out / "folded.txt"), "--duration", str(round(duration)),
               "--rate", "500", "--nonblocking", "--function"]  # fmt: skip
        if native:
            cmd.append("--native")
        spy = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(0.5)
        rps, _ = run_wrk(running.port, cell, duration)
        spy.wait(duration + 60)
        folded = (out / "folded.txt").read_text()
        print(f"{server} {cell}: {rps:,.0f} req/s under py-spy")
        selfc: dict[str, int] = {}
        incl: dict[str, int] = {}
        total = 0
        for line in folded.splitlines():
            stack, _, n_text = line.rpartition(" ")
            frames = [f for f in stack.split(";") if not f.startswith(("thread (", "process "))]
            if not frames or not n_text.isdigit():
                continue
            n = int(n_text)
            total += n
            selfc[frames[-1]] = selfc.get(frames[-1], 0) + n
            for f in set(frames):
                incl[f] = incl.get(f, 0) + n
        print(f"{total} samples\nself %  function")
        for f, n in sorted(selfc.items(), key=lambda kv: -kv[1])[:30]:
            print(f"{100 * n / total:6.1f}  {f}")
        print("incl %  function")
        for f, n in sorted(incl.items(), key=lambda kv: -kv[1])[:30]:
            print(f"{100 * n / total:6.1f}  {f}")
    finally:
        running.stop()
        shutil.rmtree(out, ignore_errors=True)


REQUEST = b"GET / HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nUser-Agent: wrk\r\nAccept: */*\r\n\r\n"


def cycle(app_name: str, count: int) -> None:
    """One thread, no wrk: a loopback TCP client sends a request, the
    connection's ``on_readable()`` serves it, the client reads the response.
    Prints microseconds per step, cumulatively (each line adds one layer)."""
    import logging

    from fastserve import make_server
    from fastserve.connection import HTTPConnection
    from fastserve.parser import RequestParser

    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    app = flask_app() if app_name == "flask" else hello
    server = make_server(HOST, 0, app, threaded=True)
    client = socket.create_connection(server.server_address[:2])
    client.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock, addr = server.socket.accept()
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    conn = HTTPConnection(server, sock, addr)
    recv, send = client.recv, client.send

    def timeit(step: Callable[[], Any]) -> float:
        best = float("inf")
        for _ in range(5):
            t = time.perf_counter()
            for _ in range(count):
                step()
            best = min(best, (time.perf_counter() - t) / count * 1e6)
        return best

    def syscalls() -> None:  # the same socket traffic, no HTTP
        send(REQUEST)
        sock.recv(65536)
        sock.send(HELLO)
        recv(65536)

    parser = RequestParser()

    def parse_only() -> None:
        parser.parse(REQUEST)
        parser.environ  # noqa: B018 - what the server reads

    def served() -> None:
        send(REQUEST)
        conn.on_readable()
        recv(65536)

    print(f"{app_name}: us per request (best of 5 x {count})")
    print(f"  socket round trip, no HTTP   {timeit(syscalls):7.2f}")
    print(f"  parse + parser.environ       {timeit(parse_only):7.2f}")
    print(f"  on_readable() whole cycle    {timeit(served):7.2f}")
    if app_name == "flask":
        environ = dict(parser.environ, **conn.base_env)

        def app_only() -> None:
            result = app(environ.copy(), lambda s, h, e=None: None)
            for _ in result:
                pass
            result.close()

        print(f"  the Flask app alone          {timeit(app_only):7.2f}")


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] == "serve":
        serve(argv[1], argv[2], int(argv[3]))
        return 0
    if argv and argv[0] == "cycle":
        cycle(argv[1], int(argv[2]) if len(argv) > 2 else 20000)
        return 0
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--servers", default="fastserve,base,bjoern,fastwsgi")
    p.add_argument("--cells", default=",".join(CELLS))
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--duration", type=float, default=4.0)
    p.add_argument("--idle", type=float, default=5.0, help="seconds of idle CPU (0: skip)")
    p.add_argument("--base-python", default="", help="interpreter whose fastserve is 'base'")
    p.add_argument("--profile", metavar="SERVER", help="py-spy SERVER on the first cell")
    p.add_argument("--native", action="store_true", help="py-spy --native")
    args = p.parse_args(argv)
    cells = args.cells.split(",")
    servers: dict[str, str] = {}
    for name in args.servers.split(","):
        python = args.base_python if name == "base" else sys.executable
        if not python:
            print("skipping base: no --base-python", file=sys.stderr)
            continue
        module = {"base": "fastserve", "fastserve": "fastserve"}.get(name, name)
        ok = subprocess.run([python, "-c", f"import {module}, flask"], capture_output=True)
        if ok.returncode:
            print(f"skipping {name}: {module} not importable", file=sys.stderr)
            continue
        servers[name] = python
    if args.profile:
        profile(servers[args.profile], args.profile, cells[0], args.duration * 2, args.native)
        return 0
    results = measure(servers, cells, args.rounds, args.duration, args.idle)
    print(f"wrk -t1, {args.duration:g} s per cell, median of {args.rounds} interleaved rounds")
    print(table(results, cells))
    return 0


if __name__ == "__main__":
    sys.exit(main())
