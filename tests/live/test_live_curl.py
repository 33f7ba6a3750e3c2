"""curl (a subprocess) against fastserve: reuse, uploads, 100-continue, HTTP/1.0, unix, TLS."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
from live_helpers import LiveServer

CURL = shutil.which("curl")

pytestmark = [
    pytest.mark.live,
    pytest.mark.timeout(120),
    pytest.mark.skipif(CURL is None, reason="curl is not installed (apt-get install curl)"),
]


@pytest.fixture(scope="module")
def server(start_server: Callable[..., LiveServer]) -> LiveServer:
    return start_server("echo")


def curl(*args: str) -> subprocess.CompletedProcess[str]:
    """Run curl; stdout/stderr decoded without newline translation (CRLFs stay)."""
    assert CURL is not None
    proc = subprocess.run(
        [CURL, "--silent", "--show-error", "--max-time", "20", *args],
        capture_output=True,
        timeout=60,
    )
    stdout, stderr = proc.stdout.decode("utf-8"), proc.stderr.decode("utf-8", "replace")
    assert proc.returncode == 0, stderr
    return subprocess.CompletedProcess(proc.args, proc.returncode, stdout, stderr)


def test_get_with_headers(server: LiveServer) -> None:
    out = curl("--include", f"{server.url}/curl?q=1").stdout
    head, _, body = out.partition("\r\n\r\n")
    assert head.startswith("HTTP/1.1 200 OK\r\n")
    assert "Server: fastserve/" in head
    assert json.loads(body)["query"] == "q=1"


def test_two_urls_reuse_the_connection(server: LiveServer) -> None:
    proc = curl("--verbose", f"{server.url}/one", f"{server.url}/two")
    assert "Re-using existing connection" in proc.stderr
    first, second = (json.loads(line) for line in proc.stdout.replace("}{", "}\n{").splitlines())
    assert (first["path"], second["path"]) == ("/one", "/two")
    assert first["remote_port"] == second["remote_port"]


def test_post_file(server: LiveServer, tmp_path: Path) -> None:
    payload = os.urandom(200_000)
    (tmp_path / "payload").write_bytes(payload)
    data = json.loads(
        curl("--data-binary", f"@{tmp_path / 'payload'}", f"{server.url}/file").stdout
    )
    assert data["method"] == "POST"
    assert data["body_sha256"] == hashlib.sha256(payload).hexdigest()


def test_chunked_upload_with_expect_continue(server: LiveServer, tmp_path: Path) -> None:
    payload = os.urandom(100_000)
    (tmp_path / "payload").write_bytes(payload)
    proc = curl(
        "--verbose",
        "-H", "Transfer-Encoding: chunked",
        "-H", "Expect: 100-continue",
        "--data-binary", f"@{tmp_path / 'payload'}",
        f"{server.url}/chunked",
    )  # fmt: skip
    assert "< HTTP/1.1 100 Continue" in proc.stderr
    data = json.loads(proc.stdout)
    assert data["input_terminated"] is True
    assert data["body_sha256"] == hashlib.sha256(payload).hexdigest()


def test_http10_stream(server: LiveServer) -> None:
    proc = curl("--http1.0", "--include", f"{server.url}/stream")
    head, _, body = proc.stdout.partition("\r\n\r\n")
    assert "Connection: close" in head
    assert "Transfer-Encoding" not in head
    assert body == "0\n1\n2\n3\n4\n"


def test_head_request(server: LiveServer) -> None:
    proc = curl("--head", f"{server.url}/head")
    assert proc.stdout.startswith("HTTP/1.1 200 OK\r\n")
    assert "Content-Length: " in proc.stdout


def test_unix_socket(start_server: Callable[..., LiveServer]) -> None:
    server = start_server("echo", hostname="unix")
    assert server.unix_path is not None
    data = json.loads(curl("--unix-socket", server.unix_path, "http://localhost/via-unix").stdout)
    assert data["path"] == "/via-unix"
    assert data["headers"]["HTTP_HOST"] == "localhost"


def test_https_adhoc(start_server: Callable[..., LiveServer]) -> None:
    server = start_server("echo", ssl_context="adhoc")
    data = json.loads(curl("--insecure", f"{server.url}/secure").stdout)
    assert data["scheme"] == "https"
