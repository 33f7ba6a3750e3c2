"""Real HTTP clients behind one call, so a live test is named after a behaviour and takes
the client as a parameter.

``exchange(client, server, [Request(...), ...])`` sends the requests one after another
through one client object - an ``http.client`` connection, a ``requests`` session, a
``urllib3`` pool of size one, or one ``curl`` command line (``--next`` between transfers) -
so each client reuses its connection when the server lets it, as that client does in real
use. Each answer is a :class:`Response`; ``new_connection`` says whether the client opened
a connection for it, when the client tells (``requests`` does not: ``None``).

``client_params(...)`` builds the ``(transport, client)`` parameters, ids ``tcp-curl``,
``tls-requests``..., for the transports each client can use (``requests`` and ``urllib3``
have no unix-socket support); the ``curl`` ones are skipped when curl is not installed.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
import warnings
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import requests
import urllib3
from live_helpers import LiveServer

CURL = shutil.which("curl")
TIMEOUT = 30

#: ``start_server`` options of each transport
TRANSPORTS: dict[str, dict[str, Any]] = {
    "tcp": {},
    "tls": {"ssl_context": "adhoc"},
    "unix": {"hostname": "unix"},
}
CLIENTS: dict[str, frozenset[str]] = {
    "http.client": frozenset({"tcp", "tls", "unix"}),
    "requests": frozenset({"tcp", "tls"}),
    "urllib3": frozenset({"tcp", "tls"}),
    "curl": frozenset({"tcp", "tls", "unix"}),
}


@dataclass(frozen=True)
class Request:
    method: str = "GET"
    path: str = "/"
    body: bytes | None = None
    #: send ``body`` with ``Transfer-Encoding: chunked`` (in several pieces)
    chunked: bool = False
    headers: Mapping[str, str] = field(default_factory=dict)


@dataclass
class Response:
    status: int
    version: str  # "HTTP/1.1" or "HTTP/1.0", as the status line said
    headers: dict[str, str]  # lower-case names; repeated fields joined with ", "
    body: bytes
    new_connection: bool | None

    def json(self) -> Any:
        return json.loads(self.body)


def client_params(
    transports: Sequence[str] = ("tcp",), clients: Sequence[str] = tuple(CLIENTS)
) -> list[Any]:
    """``pytest.param(transport, client)`` for each pair the client supports."""
    params = []
    for transport in transports:
        for client in clients:
            if transport not in CLIENTS[client]:
                continue
            marks = []
            if client == "curl":
                marks.append(pytest.mark.skipif(CURL is None, reason="curl is not installed"))
            params.append(pytest.param(transport, client, id=f"{transport}-{client}", marks=marks))
    return params


def exchange(client: str, server: LiveServer, sequence: Sequence[Request]) -> list[Response]:
    """Send ``sequence`` through one ``client``; the responses in order."""
    return _CLIENTS[client](server, sequence)


def _pieces(body: bytes) -> Iterator[bytes]:
    """A body in three uneven pieces (a chunked upload's chunks)."""
    cut = [0, len(body) // 7, len(body) // 2, len(body)]
    for start, end in zip(cut, cut[1:], strict=False):
        if end > start:
            yield body[start:end]


def _lower(items: Any) -> dict[str, str]:
    headers: dict[str, str] = {}
    for name, value in items:
        name = name.lower()
        headers[name] = f"{headers[name]}, {value}" if name in headers else value
    return headers


def _version(number: int) -> str:
    return {10: "HTTP/1.0", 11: "HTTP/1.1"}[number]


def _http_client(server: LiveServer, sequence: Sequence[Request]) -> list[Response]:
    conn = server.connect(timeout=TIMEOUT)
    responses = []
    try:
        for r in sequence:
            fresh = conn.sock is None  # http.client connects (again) when it has no socket
            body: Any = _pieces(r.body or b"") if r.chunked else r.body
            conn.request(
                r.method, r.path, body=body, headers=dict(r.headers), encode_chunked=r.chunked
            )
            response = conn.getresponse()
            data = response.read()
            responses.append(
                Response(
                    response.status,
                    _version(response.version),
                    _lower(response.headers.items()),
                    data,
                    fresh,
                )
            )
    finally:
        conn.close()
    return responses


def _requests(server: LiveServer, sequence: Sequence[Request]) -> list[Response]:
    responses = []
    with warnings.catch_warnings(), requests.Session() as session:
        warnings.simplefilter("ignore", urllib3.exceptions.InsecureRequestWarning)
        for r in sequence:
            data: Any = _pieces(r.body or b"") if r.chunked else r.body
            # verify per request: REQUESTS_CA_BUNDLE in the environment overrides session.verify
            response = session.request(
                r.method,
                server.url + r.path,
                data=data,
                headers=dict(r.headers),
                verify=False,
                timeout=TIMEOUT,
            )
            responses.append(
                Response(
                    response.status_code,
                    _version(response.raw.version),
                    _lower(response.headers.items()),
                    response.content,
                    None,
                )
            )
    return responses


def _urllib3(server: LiveServer, sequence: Sequence[Request]) -> list[Response]:
    responses = []
    pool: urllib3.HTTPConnectionPool
    if server.tls:
        pool = urllib3.HTTPSConnectionPool(
            server.host, server.port, maxsize=1, timeout=TIMEOUT, retries=False,
            cert_reqs="CERT_NONE", assert_hostname=False,
        )  # fmt: skip
    else:
        pool = urllib3.HTTPConnectionPool(
            server.host, server.port, maxsize=1, timeout=TIMEOUT, retries=False
        )
    with warnings.catch_warnings(), pool:
        warnings.simplefilter("ignore", urllib3.exceptions.InsecureRequestWarning)
        for r in sequence:
            before = pool.num_connections
            body: Any = _pieces(r.body or b"") if r.chunked else r.body
            response = pool.urlopen(
                r.method, r.path, body=body, headers=dict(r.headers), chunked=r.chunked
            )
            responses.append(
                Response(
                    response.status,
                    _version(response.version),
                    _lower(response.headers.items()),
                    response.data,
                    pool.num_connections > before,
                )
            )
        assert pool.num_requests == len(sequence)
    return responses


def _curl(server: LiveServer, sequence: Sequence[Request]) -> list[Response]:
    """One curl command line, ``--next`` between the transfers (they share its connection
    cache); each transfer writes its head and body to files, ``--write-out`` says whether
    it connected."""
    assert CURL is not None, "curl is not installed"
    with tempfile.TemporaryDirectory(prefix="fs-curl-") as tmp:
        work = Path(tmp)
        args = [CURL, "--silent", "--show-error", "--max-time", str(TIMEOUT)]
        for i, r in enumerate(sequence):
            if i:
                args.append("--next")
            if server.unix_path:
                args += ["--unix-socket", server.unix_path]
            if server.tls:
                args.append("--insecure")
            if r.method == "HEAD":
                raise NotImplementedError("curl -X HEAD waits for a body: use another client")
            args += ["--request", r.method]
            for name, value in r.headers.items():
                args += ["--header", f"{name}: {value}"]
            if r.body is not None:
                (work / f"body-{i}").write_bytes(r.body)
                args += ["--data-binary", f"@{work / f'body-{i}'}"]
                if r.chunked:
                    args += ["--header", "Transfer-Encoding: chunked"]
            base = "http://localhost" if server.unix_path else server.url
            args += [
                "--dump-header", str(work / f"head-{i}"),
                "--output", str(work / f"out-{i}"),
                "--write-out", "%{num_connects}\\n",
                base + r.path,
            ]  # fmt: skip
        proc = subprocess.run(args, capture_output=True, timeout=TIMEOUT * 2)
        assert proc.returncode == 0, proc.stderr.decode(errors="replace")
        connects = proc.stdout.decode().split()
        responses = []
        for i in range(len(sequence)):
            # a 100 Continue comes first in the header file: the last block is the response
            blocks = (work / f"head-{i}").read_bytes().strip(b"\r\n").split(b"\r\n\r\n")
            status_line, *lines = blocks[-1].decode("latin-1").split("\r\n")
            version, status = status_line.split(" ")[:2]
            headers = _lower((n, v.strip()) for n, _, v in (x.partition(":") for x in lines))
            body = (work / f"out-{i}").read_bytes() if (work / f"out-{i}").exists() else b""
            responses.append(Response(int(status), version, headers, body, connects[i] != "0"))
    return responses


_CLIENTS = {
    "http.client": _http_client,
    "requests": _requests,
    "urllib3": _urllib3,
    "curl": _curl,
}
