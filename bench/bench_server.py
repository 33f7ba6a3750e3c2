"""Loopback benchmark: fastserve against werkzeug's dev server and production WSGI servers.

The full table of ``fastserve bench`` (``src/fastserve/_bench/``, which holds
all the code: servers, drivers, rounds, report); this script only sets longer
defaults, adds the ``fastserve-base`` row and a py-spy profile mode.

Every server runs in its own subprocess on 127.0.0.1 and is driven by ``wrk``
(or, when wrk is absent, by the bundled load generator: the header says
which). Cells: keep-alive with 1, 32 and 256 connections, ``Connection:
close`` with 32, 64 KiB POSTs (keep-alive, 32) and a one-route Flask app
(keep-alive, 32). Servers are interleaved: every round starts each server in
turn (in a rotated order), runs its cells and stops it; the table shows the
median of the rounds and the ratio to werkzeug, and says where the client,
not the server, was the limit (then there is no ratio). This machine's
absolute figures swing with background load: read the ratios.

Servers, each single-process, access logs off, where installed (``fastserve
bench --help`` lists them): fastserve, fastserve-py (pure-Python parser),
fastserve-log (access log on), werkzeug (the baseline), waitress,
gunicorn-sync, gunicorn-gthread, granian, bjoern, fastwsgi, socketify, uwsgi
(pyuwsgi). ``fastserve-base`` is an older checkout's fastserve (its ``src``
with the extension built in place), for A/B runs:
``FASTSERVE_BASE=/path/to/checkout/src``.

Usage::

    python bench/bench_server.py                  # 3 rounds x 5 s per cell, every server
    python bench/bench_server.py --quick          # 1 round x 2 s per cell
    python bench/bench_server.py --servers fastserve,werkzeug,waitress --rounds 5
    python bench/bench_server.py --scenarios ka256 --servers fastserve --rounds 1
    python bench/bench_server.py --profile fastserve --scenarios ka32   # py-spy profile

Writes the tables to stdout (and ``--markdown``), every measurement to
``--json``, and a bar chart to ``bench/bench_server.png`` when matplotlib is
installed. Never run by CI; results are not committed.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from fastserve._bench.apps import HELLO_SPEC
from fastserve._bench.command import Defaults
from fastserve._bench.command import main as bench_main
from fastserve._bench.drivers import choose_driver
from fastserve._bench.scenarios import parse_scenarios
from fastserve._bench.servers import SERVERS, RunningServer, Server, in_process
from fastserve.cli import check_app_or_exit

BENCH_DIR = Path(__file__).resolve().parent
BASE = os.environ.get("FASTSERVE_BASE", "")

#: an older checkout's fastserve, for A/B runs: FASTSERVE_BASE=/path/to/checkout/src
FASTSERVE_BASE = Server(
    "fastserve-base",
    "fastserve",
    in_process("fastserve"),
    {"PYTHONPATH": os.pathsep.join(p for p in (BASE, os.environ.get("PYTHONPATH", "")) if p)},
    about=f"fastserve from {BASE}",
)

DEFAULTS = Defaults(
    prog="bench_server.py",
    servers=(),  # every server that is installed
    scenarios="ka1,ka32,ka256,close32,post32,flask32",
    rounds=3,
    duration=5.0,
    warmup=1.0,
    baseline="werkzeug",
    chart=BENCH_DIR / "bench_server.png",
    description=__doc__.split("\n\n")[0],
    epilog="also: --quick (1 round x 2 s per cell, 0.5 s warm-up); --profile SERVER"
    " [--profile-native] [--scenarios KEY] [--duration S]: sample SERVER with py-spy"
    " under one scenario and print where the time goes",
    extra_servers=(FASTSERVE_BASE,) if BASE else (),
)


def summarize_folded(folded: str, top: int = 20) -> str:
    """Self and inclusive sample shares per function from py-spy's raw (folded) output."""
    self_counts: dict[str, int] = {}
    incl_counts: dict[str, int] = {}
    total = 0
    for line in folded.splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = [f for f in stack.split(";") if not f.startswith(("thread (", "process "))]
        if not frames:
            continue
        total += count
        self_counts[frames[-1]] = self_counts.get(frames[-1], 0) + count
        for frame in set(frames):
            incl_counts[frame] = incl_counts.get(frame, 0) + count
    if not total:
        return "no samples (is ptrace allowed? py-spy needs CAP_SYS_PTRACE)"
    lines = [f"{total} samples of busy threads", "", "self %  function"]
    for frame, n in sorted(self_counts.items(), key=lambda kv: -kv[1])[:top]:
        lines.append(f"{100 * n / total:6.1f}  {frame}")
    lines += ["", "incl %  function"]
    for frame, n in sorted(incl_counts.items(), key=lambda kv: -kv[1])[:top]:
        lines.append(f"{100 * n / total:6.1f}  {frame}")
    return "\n".join(lines)


def profile(argv: list[str]) -> int:
    """``--profile SERVER``: sample SERVER with py-spy under the first scenario; print a summary."""
    parser = argparse.ArgumentParser(prog="bench_server.py --profile")
    parser.add_argument("--profile", required=True, metavar="SERVER")
    parser.add_argument("--profile-native", action="store_true", help="py-spy --native")
    parser.add_argument("--scenarios", default="ka32")
    parser.add_argument("--duration", type=float, default=5.0)
    parser.add_argument("--driver", choices=["auto", "wrk", "python"], default="auto")
    args = parser.parse_args(argv)
    servers = {s.name: s for s in (*SERVERS, *DEFAULTS.extra_servers)}
    if args.profile not in servers:
        sys.exit(f"unknown server {args.profile!r} (known: {', '.join(servers)})")
    scenario = parse_scenarios(args.scenarios)[0]
    py_spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    if not Path(py_spy).exists():
        sys.exit("py-spy not found: pip install py-spy")
    driver, _ = choose_driver(args.driver, 1)
    out = Path(tempfile.mkdtemp(prefix="bench-prof-"))
    try:
        with RunningServer(servers[args.profile], HELLO_SPEC) as running:
            running.wait_ready()
            cmd = [
                py_spy, "record", "--pid", str(running.proc.pid), "--format", "raw",
                "--output", str(out / "folded.txt"), "--rate", "250", "--nonblocking",
                "--duration", str(max(1, round(args.duration))), "--function",
            ]  # fmt: skip
            if args.profile_native:
                cmd.append("--native")
            spy = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
            time.sleep(0.5)  # let py-spy attach before the load starts
            m = driver.measure(running.port, scenario, "/", args.duration)
            _, err = spy.communicate(timeout=args.duration + 60)
        folded = (out / "folded.txt").read_text() if (out / "folded.txt").exists() else ""
        head = f"{args.profile} / {scenario.title}: {m.rps:,.0f} req/s under py-spy"
        if spy.returncode != 0:
            head += f"\npy-spy exited {spy.returncode}: {err.decode(errors='replace')[-500:]}"
        print(head + "\n\n" + summarize_folded(folded))
        return 0
    finally:
        driver.close()
        shutil.rmtree(out, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if any(a == "--profile" or a.startswith("--profile=") for a in argv):
        return profile(argv)
    if "--quick" in argv:
        argv = ["--rounds", "1", "--duration", "2", "--warmup", "0.5"] + [
            a for a in argv if a != "--quick"
        ]
    return bench_main(argv, DEFAULTS, check_app=check_app_or_exit)


if __name__ == "__main__":
    sys.exit(main())
