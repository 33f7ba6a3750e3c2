"""``fastserve bench``: the command runs servers on loopback, drives them, prints the table.

Each run is short (rounds of well under a second per cell) and bounded by a
subprocess timeout; the figures themselves are never asserted (the machine is
shared), only their shape: the rows, a ratio or the client-bound mark that
replaces it (with its note), the client's and the server's CPU, the progress
lines, the chart.
"""

from __future__ import annotations

import re
import shutil
import time
from pathlib import Path

import pytest
from live_command import LiveCommand, free_port, run_command

from fastserve._bench.command import CLI_DEFAULTS
from fastserve._bench.runner import Plan
from fastserve._bench.scenarios import parse_scenarios
from fastserve._bench.servers import SERVERS

pytestmark = pytest.mark.live

#: what the shortest runs may take, startup included, on a busy machine
BOUND = 90.0
RATE = r"[\d,]+"
MARK = r"\((?:\d+\.\d\dx|client-bound|baseline client-bound)\)"
#: a busy machine may make a request miss the 2 s timeout: counted, never hidden
NOTES = r"( \[[\d,]+ err\])?( \[[\d,]+ unserved\])?"


def bench(cwd: Path, *args: str, timeout: float = 150.0) -> tuple[str, str, float]:
    start = time.monotonic()
    result = run_command(["-m", "fastserve", "bench", *args], cwd=cwd, timeout=timeout)
    elapsed = time.monotonic() - start
    assert result.returncode == 0, (result.stdout, result.stderr)
    return result.stdout, result.stderr, elapsed


def row(table: str, name: str) -> list[str]:
    """The cells of the first table's row for server ``name``."""
    line = next(line for line in table.splitlines() if line.startswith(f"| {name} |"))
    return [cell.strip() for cell in line.strip("|").split("|")][1:]


def rate(cell: str) -> float:
    return float(cell.split()[0].replace(",", ""))


def check_table(out: str, servers: list[str], baseline: str, scenarios: int) -> None:
    """Every server has a row; each cell a rate, a ratio or its client-bound mark; CPU figures."""
    rates, latencies = out.split("Latency p50 / p99", 1)
    base = row(rates, baseline)
    assert len(base) == scenarios
    assert all(re.fullmatch(RATE + r"( \(client-bound\))?" + NOTES, c) for c in base), base
    for name in servers:
        if name == baseline:
            continue
        cells = row(rates, name)
        assert len(cells) == scenarios
        for cell, base_cell in zip(cells, base, strict=True):
            assert re.fullmatch(f"{RATE} {MARK}{NOTES}", cell), cell
            if m := re.search(r"\((\d+\.\d\d)x\)", cell):
                assert float(m.group(1)) == pytest.approx(
                    rate(cell) / rate(base_cell), rel=0.02, abs=0.01
                )
            if "client-bound" in cell and "baseline" not in cell:
                assert f"- {name}, " in out and "client-bound - " in out
        # the client's and the server's CPU, per cell
        for cell in row(latencies, name):
            assert re.fullmatch(r"[\d.-]+ / [\d.-]+ ms, \d+% / \d+%", cell), cell


def test_bundled_driver_fastserve_and_werkzeug(tmp_path: Path) -> None:
    chart = tmp_path / "bench.png"
    out, err, elapsed = bench(
        tmp_path, "--servers", "fastserve,werkzeug", "--rounds", "1", "--duration", "0.5",
        "--warmup", "0", "--driver", "python", "-c", "4", "--chart", str(chart),
    )  # fmt: skip
    assert elapsed < BOUND
    assert "driver: the bundled Python driver, " in out
    assert "ratio to fastserve in the same run" in out
    check_table(out, ["fastserve", "werkzeug"], "fastserve", scenarios=2)
    assert "| server | keep-alive, 4 conns | Connection: close, 4 conns |" in out
    # the progress lines, one per cell when stderr is not a terminal
    for n in range(1, 5):
        assert f"[{n}/4] round 1 " in err
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        assert "no chart: matplotlib is not installed" in err
        assert not chart.exists()
    else:
        assert chart.read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
        assert f"chart: {chart}" in err


@pytest.mark.skipif(shutil.which("wrk") is None, reason="wrk is not on the PATH")
def test_wrk_driver_fastserve_and_werkzeug(tmp_path: Path) -> None:
    out, _, elapsed = bench(
        tmp_path, "--servers", "werkzeug,fastserve", "--rounds", "1", "--duration", "1",
        "--warmup", "0", "--driver", "wrk", "--scenarios", "ka8", "--baseline", "werkzeug",
        "--no-chart",
    )  # fmt: skip
    assert elapsed < BOUND
    assert "driver: wrk " in out
    check_table(out, ["werkzeug", "fastserve"], "werkzeug", scenarios=1)
    assert not (tmp_path / "fastserve-bench.png").exists()


def test_the_defaults_on_a_fresh_install_finish_within_two_minutes(tmp_path: Path) -> None:
    # a fresh install has fastserve and werkzeug: the default cells, rounds and durations
    out, err, elapsed = bench(tmp_path, "--servers", "fastserve,werkzeug", timeout=180)
    assert elapsed < 120
    check_table(out, ["fastserve", "werkzeug"], "fastserve", scenarios=2)
    assert "2 interleaved rounds of 2 s per cell (+0.5 s warm-up)" in out
    assert "[8/8] round 2 " in err


def test_the_default_plan_with_every_default_server_stays_under_two_minutes() -> None:
    servers = [s for s in SERVERS if s.name in CLI_DEFAULTS.servers]
    assert len(servers) == len(CLI_DEFAULTS.servers)
    plan = Plan(
        servers, parse_scenarios(CLI_DEFAULTS.scenarios), CLI_DEFAULTS.rounds,
        CLI_DEFAULTS.duration, CLI_DEFAULTS.warmup, "hello:app",
    )  # fmt: skip
    assert plan.estimate(whole_seconds=True) < 110


APP = """
def app(environ, start_response):
    if environ["PATH_INFO"] == "/teapot":
        start_response("418 I'm a teapot", [("Content-Length", "0")])
        return [b""]
    start_response("200 OK", [("Content-Length", "2")])
    return [b"ok"]
"""


def test_the_users_app_is_what_the_servers_serve(tmp_path: Path) -> None:
    (tmp_path / "teapot.py").write_text(APP)
    out, _, _ = bench(
        tmp_path, "teapot:app", "--path", "/teapot", "--servers", "fastserve", "--rounds", "1",
        "--duration", "0.5", "--warmup", "0", "--driver", "python", "--scenarios", "ka2",
        "--no-chart",
    )  # fmt: skip
    assert "fastserve bench: 'teapot:app' at /teapot on 127.0.0.1" in out
    # every response was the app's 418, so every request is an error
    (cell,) = row(out, "fastserve")
    errors = re.search(r"\[([\d,]+) err\]", cell)
    assert errors is not None and int(errors.group(1).replace(",", "")) > 0
    assert "- fastserve, keep-alive, 2 conns: " in out and " status)" in out


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["nosuch:app"], "fastserve: error: no module named 'nosuch'"),
        (["--servers", "fastserve,nginx"], "fastserve: error: unknown server nginx (known: "),
        (["--scenarios", "ka32,slow9"], "fastserve: error: unknown scenario 'slow9'"),
        (["--rounds", "0"], "fastserve: error: argument --rounds: must be at least 1"),
        (["--path", "x"], "fastserve: error: --path must start with '/'"),
    ],
)
def test_mistakes_are_one_line(tmp_path: Path, args: list[str], message: str) -> None:
    result = run_command(["-m", "fastserve", "bench", *args], cwd=tmp_path, timeout=60)
    assert result.returncode == 2, (result.stdout, result.stderr)
    assert result.stderr.startswith(message), result.stderr
    assert result.stderr.count("\n") == 1 and result.stdout == ""


def test_help_mentions_the_bench_command(tmp_path: Path) -> None:
    result = run_command(["-m", "fastserve", "--help"], cwd=tmp_path)
    assert result.returncode == 0
    assert "fastserve bench [module:app]" in " ".join(result.stdout.split())
    result = run_command(["-m", "fastserve", "bench", "--help"], cwd=tmp_path)
    assert result.returncode == 0
    assert result.stdout.startswith("usage: fastserve bench ")
    for option in ("--servers", "--rounds", "--duration", "--connections", "--chart", "--driver"):
        assert option in result.stdout


def test_a_module_named_bench_is_still_served_as_bench_app(tmp_path: Path) -> None:
    (tmp_path / "bench.py").write_text(APP)
    port = free_port()
    with LiveCommand(
        ["-m", "fastserve", "bench:app", "--port", str(port)], cwd=tmp_path, port=port
    ) as server:
        server.wait_ready()
        assert server.get("/").body == b"ok"
