"""``fastserve.serving.run_simple(use_reloader=True)`` end to end on 127.0.0.1.

The app's module is edited while a client keeps requesting: the new code
answers, and no connection is refused meanwhile (the parent keeps the
listening socket; each child serves from the inherited descriptor).
"""

from __future__ import annotations

import http.client
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import ephemeral_port_reserve
import pytest
from reload_harness import CHECKOUT_EXCLUDE, write_module

pytestmark = [pytest.mark.live, pytest.mark.timeout(120)]

APP = """\
import json
import sys

import target

from fastserve.serving import run_simple


def app(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [str(target.VALUE).encode()]


port, options = int(sys.argv[1]), json.loads(sys.argv[2])
run_simple("127.0.0.1", port, app, use_reloader=True, reloader_interval=0.1, **options)
"""


def get(port: int) -> str:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request("GET", "/")
        return conn.getresponse().read().decode()
    finally:
        conn.close()


@pytest.mark.parametrize("reloader_type", ["stat", "watchdog", "watchfiles"])
def test_run_simple_reloads_without_refusing(tmp_path: Path, reloader_type: str) -> None:
    (tmp_path / "target.py").write_text("VALUE = 1\n")
    (tmp_path / "app.py").write_text(APP)
    port = ephemeral_port_reserve.reserve("127.0.0.1")
    options = {"reloader_type": reloader_type, "exclude_patterns": CHECKOUT_EXCLUDE}
    env = {k: v for k, v in os.environ.items() if not k.startswith("WERKZEUG_")}
    log = open(tmp_path / "log.txt", "wb")  # noqa: SIM115
    proc = subprocess.Popen(
        [sys.executable, "app.py", str(port), json.dumps(options)],
        cwd=tmp_path,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                assert get(port) == "1"
                break
            except ConnectionRefusedError:  # not bound yet
                assert time.monotonic() < deadline, (tmp_path / "log.txt").read_text()
                time.sleep(0.05)

        write_module(tmp_path / "target.py", "VALUE = 2\n")
        deadline = time.monotonic() + 30
        answers = []
        while not answers or answers[-1] != "2":
            assert time.monotonic() < deadline, (tmp_path / "log.txt").read_text()
            # A refused connection here would raise and fail the test.
            answers.append(get(port))
            time.sleep(0.01)
        assert set(answers) <= {"1", "2"}

        text = (tmp_path / "log.txt").read_text()
        assert f" * Detected change in {str(tmp_path / 'target.py')!r}, reloading" in text
        assert text.count(" * Restarting with ") == 2
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=10)
        log.close()
    assert proc.returncode == 0
