"""Instructions per request of a whole WSGI server process, under valgrind's callgrind.

Every server runs alone in a subprocess under ``valgrind --tool=callgrind
--instr-atstart=no`` (``PYTHONHASHSEED=0``) with the hello-world app of
``bench_profile.py`` on 127.0.0.1. A daemon thread in that process listens on
the next port: the first connection to it turns instrumentation on
(``callgrind_control -i on``), the second turns it off and dumps the counts
(``callgrind_control -d``), then the process exits. The client sends 50
warm-up rounds, the start marker, ``--rounds`` measured rounds and the stop
marker; each round is one ``GET /`` on each of ``--conns`` keep-alive
connections (``--mode ka``, round-robin, one request in flight per connection)
or ``--conns`` new connections with ``Connection: close`` (``--mode close``:
one request per connection, so the figure includes accept and close). The
figure is the dump's ``Ir`` total (``callgrind_annotate``, "PROGRAM TOTALS",
all threads, user space only: not the kernel) divided by ``conns * rounds``.
It also counts the marker thread's own work in the window (waking up, a
``posix_spawn``), a constant of about 30,000 instructions: some 50 per request
at 32 connections x 20 rounds.

Why: requests/s on this 2-core shared VM swing 2-9x with whatever else runs,
while an instruction count is deterministic to about 1% whatever the load, so
two runs (or two checkouts, with ``--base-python``) can be compared directly.
Instructions are not time (cache misses, syscalls and the kernel are not in
them): confirm a change with ``bench_profile.py`` or ``bench_server.py``.

Servers: the names ``bench_profile.serve`` knows: ``fastserve``
(``run_simple(threaded=True)``, this interpreter), ``base`` (the same under
``--base-python``, another checkout's venv), ``bjoern``, ``fastwsgi`` (not
measurable: its loop keeps the GIL, so the marker thread never runs; the row
says so); one that is not importable is skipped with a note. Repeated runs
agree to ~1%, but now and then a ``--mode ka`` run comes out ~10% higher (how
many requests each poll batch gets depends on timing): run it twice.

Usage::

    python bench/bench_instructions.py                                  # fastserve, ka, 32 x 20
    python bench/bench_instructions.py --servers fastserve,bjoern --mode close
    python bench/bench_instructions.py --servers fastserve,base --base-python ../wt/.venv/bin/python
    python bench/bench_instructions.py --keep /tmp/cg   # keep cg.out.* for callgrind_annotate

Each server takes 5-30 s under valgrind. Linux-only; needs valgrind
(``valgrind``, ``callgrind_control``, ``callgrind_annotate``). Never run by
CI; results are not committed.
"""

from __future__ import annotations

import argparse
import os
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from importlib import metadata
from pathlib import Path

import bench_profile
from bench_parser import machine_line

HOST = bench_profile.HOST
HELLO = bench_profile.HELLO
TOOLS = ("valgrind", "callgrind_control", "callgrind_annotate")
MODULES = {
    "fastserve": "fastserve",
    "base": "fastserve",
    "bjoern": "bjoern",
    "fastwsgi": "fastwsgi",
}
WARMUP_ROUNDS = 50
SOCKET_TIMEOUT = 30.0
START_TIMEOUT = 60.0
EXIT_TIMEOUT = 120.0


# --- the server side (``serve``, in the process under valgrind) ----------------------


def callgrind_control(args: list[str], env: dict[str, str], null: int) -> None:
    """Run ``callgrind_control ARGS <this pid>`` (output to fd ``null``) and wait for it.

    ``posix_spawnp`` with a small prepared ``env`` rather than ``subprocess``:
    the call at the stop marker runs while instrumentation is on, and this keeps
    its cost to about 10,000 instructions (``os.environ`` alone costs 370,000).
    """
    argv = ["callgrind_control", *args, str(os.getpid())]
    actions = [(os.POSIX_SPAWN_DUP2, null, 1), (os.POSIX_SPAWN_DUP2, null, 2)]
    pid = os.posix_spawnp(argv[0], argv, env, file_actions=actions)
    os.waitpid(pid, 0)


def toggler(port: int) -> None:
    """Marker listener on ``port``: 1st connection instrumentation on, 2nd off + dump + exit.

    Each marker connection gets one byte back once ``callgrind_control`` has
    returned, so the client never runs a measured request before the switch.
    """
    env = {k: os.environ[k] for k in ("PATH", "TMPDIR", "HOME") if k in os.environ}
    null = os.open(os.devnull, os.O_WRONLY)
    listener = socket.socket()
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind((HOST, port))
    listener.listen(4)
    for state in ("on", "off"):
        conn, _ = listener.accept()
        callgrind_control(["-i", state], env, null)
        conn.sendall(b"k")
        conn.close()
    callgrind_control(["-d"], env, null)
    os._exit(0)


def serve(server: str, port: int) -> None:
    """Start the marker thread on ``port + 1``, then run ``server`` on ``port``."""
    threading.Thread(target=toggler, args=(port + 1,), daemon=True).start()
    bench_profile.serve(server, "hello", port)


# --- the client side -------------------------------------------------------------------


def connect(port: int, deadline: float) -> socket.socket:
    """A loopback connection with ``SOCKET_TIMEOUT`` on every operation."""
    while True:
        try:
            return socket.create_connection((HOST, port), timeout=SOCKET_TIMEOUT)
        except ConnectionRefusedError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def read_response(sock: socket.socket, to_eof: bool) -> None:
    """Read one hello-world response: up to its body (keep-alive) or to EOF."""
    data = b""
    while True:
        chunk = sock.recv(4096)
        if not chunk:
            if to_eof and data.endswith(HELLO):
                break
            raise ConnectionError(f"connection closed after {data[:200]!r}")
        data += chunk
        if not to_eof and data.endswith(HELLO):
            break
    if not data.startswith(b"HTTP/1.1 200 "):
        raise ConnectionError(f"unexpected response {data[:200]!r}")


def marker(port: int) -> None:
    """Connect to the marker listener and wait for its acknowledgement."""
    with socket.create_connection((HOST, port), timeout=SOCKET_TIMEOUT) as sock:
        if sock.recv(1) != b"k":
            raise ConnectionError("marker not acknowledged")


class Client:
    """``conns`` connections, one ``GET /`` on each per round."""

    def __init__(self, port: int, conns: int, close: bool, deadline: float) -> None:
        self.port, self.conns, self.close, self.deadline = port, conns, close, deadline
        head = f"GET / HTTP/1.1\r\nHost: {HOST}:{port}\r\n"
        self.request = (head + ("Connection: close\r\n" if close else "") + "\r\n").encode()
        self.socks = [] if close else [connect(port, deadline) for _ in range(conns)]

    def round(self) -> None:
        """Send every connection's request, then read every response."""
        if time.monotonic() > self.deadline:
            raise TimeoutError("run took longer than --timeout")
        socks = (
            [connect(self.port, self.deadline) for _ in range(self.conns)]
            if self.close
            else self.socks
        )
        for sock in socks:
            sock.sendall(self.request)
        for sock in socks:
            read_response(sock, self.close)
            if self.close:
                sock.close()

    def shutdown(self) -> None:
        """Close the keep-alive connections."""
        for sock in self.socks:
            sock.close()


def free_port_pair() -> int:
    """A port P such that P and P + 1 are both free on the loopback."""
    for _ in range(50):
        port = bench_profile._free_port()
        try:
            with socket.socket() as s:
                s.bind((HOST, port + 1))
            return port
        except OSError:
            continue
    raise RuntimeError("no two adjacent free ports")


def wait_listening(port: int, proc: subprocess.Popen[bytes], timeout: float) -> None:
    """Wait until ``port`` accepts connections (valgrind starts slowly)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            socket.create_connection((HOST, port), timeout=1.0).close()
            return
        except OSError:
            if proc.poll() is not None:
                raise RuntimeError(f"server exited with {proc.returncode}") from None
            if time.monotonic() > deadline:
                raise RuntimeError(f"server not listening after {timeout:g} s") from None
            time.sleep(0.2)


def stop(proc: subprocess.Popen[bytes], timeout: float) -> None:
    """Wait for the server to exit; kill its process group after ``timeout``."""
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        print(f"  server {proc.pid} did not exit, killed", file=sys.stderr)
    if proc.poll() is None:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait(10)


def total_ir(out_dir: Path) -> int:
    """``Ir`` of the largest ``cg.out.*`` file in ``out_dir`` (the dump)."""
    files = sorted(out_dir.glob("cg.out.*"), key=lambda f: f.stat().st_size)
    if not files:
        raise RuntimeError(f"no callgrind output in {out_dir}")
    text = subprocess.run(
        ["callgrind_annotate", str(files[-1])],
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    ).stdout
    for line in text.splitlines():
        if "PROGRAM TOTALS" in line:
            return int(line.split()[0].replace(",", ""))
    raise RuntimeError(f"no PROGRAM TOTALS from callgrind_annotate {files[-1]}")


def measure(
    python: str, server: str, out_dir: Path, close: bool, conns: int, rounds: int, timeout: float
) -> int:
    """Run ``server`` under callgrind, drive it; return instructions in the window."""
    out_dir.mkdir(parents=True, exist_ok=True)
    port = free_port_pair()
    cmd = ["valgrind", "--tool=callgrind", "--instr-atstart=no",
           f"--callgrind-out-file={out_dir}/cg.out.%p",
           python, str(Path(__file__).resolve()), "serve", server, str(port)]  # fmt: skip
    with open(out_dir / "server.log", "wb") as log:
        proc = subprocess.Popen(
            cmd,
            cwd=out_dir,
            env={**os.environ, "PYTHONHASHSEED": "0"},
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=log,
            start_new_session=True,
        )
    try:
        wait_listening(port, proc, START_TIMEOUT)
        client = Client(port, conns, close, time.monotonic() + timeout)
        try:
            for _ in range(WARMUP_ROUNDS):
                client.round()
            marker(port + 1)
            for _ in range(rounds):
                client.round()
            marker(port + 1)
        finally:
            client.shutdown()
    except BaseException:
        log_tail = (out_dir / "server.log").read_text(errors="replace").splitlines()[-15:]
        print("\n".join(f"  server.log: {line}" for line in log_tail), file=sys.stderr)
        stop(proc, 0)
        raise
    stop(proc, EXIT_TIMEOUT)
    return total_ir(out_dir)


# --- the command -----------------------------------------------------------------------


def importable(python: str, module: str) -> bool:
    """Whether ``python -c 'import MODULE'`` succeeds."""
    return subprocess.run([python, "-c", f"import {module}"], capture_output=True).returncode == 0


def versions_line(names: list[str]) -> str:
    """valgrind's version and the servers' distributions (this interpreter's)."""
    found = [subprocess.run(["valgrind", "--version"], capture_output=True, text=True).stdout]
    for dist in dict.fromkeys(MODULES.get(n, n) for n in names):
        try:
            found.append(f"{dist} {metadata.version(dist)}")
        except metadata.PackageNotFoundError:
            pass
    return ", ".join(f.strip() for f in found)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] == "serve":
        serve(argv[1], int(argv[2]))
        return 0
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--servers", default="fastserve", help="comma-separated, run one after another")
    p.add_argument("--mode", choices=("ka", "close"), default="ka")
    p.add_argument("--conns", type=int, default=32)
    p.add_argument("--rounds", type=int, default=20, help="measured rounds (after 50 warm-up)")
    p.add_argument("--keep", metavar="DIR", help="keep the callgrind files in DIR/SERVER-MODE")
    p.add_argument("--base-python", default="", help="interpreter whose fastserve is 'base'")
    p.add_argument("--timeout", type=float, default=900.0, help="seconds per server at most")
    args = p.parse_args(argv)
    if args.conns < 1 or args.rounds < 1:
        p.error("--conns and --rounds must be >= 1")
    missing = [tool for tool in TOOLS if shutil.which(tool) is None]
    if missing:
        print(f"not on the PATH: {', '.join(missing)} (apt-get install valgrind)", file=sys.stderr)
        return 2
    servers: dict[str, str] = {}
    for name in args.servers.split(","):
        if name not in MODULES:
            p.error(f"unknown server {name!r} (known: {', '.join(MODULES)})")
        python = args.base_python if name == "base" else sys.executable
        if not python:
            print("skipping base: no --base-python", file=sys.stderr)
        elif not importable(python, MODULES[name]):
            print(f"skipping {name}: {MODULES[name]} not importable", file=sys.stderr)
        else:
            servers[name] = python

    print("## instructions per request (callgrind Ir, user space, all threads)\n")
    print(f"{machine_line()}  \n{versions_line(list(servers))}  ")
    print(f"command: `{shlex.join([sys.executable, *sys.argv])}`\n")
    print("| server | mode | connections | rounds | instructions per request |")
    print("|---|---|---:|---:|---:|")
    root = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="bench-cg-"))
    try:
        for name, python in servers.items():
            started = time.monotonic()
            try:
                out = root / f"{name}-{args.mode}"
                close = args.mode == "close"
                ir = measure(python, name, out, close, args.conns, args.rounds, args.timeout)
            except TimeoutError:
                # fastwsgi's libuv loop keeps the GIL: the marker thread never runs
                print(f"| {name} | {args.mode} | {args.conns} | {args.rounds} | not measured:"
                      " its marker thread did not answer (a loop holding the GIL) |")  # fmt: skip
                continue
            print(f"  {name}: {ir:,} Ir in {time.monotonic() - started:.0f} s", file=sys.stderr)
            per_request = ir / (args.conns * args.rounds)
            print(f"| {name} | {args.mode} | {args.conns} | {args.rounds} | {per_request:,.0f} |",
                  flush=True)  # fmt: skip
    finally:
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)
    if args.keep:
        print(f"\ncallgrind files in {root}/SERVER-MODE (the largest cg.out.* is the dump)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
