"""Reload latency and idle CPU: werkzeug's reloader against fastserve's.

For a one-file Flask app served by ``run_simple(use_reloader=True)`` on
127.0.0.1 (default ``reloader_interval=1``), each configuration is started, the
app file is saved ``--edits`` times, and after every save ``GET /`` is polled
every 10 ms until the new code answers. Reported per configuration: median and
max latency from the save to the first answer of the new code, and how many of
the edits were detected at all (an edit not answered within ``--give-up``
seconds counts as missed). Configurations are interleaved round by round in
one run, because this machine's speed swings with background load.

Then each server is left idle for ``--idle`` seconds and the CPU time of the
reloader parent and its child (utime + stime from ``/proc``) is reported as a
percentage of one core.

Configurations (server / reloader):

- ``werkzeug``: ``werkzeug.serving.run_simple`` with werkzeug's reloader;
- ``wz+fs``: werkzeug's server with fastserve's reloader (werkzeug's
  ``run_simple`` imports ``werkzeug._reloader.run_with_reloader`` at call
  time; the app rebinds it), which isolates the reloader's share;
- ``fastserve``: ``fastserve.serving.run_simple`` (skipped with a note when
  that module is not importable); ``+preload`` rows set
  ``FASTSERVE_RELOADER_PRELOAD=1`` (the opt-in warm standby, see
  ``fastserve._reloader._standby``).

A ``(floor)`` row per server is the cold start of the app's reloader child
alone (spawn to first answer), measured in the same rounds: no reloader can
restart faster without a standby. "over cold start" is a row's median minus
its server's floor median.

Usage::

    python bench/bench_reload.py            # 8 edits per configuration, 10 s idle
    python bench/bench_reload.py --quick    # 3 edits, 4 s idle

Linux only (reads ``/proc``). Prints a markdown table.
"""

from __future__ import annotations

import argparse
import http.client
import importlib.util
import os
import random
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

APP = """\
import sys

from flask import Flask

VERSION = {version}

app = Flask(__name__)


@app.get("/")
def index():
    return str(VERSION)


if __name__ == "__main__":
    import json

    server, reloader_type, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
    exclude = json.loads(sys.argv[4])
    if server == "werkzeug":
        from werkzeug.serving import run_simple
    elif server == "wz+fs":
        import werkzeug._reloader

        import fastserve._reloader

        werkzeug._reloader.run_with_reloader = fastserve._reloader.run_with_reloader
        from werkzeug.serving import run_simple
    else:
        from fastserve.serving import run_simple
    run_simple(
        "127.0.0.1", port, app, use_reloader=True, reloader_type=reloader_type,
        exclude_patterns=exclude,
    )
"""

#: (server, reloader_type) in table order.
CONFIGS = [
    ("werkzeug", "stat"),
    ("werkzeug", "watchdog"),
    ("wz+fs", "stat"),
    ("wz+fs", "watchdog"),
    ("wz+fs", "watchfiles"),
    ("fastserve", "stat"),
    ("fastserve", "watchdog"),
    ("fastserve", "watchfiles"),
    ("fastserve", "watchdog+preload"),
    ("fastserve", "watchfiles+preload"),
]
#: Idle CPU rows.
IDLE_CONFIGS = [
    ("werkzeug", "stat"),
    ("werkzeug", "watchdog"),
    ("fastserve", "stat"),
    ("fastserve", "watchdog"),
    ("fastserve", "watchfiles"),
    ("fastserve", "watchfiles+preload"),
    ("wz+fs", "stat"),
    ("wz+fs", "watchdog"),
    ("wz+fs", "watchfiles"),
]
POLL = 0.01


def _exclude_patterns() -> str:
    """Patterns every configuration gets: an editable fastserve checkout (its
    sources are outside the interpreter prefixes, so both reloaders watch
    them) is being edited by others while the bench runs."""
    import json

    spec = importlib.util.find_spec("fastserve")
    if spec is None or not spec.origin:
        return "[]"
    src = os.path.dirname(os.path.dirname(spec.origin))
    if any(src.startswith(p) for p in {sys.prefix, sys.base_prefix}):
        return "[]"
    return json.dumps([os.path.join(src, "*")])


EXCLUDE = _exclude_patterns()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def get(port: int, timeout: float = 2.0) -> str | None:
    """Body of ``GET /``, or ``None`` when the server does not answer (yet)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request("GET", "/")
        resp = conn.getresponse()
        return resp.read().decode() if resp.status == 200 else None
    except (OSError, http.client.HTTPException):
        return None
    finally:
        conn.close()


class Server:
    """One ``app.py`` process tree under the reloader, in its own directory."""

    def __init__(self, server: str, reloader_type: str, root: Path) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix=f"{server}-{reloader_type}-", dir=root))
        self.app = self.dir / "app.py"
        self.version = 0
        self.app.write_text(APP.format(version=0))
        self.port = free_port()
        self.log = open(self.dir / "log.txt", "wb")  # noqa: SIM115
        env = {k: v for k, v in os.environ.items() if not k.startswith("WERKZEUG_")}
        if reloader_type.endswith("+preload"):
            reloader_type = reloader_type.removesuffix("+preload")
            env["FASTSERVE_RELOADER_PRELOAD"] = "1"
        self.proc = subprocess.Popen(
            [sys.executable, "app.py", server, reloader_type, str(self.port), EXCLUDE],
            cwd=self.dir,
            env=env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def wait_ready(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited: {self.read_log()}")
            if get(self.port) == str(self.version):
                return
            time.sleep(0.05)
        raise RuntimeError(f"server not ready: {self.read_log()}")

    def edit(self, give_up: float) -> float | None:
        """Save a new version; seconds until it answers, or None if it never did."""
        self.version += 1
        expected = str(self.version)
        text = APP.format(version=self.version)
        start = time.perf_counter()
        self.app.write_text(text)
        deadline = start + give_up
        while time.perf_counter() < deadline:
            if get(self.port, timeout=max(0.05, deadline - time.perf_counter())) == expected:
                return time.perf_counter() - start
            time.sleep(POLL)
        return None

    def pids(self) -> list[int]:
        """The parent and its descendants."""
        children: dict[int, list[int]] = {}
        for entry in os.listdir("/proc"):
            if entry.isdigit():
                try:
                    ppid = int(_stat_fields(int(entry))[1])
                except (OSError, IndexError, ValueError):
                    continue
                children.setdefault(ppid, []).append(int(entry))
        found, todo = [], [self.proc.pid]
        while todo:
            pid = todo.pop()
            found.append(pid)
            todo.extend(children.get(pid, []))
        return found

    def cpu_seconds(self) -> dict[int, float]:
        """CPU seconds used so far by each process of the tree (sum of its
        threads' ``schedstat`` run time: nanosecond resolution)."""
        used = {}
        for pid in self.pids():
            total = 0
            try:
                for tid in os.listdir(f"/proc/{pid}/task"):
                    with open(f"/proc/{pid}/task/{tid}/schedstat") as f:
                        total += int(f.read().split()[0])
            except OSError:
                continue
            used[pid] = total / 1e9
        return used

    def read_log(self) -> str:
        self.log.flush()
        return (self.dir / "log.txt").read_text(errors="replace")[-2000:]

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=10)
        try:  # a child that outlived its parent
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.log.close()


def cold_start(root: Path, server: str) -> float:
    """Seconds from spawning the app's reloader *child* (werkzeug's server,
    listening socket handed over as the parent does) to its first answer: the
    floor under any restart of this app on this machine right now."""
    app_dir = Path(tempfile.mkdtemp(prefix="cold-", dir=root))
    (app_dir / "app.py").write_text(APP.format(version=0))
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(128)
        sock.set_inheritable(True)
        port = sock.getsockname()[1]
        env = {k: v for k, v in os.environ.items() if not k.startswith("WERKZEUG_")}
        env.update(WERKZEUG_RUN_MAIN="true", WERKZEUG_SERVER_FD=str(sock.fileno()))
        start = time.perf_counter()
        proc = subprocess.Popen(
            [sys.executable, "app.py", server, "stat", str(port), EXCLUDE],
            cwd=app_dir,
            env=env,
            close_fds=False,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            while get(port) != "0":
                if proc.poll() is not None or time.perf_counter() - start > 30:
                    raise RuntimeError("cold start failed")
                time.sleep(POLL)
            return time.perf_counter() - start
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def _stat_fields(pid: int) -> list[str]:
    """Fields of /proc/<pid>/stat after the command name (field 3 onwards)."""
    with open(f"/proc/{pid}/stat") as f:
        data = f.read()
    return data[data.rindex(")") + 2 :].split()


@dataclass
class Result:
    latencies: list[float] = field(default_factory=list)
    missed: int = 0
    idle_cpu: float | None = None
    error: str = ""


def fastserve_available() -> bool:
    try:
        import fastserve.serving  # noqa: F401
    except Exception:  # ImportError, or a broken build
        return False
    return True


def run(args: argparse.Namespace) -> dict[tuple[str, str], Result]:
    rng = random.Random(1234)
    configs = [c for c in CONFIGS if c[0] in args.servers]
    floors = {
        server: (f"{server} (floor)", "cold start of the child")
        for server in ("werkzeug", "fastserve")
        if server in args.servers
    }
    results = {c: Result() for c in configs}
    results.update({f: Result() for f in floors.values()})
    rounds = max(1, args.edits // args.per_round)
    with tempfile.TemporaryDirectory(prefix="bench-reload-") as tmp:
        root = Path(tmp)
        for rnd in range(rounds):
            per = args.per_round if rnd < rounds - 1 else args.edits - args.per_round * rnd
            for server, floor in floors.items():
                for _ in range(per):
                    results[floor].latencies.append(cold_start(root, server))
            for config in configs:
                res = results[config]
                srv = Server(*config, root)
                try:
                    srv.wait_ready()
                    for _ in range(per):
                        # Saves land at a random phase of the stat interval.
                        time.sleep(rng.uniform(0.3, 1.3))
                        latency = srv.edit(args.give_up)
                        if latency is None:
                            res.missed += 1
                        else:
                            res.latencies.append(latency)
                except RuntimeError as exc:
                    res.error = str(exc).splitlines()[0][:80] if str(exc) else "error"
                finally:
                    srv.stop()
                print(f"round {rnd + 1}/{rounds} {config}: {res.latencies[-per:]}", file=sys.stderr)
        for config in [c for c in IDLE_CONFIGS if c[0] in args.servers]:
            res = results.setdefault(config, Result())
            srv = Server(*config, root)
            try:
                srv.wait_ready()
                time.sleep(2.0)  # let the first scans (and a standby's preload) finish
                before, t0 = srv.cpu_seconds(), time.monotonic()
                time.sleep(args.idle)
                after, elapsed = srv.cpu_seconds(), time.monotonic() - t0
                used = sum(cpu - before.get(pid, 0.0) for pid, cpu in after.items())
                res.idle_cpu = used / elapsed * 100
                if set(after) != set(before):
                    res.error = res.error or "restarted while idle"
            except RuntimeError as exc:
                res.error = res.error or str(exc)[:80]
            finally:
                srv.stop()
    return results


def table(results: dict[tuple[str, str], Result], edits: int) -> str:
    rows = [
        "| server | reloader | median save-to-new-code (s) | over cold start (s) | max (s)"
        " | detected | idle CPU parent+child (% of a core) |",
        "|---|---|---|---|---|---|---|",
    ]
    floor_medians = {
        server.split()[0]: statistics.median(res.latencies)
        for (server, _), res in results.items()
        if server.endswith("(floor)") and res.latencies
    }
    for (server, rtype), res in results.items():
        floor_median = floor_medians.get("werkzeug" if server == "wz+fs" else server)
        lat = res.latencies
        median = f"{statistics.median(lat):.3f}" if lat else "-"
        over = (
            f"{statistics.median(lat) - floor_median:+.3f}"
            if lat and floor_median is not None and not server.endswith("(floor)")
            else "-"
        )
        worst = f"{max(lat):.3f}" if lat else "-"
        total = len(lat) + res.missed
        detected = f"{len(lat)}/{total}" if total else "-"
        cpu = f"{res.idle_cpu:.2f}" if res.idle_cpu is not None else "-"
        note = f" ({res.error})" if res.error else ""
        rows.append(
            f"| {server} | {rtype}{note} | {median} | {over} | {worst} | {detected} | {cpu} |"
        )
    return "\n".join(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="3 edits, 4 s idle")
    parser.add_argument("--edits", type=int, default=8, help="edits per configuration")
    parser.add_argument(
        "--per-round", type=int, default=2, help="edits per configuration per round"
    )
    parser.add_argument("--idle", type=float, default=10.0, help="seconds of idle CPU measurement")
    parser.add_argument(
        "--give-up", type=float, default=4.0, help="seconds before an edit counts as missed"
    )
    parser.add_argument(
        "--servers",
        default="werkzeug,wz+fs,fastserve",
        help="comma list of werkzeug, wz+fs, fastserve",
    )
    args = parser.parse_args()
    if args.quick:
        args.edits, args.per_round, args.idle = 3, 3, 4.0
    args.servers = set(args.servers.split(","))
    notes = []
    if "fastserve" in args.servers and not fastserve_available():
        args.servers.discard("fastserve")
        notes.append("fastserve.serving is not importable: fastserve rows skipped.")
    results = run(args)
    print(table(results, args.edits))
    print()
    print(
        f"{args.edits} edits per configuration, default reloader_interval=1, "
        "Flask app on 127.0.0.1, "
        f"missed = no new code within {args.give_up} s; idle over {args.idle} s. "
        f"Python {sys.version.split()[0]}, {os.cpu_count()} CPUs."
    )
    for note in notes:
        print(note)


if __name__ == "__main__":
    main()
