"""Attack clients for ``bench_stress.py``: many slow or non-reading peers from one event loop.

Runs as its own process (one asyncio loop, non-blocking sockets), so the attackers never compete
with the measuring process for its GIL. Raises its own ``RLIMIT_NOFILE`` to the hard limit.
Everything goes to 127.0.0.1. Modes (``--conns`` connections each, opened with at most 256
connects in flight; a failed connect is retried every 0.2 s until ``--ramp`` seconds have passed):

* ``slow-heads`` - each connection sends a request head at 1 byte/s (the head is ~4 KB, so it
  never completes during a run);
* ``trickle`` - each sends ``POST /sink`` with ``Content-Length: 10000`` and then the body at
  1 byte per 0.5 s, reading (and counting) whatever the server answers;
* ``nonreader`` - each sets ``SO_RCVBUF`` to 4 KiB, pipelines 4 ``GET /1mib`` and never reads;
* ``idle`` - each sends ``GET /``, reads the reply and stays open (keep-alive, idle);
* ``hold`` - each connects and sends nothing;
* ``long`` - one ``GET /sleep20``, read to the end (one connection, ``--conns`` ignored);
* ``slow-stream`` - ``GET /sleep2`` on a fresh connection 5 times a second; after 2 s (10 in
  flight) also fast ``GET /`` on fresh connections at ``--fast-rate``/s for ``--probe-window``
  seconds, each timed from connect to the last byte.

Prints one JSON object per line on stdout: ``{"event": "ready", ...}`` once the connections are
up (or the ramp ran out), ``{"event": "probes", ...}`` with the fast-request latencies
(slow-stream), ``{"event": "done", ...}`` when it stops: after ``--duration`` seconds, on SIGTERM,
or (``long``) when the response is complete. Connections are closed with an RST (``SO_LINGER``
0), so no TIME_WAIT is left behind.

Usage (normally started by ``bench_stress.py``)::

    python bench/stress_attack.py trickle --port 8000 --conns 300 --duration 30
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import resource
import signal
import socket
import statistics
import struct
import sys
import time
from typing import Any

HOST = "127.0.0.1"
LINGER_RST = struct.pack("ii", 1, 0)
MAX_CONNECTING = 256
STATUS_RE = re.compile(rb"HTTP/1\.[01] (\d{3})")

SLOW_HEAD = (
    b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: bench-stress-slow-head\r\nX-Padding: "
    + b"a" * 4000
    + b"\r\n\r\n"
)
TRICKLE_LENGTH = 10_000
TRICKLE_HEAD = (
    b"POST /sink HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/octet-stream\r\n"
    b"Content-Length: %d\r\n\r\n" % TRICKLE_LENGTH
)
PIPELINED = 4
NONREADER_REQUESTS = b"GET /1mib HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n" * PIPELINED
HELLO_REQUEST = b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"


def raise_nofile() -> int:
    """Soft RLIMIT_NOFILE up to the hard limit; returns the new soft limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = hard if hard != resource.RLIM_INFINITY else 1 << 20
    if soft == resource.RLIM_INFINITY or soft >= target:
        return soft
    resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    return target


def emit(event: str, **fields: Any) -> None:
    print(json.dumps({"event": event, **fields}), flush=True)


def abort(sock: socket.socket) -> None:
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, LINGER_RST)
    except OSError:
        pass
    sock.close()


class Conn:
    __slots__ = ("sock", "sent")

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.sent = 0  # bytes of the trickled part sent so far


def _quantiles(values: list[float]) -> dict[str, float | None]:
    if not values:
        return {"p50": None, "p99": None, "max": None}
    values = sorted(values)
    p99 = values[min(len(values) - 1, int(0.99 * len(values)))]
    return {"p50": statistics.median(values), "p99": p99, "max": values[-1]}


class Attack:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.port: int = args.port
        self.conns: list[Conn] = []
        self.stop = asyncio.Event()
        self.t0 = time.monotonic()
        self.stats: dict[str, Any] = {
            "mode": args.mode,
            "target": args.conns,
            "connected": 0,
            "connect_failures": 0,
            "unanswered": 0,
            "closed_by_server": 0,
            "responses": 0,
            "statuses": {},
        }

    # --- connections -----------------------------------------------------------------

    async def _open(self, sem: asyncio.Semaphore, deadline: float, first: bytes) -> None:
        loop = asyncio.get_running_loop()
        rcvbuf = 4096 if self.args.mode == "nonreader" else 0
        while not self.stop.is_set():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.setblocking(False)
            if rcvbuf:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
            try:
                async with sem:
                    await asyncio.wait_for(
                        loop.sock_connect(sock, (HOST, self.port)), min(3.0, remaining)
                    )
                if first:
                    await asyncio.wait_for(loop.sock_sendall(sock, first), 5.0)
            except (OSError, asyncio.TimeoutError):
                abort(sock)
                self.stats["connect_failures"] += 1
                await asyncio.sleep(0.2)
                continue
            except asyncio.CancelledError:
                abort(sock)
                raise
            self.stats["connected"] += 1
            conn = Conn(sock)
            try:
                if self.args.mode == "idle":
                    await self._read_one_reply(conn)
            finally:  # (idle: only once the reply is in, so that the ticks never read it)
                self.conns.append(conn)
            return

    async def _read_one_reply(self, conn: Conn) -> None:
        """Read one complete reply to ``GET /`` (the idle mode), then leave the socket be."""
        loop = asyncio.get_running_loop()
        data = b""
        try:
            while True:
                chunk = await asyncio.wait_for(loop.sock_recv(conn.sock, 65536), 10.0)
                if not chunk:
                    self.stats["closed_by_server"] += 1
                    return
                data += chunk
                head, sep, body = data.partition(b"\r\n\r\n")
                if sep:
                    m = re.search(rb"(?i)\r\ncontent-length:\s*(\d+)", head)
                    if m is None or len(body) >= int(m.group(1)):
                        self._count(data)
                        return
        except (OSError, asyncio.TimeoutError):
            self.stats["unanswered"] += 1

    async def open_all(self, first: bytes) -> set[asyncio.Future[None]]:
        """Open the connections; returns after ``--ramp`` + 1 s at the latest, with the
        attempts still under way (idle mode: replies still awaited) left running."""
        sem = asyncio.Semaphore(MAX_CONNECTING)
        deadline = time.monotonic() + self.args.ramp
        tasks = {
            asyncio.ensure_future(self._open(sem, deadline, first)) for _ in range(self.args.conns)
        }
        _, pending = await asyncio.wait(tasks, timeout=self.args.ramp + 1.0)
        self.stats["pending"] = len(pending)
        return pending

    def _count(self, data: bytes) -> None:
        for m in STATUS_RE.finditer(data):
            self.stats["responses"] += 1
            code = m.group(1).decode()
            self.stats["statuses"][code] = self.stats["statuses"].get(code, 0) + 1

    # --- the periodic part --------------------------------------------------------------

    async def ticks(self, interval: float, payload: bytes, limit: int, read: bool) -> None:
        """Every ``interval``: send the next byte of ``payload`` (up to ``limit``), poll reads."""
        while not self.stop.is_set():
            alive = []
            for conn in self.conns:
                sock = conn.sock
                if payload and conn.sent < limit:
                    try:
                        i = conn.sent % len(payload)
                        conn.sent += sock.send(payload[i : i + 1])
                    except BlockingIOError:
                        pass
                    except OSError:
                        self.stats["closed_by_server"] += 1
                        abort(sock)
                        continue
                if read:
                    try:
                        data = sock.recv(65536)
                    except BlockingIOError:
                        data = None
                    except OSError:
                        data = b""
                    if data == b"":
                        self.stats["closed_by_server"] += 1
                        abort(sock)
                        continue
                    if data:
                        self._count(data)
                alive.append(conn)
            self.conns = alive
            try:
                await asyncio.wait_for(self.stop.wait(), interval)
            except asyncio.TimeoutError:
                pass

    # --- modes ---------------------------------------------------------------------------

    async def run_connections(self) -> None:
        mode = self.args.mode
        first = {
            "slow-heads": b"",
            "trickle": TRICKLE_HEAD,
            "nonreader": NONREADER_REQUESTS,
            "idle": HELLO_REQUEST,
            # one byte: TCP_DEFER_ACCEPT keeps silent connections in the kernel,
            # so only connections that sent something reach accept()
            "hold": b"G",
        }[mode]
        ticker = None
        if mode == "slow-heads":
            ticker = asyncio.ensure_future(self.ticks(1.0, SLOW_HEAD, len(SLOW_HEAD), True))
        elif mode == "trickle":
            ticker = asyncio.ensure_future(self.ticks(0.5, b"x", TRICKLE_LENGTH, True))
        pending = await self.open_all(first)
        emit("ready", elapsed=time.monotonic() - self.t0, **self.stats)
        if mode in ("idle", "hold"):  # only watch for the server closing them
            ticker = asyncio.ensure_future(self.ticks(1.0, b"", 0, True))
        await self.stop.wait()
        if ticker is not None:
            await ticker
        for task in pending:
            task.cancel()
        if pending:
            await asyncio.wait(pending)
        self.stats["open_at_end"] = len(self.conns)
        self.stats["bytes_trickled"] = sum(c.sent for c in self.conns)
        for conn in self.conns:
            abort(conn.sock)
        self.conns = []

    async def run_long(self) -> None:
        reader, writer = await asyncio.wait_for(asyncio.open_connection(HOST, self.port), 10)
        writer.write(b"GET /sleep20 HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
        await writer.drain()
        emit("ready", elapsed=time.monotonic() - self.t0)
        start = last = time.monotonic()
        received, gaps = 0, []

        async def read_all() -> None:
            nonlocal received, last
            while chunk := await reader.read(65536):
                now = time.monotonic()
                gaps.append(now - last)
                last = now
                received += len(chunk)

        reading = asyncio.ensure_future(read_all())
        stopping = asyncio.ensure_future(self.stop.wait())
        await asyncio.wait({reading, stopping}, return_when=asyncio.FIRST_COMPLETED)
        complete = reading.done() and reading.exception() is None
        reading.cancel()
        stopping.cancel()
        writer.close()
        self.stats.update(
            complete=complete,
            bytes=received,
            response_s=last - start,
            first_byte=gaps[0] if gaps else None,
            max_gap=max(gaps[1:], default=None),
        )

    async def _get(self, path: str) -> bytes:
        reader, writer = await asyncio.open_connection(HOST, self.port)
        try:
            writer.write(
                f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n".encode()
            )
            return await reader.read(-1)
        finally:
            writer.close()

    async def _timed_get(self, path: str, timeout: float, out: list[float], bad: list[int]) -> None:
        """One request on a fresh connection, timed from connect to the last byte."""
        start = time.perf_counter()
        try:
            data = await asyncio.wait_for(self._get(path), timeout)
            if b" 200 " not in data.split(b"\r\n", 1)[0]:
                raise OSError("not a 200")
            out.append(time.perf_counter() - start)
        except (OSError, asyncio.TimeoutError):
            bad[0] += 1
            out.append(max(time.perf_counter() - start, timeout))

    async def run_slow_stream(self) -> None:
        tasks: set[asyncio.Task[None]] = set()
        slow: list[float] = []
        slow_bad = [0]
        fast: list[float] = []
        fast_bad = [0]

        def spawn(path: str, timeout: float, out: list[float], bad: list[int]) -> None:
            task = asyncio.ensure_future(self._timed_get(path, timeout, out, bad))
            tasks.add(task)
            task.add_done_callback(tasks.discard)

        async def slow_stream() -> None:
            while not self.stop.is_set():
                spawn("/sleep2", 15.0, slow, slow_bad)
                try:
                    await asyncio.wait_for(self.stop.wait(), 0.2)
                except asyncio.TimeoutError:
                    pass

        streamer = asyncio.ensure_future(slow_stream())
        try:
            await asyncio.wait_for(self.stop.wait(), 2.0)
        except asyncio.TimeoutError:
            pass
        emit("ready", elapsed=time.monotonic() - self.t0)
        probe_tasks = []
        end = time.monotonic() + self.args.probe_window
        while not self.stop.is_set() and time.monotonic() < end:
            task = asyncio.ensure_future(self._timed_get("/", 5.0, fast, fast_bad))
            probe_tasks.append(task)
            try:
                await asyncio.wait_for(self.stop.wait(), 1.0 / self.args.fast_rate)
            except asyncio.TimeoutError:
                pass
        if probe_tasks:
            await asyncio.wait(probe_tasks)
        over = sum(1 for v in fast if v > 0.5)
        emit("probes", fast=len(fast), fast_failed=fast_bad[0], fast_over_0_5s=over,
             **{f"fast_{k}": v for k, v in _quantiles(fast).items()})  # fmt: skip
        await self.stop.wait()
        await streamer
        for task in list(tasks):
            task.cancel()
        self.stats.update(
            fast=len(fast), fast_failed=fast_bad[0], fast_over_0_5s=over,
            slow_done=len(slow), slow_failed=slow_bad[0], slow_unfinished=len(tasks),
            **{f"fast_{k}": v for k, v in _quantiles(fast).items()},
            **{f"slow_{k}": v for k, v in _quantiles(slow).items()},
        )  # fmt: skip

    async def main(self) -> None:
        loop = asyncio.get_running_loop()
        loop.add_signal_handler(signal.SIGTERM, self.stop.set)
        loop.add_signal_handler(signal.SIGINT, self.stop.set)
        loop.call_later(self.args.duration, self.stop.set)
        if self.args.mode == "long":
            await self.run_long()
        elif self.args.mode == "slow-stream":
            await self.run_slow_stream()
        else:
            await self.run_connections()
        emit("done", elapsed=time.monotonic() - self.t0, **self.stats)


MODES = ("slow-heads", "trickle", "nonreader", "idle", "hold", "long", "slow-stream")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("mode", choices=MODES)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--conns", type=int, default=1)
    parser.add_argument("--duration", type=float, default=60.0, help="stop after this (60 s)")
    parser.add_argument("--ramp", type=float, default=10.0, help="seconds to connect in (10)")
    parser.add_argument("--fast-rate", type=float, default=20.0, help="fast requests/s (20)")
    parser.add_argument("--probe-window", type=float, default=5.0, help="seconds of probes (5)")
    args = parser.parse_args(argv)
    limit = raise_nofile()
    if args.mode not in ("long", "slow-stream") and args.conns + 64 > limit:
        emit("done", error=f"RLIMIT_NOFILE {limit} too low for {args.conns} connections")
        return 1
    asyncio.run(Attack(args).main())
    return 0


if __name__ == "__main__":
    sys.exit(main())
