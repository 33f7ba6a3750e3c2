"""The benchmark's decisions without sockets: the client-limit rule, ratios, wrk's output,
scenario keys, medians and the chart."""

from __future__ import annotations

import math
import sys
from pathlib import Path

import pytest

from fastserve._bench.drivers import Measurement, parse_wrk
from fastserve._bench.report import chart, median, render
from fastserve._bench.runner import Results
from fastserve._bench.scenarios import POST_SIZE, Scenario, parse_scenarios
from fastserve._bench.verdict import client_limit

# --- the client-limit rule -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("client_cpu", "threads", "server_cpu", "cpus", "bound"),
    [
        (0.95, 1, 0.5, 8, True),  # rule 1: its one thread flat out
        (0.85, 1, 0.5, 8, False),
        (1.0, 2, 0.5, 8, False),  # two threads, half used
        (1.85, 2, 0.5, 8, True),
        (1.0, 4, 0.5, 1, True),  # four threads on a one-CPU machine: one core is all
        (1.0, 2, 0.9, 2, True),  # rule 2: no idle core, and the client took more than the server
        (0.9, 2, 1.0, 2, False),  # no idle core, but the server took more: the server is the limit
        (1.0, 2, 0.5, 2, False),  # an idle core left
        (1.0, 2, None, 2, False),  # server CPU unknown: rule 2 cannot apply
    ],
)
def test_client_limit_rule(
    client_cpu: float, threads: int, server_cpu: float | None, cpus: int, bound: bool
) -> None:
    why = client_limit(client_cpu, threads, server_cpu, cpus)
    assert (why is not None) == bound
    if why:
        assert "client" in why


def _m(
    rps: float, client_cpu: float = 0.2, server_cpu: float | None = 0.9, p50_ms: float = 1.0,
    error_kinds: dict[str, int] | None = None,
) -> Measurement:  # fmt: skip
    return Measurement(rps, p50_ms, 5.0, int(rps), 0, client_cpu, 1, server_cpu, error_kinds or {})


KA, CLOSE = Scenario("ka", 32), Scenario("close", 32)


def _results(cells: dict[str, dict[str, list[Measurement]]]) -> Results:
    return Results(list(cells), [KA, CLOSE], cells)


def test_ratios_are_to_the_baseline_in_the_same_cell() -> None:
    table = render(
        _results(
            {
                "fastserve": {"ka32": [_m(10_000)], "close32": [_m(4_000)]},
                "werkzeug": {"ka32": [_m(1_000)], "close32": [_m(2_000)]},
            }
        ),
        "fastserve",
        cpus=8,
    )
    werkzeug = next(line for line in table.splitlines() if line.startswith("| werkzeug |"))
    assert "| 1,000 (0.10x) | 2,000 (0.50x) |" in werkzeug
    fastserve = next(line for line in table.splitlines() if line.startswith("| fastserve |"))
    assert "x)" not in fastserve  # no ratio of the baseline to itself
    assert "client-bound" not in table


def test_a_client_bound_cell_gets_no_ratio_and_a_note() -> None:
    table = render(
        _results(
            {
                "fastserve": {"ka32": [_m(10_000)], "close32": [_m(4_000)]},
                "bjoern": {"ka32": [_m(40_000, client_cpu=0.99)], "close32": [_m(8_000)]},
            }
        ),
        "fastserve",
        cpus=8,
    )
    bjoern = next(line for line in table.splitlines() if line.startswith("| bjoern |"))
    assert "| 40,000 (client-bound) | 8,000 (2.00x) |" in bjoern
    assert "4.00x" not in table
    assert (
        "- bjoern, keep-alive, 32 conns: client-bound - the client used 99% of its 1 core" in table
    )


def test_a_client_bound_baseline_takes_the_ratios_of_its_column() -> None:
    table = render(
        _results(
            {
                "fastserve": {"ka32": [_m(10_000, client_cpu=0.95)], "close32": [_m(4_000)]},
                "werkzeug": {"ka32": [_m(1_000)], "close32": [_m(1_000)]},
            }
        ),
        "fastserve",
        cpus=8,
    )
    werkzeug = next(line for line in table.splitlines() if line.startswith("| werkzeug |"))
    assert "| 1,000 (baseline client-bound) | 1,000 (0.25x) |" in werkzeug


def test_errors_failures_and_missing_servers_are_noted() -> None:
    results = _results(
        {
            "fastserve": {"ka32": [_m(10_000, error_kinds={"timeout": 3})], "close32": []},
            "waitress": {},
        }
    )
    results.cells["fastserve"]["ka32"][0].errors = 3
    results.failures[("waitress", "ka32")] = "exited before answering: boom"
    table = render(
        results, "fastserve", 8, header=["head line"], missing=[("granian", "pip install granian")]
    )
    assert table.startswith("head line\n")
    assert "10,000 [3 err]" in table
    assert "- fastserve, keep-alive, 32 conns: 3 errors (3 timeout)" in table
    assert "| waitress | failed | - |" in table
    assert "- waitress, keep-alive, 32 conns: failed: exited before answering: boom" in table
    assert "- granian: not installed (pip install granian)" in table


def test_connections_never_accepted_are_marked_and_noted() -> None:
    m = _m(5_000)
    m.unaccepted = 156
    table = render(
        _results({"fastserve": {"ka32": [_m(9_000)]}, "waitress": {"ka32": [m]}}), "fastserve", 8
    )
    assert "| 5,000 (0.56x) [156 unserved] |" in table
    assert (
        "- waitress, keep-alive, 32 conns: at least 156 of 32 connections were never accepted"
        in table
    )


def test_the_median_of_rounds() -> None:
    m = median([_m(100, server_cpu=0.5), _m(300, server_cpu=0.7), _m(200, server_cpu=0.6)])
    assert m.rps == 200 and m.server_cpu == 0.6 and m.requests == 600
    assert median([_m(100, server_cpu=None), _m(200)]).server_cpu is None


def test_the_chart_is_a_png(tmp_path: Path) -> None:
    path = tmp_path / "chart.png"
    results = _results(
        {"fastserve": {"ka32": [_m(10_000)]}, "bjoern": {"ka32": [_m(9_000, client_cpu=1.0)]}}
    )
    assert chart(results, path, "title", cpus=2)
    assert path.read_bytes().startswith(b"\x89PNG\r\n\x1a\n")


def test_no_chart_without_matplotlib(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import raises ImportError
    path = tmp_path / "chart.png"
    results = _results({"fastserve": {"ka32": [_m(10_000)]}})
    assert chart(results, path, "title", cpus=2) is False
    assert not path.exists()


# --- wrk's output -------------------------------------------------------------------------------

WRK_OUTPUT = """\
Running 2s test @ http://127.0.0.1:40000/
  1 threads and 32 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     1.20ms  300.00us   9.87ms   90.00%
    Req/Sec    26.10k     1.20k   28.00k    70.00%
  Latency Distribution
     50%    1.10ms
     75%    1.30ms
     90%    1.50ms
     99%  850.00us
  52000 requests in 2.00s, 6.20MB read
  Socket errors: connect 0, read 12, write 0, timeout 3
  Non-2xx or 3xx responses: 5
Requests/sec:  26000.50
Transfer/sec:      3.10MB
"""


def test_parse_wrk_reads_rate_latency_and_errors() -> None:
    rps, p50, p99, total, kinds = parse_wrk(WRK_OUTPUT)
    assert rps == 26000.50 and total == 52000
    assert p50 == pytest.approx(1.10) and p99 == pytest.approx(0.85)
    assert kinds == {"read": 12, "timeout": 3, "status": 5}


def test_parse_wrk_without_errors_and_with_seconds() -> None:
    text = WRK_OUTPUT.replace("     99%  850.00us", "     99%    1.50s")
    text = "\n".join(
        line for line in text.splitlines() if "errors" not in line and "Non-2xx" not in line
    )
    _, _, p99, _, kinds = parse_wrk(text)
    assert p99 == pytest.approx(1500.0) and kinds == {}


def test_parse_wrk_refuses_output_it_does_not_know() -> None:
    with pytest.raises(ValueError, match="wrk output"):
        parse_wrk("unable to connect to 127.0.0.1:1 Connection refused\n")


# --- scenario keys ------------------------------------------------------------------------------


def test_scenario_keys() -> None:
    ka, close, post, flask = parse_scenarios("ka1, close256,post32,flask32,ka1")
    assert (ka.title, ka.close, ka.body_size) == ("keep-alive, 1 conn", False, 0)
    assert (close.key, close.title, close.close) == (
        "close256",
        "Connection: close, 256 conns",
        True,
    )
    assert post.body_size == POST_SIZE
    assert flask.app_spec("hello:app") != "hello:app" and ka.app_spec("hello:app") == "hello:app"


@pytest.mark.parametrize("text", ["ka", "ka0", "keepalive32", "close-32", ""])
def test_bad_scenario_keys(text: str) -> None:
    with pytest.raises(ValueError, match="unknown scenario"):
        parse_scenarios(text)


def test_nan_latency_is_shown_as_a_dash() -> None:
    table = render(_results({"fastserve": {"ka32": [_m(0, p50_ms=math.nan)]}}), "fastserve", 8)
    assert "- / 5.00 ms" in table
