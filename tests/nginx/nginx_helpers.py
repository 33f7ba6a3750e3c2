"""A real nginx in front of fastserve: the processes, a recording pipe, a framer.

- :class:`Nginx` runs Debian's nginx unprivileged from a generated configuration in a
  scratch directory (pid file, logs and every temp path inside it, ``daemon off``,
  no master process, listening on a reserved 127.0.0.1 port). Its ``location`` is
  the one ``docs/nginx.md`` publishes, read from that file (:func:`documented_config`),
  so the documented configuration is the tested one. The access log is JSON, one
  object per request, with what nginx decided: status, the upstream it used (empty
  when nginx answered itself) and the request body it read.
- :class:`Fastserve` runs the ``fastserve`` command on ``proxied_app:app`` over TCP
  or a unix socket and reads back the requests the app recorded.
- :class:`Recorder` is a transparent byte pipe between nginx and fastserve that keeps
  every byte nginx wrote upstream, one stream per connection.
- :class:`Processes` starts those in one scratch directory and stops them with an
  ``ExitStack``.
- :func:`frame` cuts such a stream into messages with a parser implementation.

Kept out of ``conftest.py`` so that test modules import it by a unique name.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from contextlib import ExitStack
from pathlib import Path
from types import ModuleType
from typing import Any

import ephemeral_port_reserve

HERE = Path(__file__).parent
DOCS = HERE.parents[1] / "docs" / "nginx.md"
READY_TIMEOUT = 30.0

#: One JSON object per request; ``upstream`` is empty when nginx answered itself.
LOG_FORMAT = (
    '\'{"request":"$request","uri":"$request_uri","status":"$status",'
    '"upstream":"$upstream_addr","upstream_status":"$upstream_status",'
    '"body":"$request_body"}\''
)


def find_nginx() -> str | None:
    """The nginx binary: on ``PATH`` or in the sbin directories (not on a user's ``PATH``)."""
    path = os.pathsep.join([os.environ.get("PATH", ""), "/usr/sbin", "/sbin", "/usr/local/sbin"])
    return shutil.which("nginx", path=path)


def _directives(config: str) -> dict[tuple[str, ...], list[str]]:
    """The directives of an nginx configuration, keyed by the blocks they sit in.

    ``{("upstream fastserve",): ["server 127.0.0.1:8000;", ...], ...}``; comments dropped.
    """
    found: dict[tuple[str, ...], list[str]] = {}
    blocks: list[str] = []
    for raw in config.splitlines():
        line = raw.split("#", 1)[0].strip()
        if line.endswith("{"):
            blocks.append(line[:-1].strip())
        elif line == "}":
            blocks.pop()
        elif line:
            found.setdefault(tuple(blocks), []).append(line)
    return found


def documented_config() -> dict[str, list[str]]:
    """The directives of ``docs/nginx.md``'s configuration that the tests reuse verbatim.

    ``upstream``: those of ``upstream fastserve`` other than ``server``; ``server``:
    those of ``server`` other than ``listen`` and ``server_name``; ``location``: those
    of ``location /``.
    """
    config = re.search(r"```nginx\n(.*?)```", DOCS.read_text(), re.S)
    assert config, f"no nginx block in {DOCS}"
    directives = _directives(config.group(1))
    return {
        "upstream": [d for d in directives[("upstream fastserve",)] if not d.startswith("server ")],
        "server": [
            d for d in directives[("server",)] if not d.startswith(("listen ", "server_name "))
        ],
        "location": directives[("server", "location /")],
    }


class Nginx:
    """nginx proxying to ``servers`` (``"127.0.0.1:8000"``, ``"unix:/path"``) as ``fastserve``.

    ``location /`` is the documented one; ``location /unbuffered/`` adds
    ``proxy_request_buffering off`` (nginx then forwards bodies chunked).
    """

    def __init__(self, binary: str, workdir: Path, servers: list[str]) -> None:
        self.workdir = workdir
        workdir.mkdir(parents=True, exist_ok=True)
        self.port = ephemeral_port_reserve.reserve("127.0.0.1")
        self.access_log_path = workdir / "access.log"
        self.error_log_path = workdir / "error.log"
        conf = workdir / "nginx.conf"
        built = subprocess.run([binary, "-V"], capture_output=True, text=True, timeout=30).stderr
        conf.write_text(self._config(built, servers))
        command = [binary, "-p", str(workdir), "-c", str(conf)]
        version = re.search(r"nginx/(\d+)\.(\d+)\.(\d+)", built)
        if version and tuple(map(int, version.groups())) >= (1, 19, 5):  # -e: since 1.19.5
            # The error log before the configuration is read (else a path under /var/log).
            command += ["-e", str(self.error_log_path)]
        self._output = open(workdir / "output.log", "wb")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=self._output,
            stderr=subprocess.STDOUT,
        )
        try:
            self._wait_ready()
        except BaseException:
            self.stop()
            raise

    def _config(self, built: str, servers: list[str]) -> str:
        """The configuration; ``built`` is ``nginx -V``'s output (the modules compiled in)."""
        documented = documented_config()
        w = self.workdir
        # Every temp path nginx knows must be writable, or it refuses to start.
        temp_paths = [f"client_body_temp_path {w}/client_body;", f"proxy_temp_path {w}/proxy;"]
        for module in ("fastcgi", "uwsgi", "scgi"):
            if f"--without-http_{module}_module" not in built:
                temp_paths.append(f"{module}_temp_path {w}/{module};")
        location = "\n            ".join(documented["location"])
        return f"""\
daemon off;
master_process off;
worker_processes 1;
pid {w}/nginx.pid;
error_log {self.error_log_path} info;
events {{ worker_connections 256; }}
http {{
    log_format probe escape=json {LOG_FORMAT};
    access_log {self.access_log_path} probe;
    {" ".join(temp_paths)}
    # Bodies in one memory buffer, so $request_body logs what nginx read.
    client_body_buffer_size 1m;
    client_body_in_single_buffer on;
    upstream fastserve {{
        {" ".join(f"server {s};" for s in servers)}
        {" ".join(documented["upstream"])}
    }}
    server {{
        listen 127.0.0.1:{self.port};
        {" ".join(documented["server"])}
        location / {{
            {location}
        }}
        location /unbuffered/ {{
            {location}
            proxy_request_buffering off;
        }}
    }}
}}
"""

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + READY_TIMEOUT
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"nginx exited with {self.proc.returncode}:\n{self.logs()}")
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=2).close()
                return
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"nginx not listening after {READY_TIMEOUT}s:\n{self.logs()}")
            time.sleep(0.05)

    def logs(self) -> str:
        """nginx's output and error log, for failure messages."""
        parts = []
        for path in (self.workdir / "output.log", self.error_log_path):
            if path.exists():
                parts.append(path.read_text(errors="replace"))
        return "\n".join(parts)

    def access_log(self) -> list[dict[str, str]]:
        """Every request nginx finished so far, oldest first."""
        if not self.access_log_path.exists():
            return []
        return [json.loads(line) for line in self.access_log_path.read_text().splitlines()]

    def connect(self, timeout: float = 10) -> socket.socket:
        return socket.create_connection(("127.0.0.1", self.port), timeout=timeout)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        self._output.close()


class Fastserve:
    """``fastserve proxied_app:app`` on a reserved 127.0.0.1 port, or on ``unix`` (a path)."""

    def __init__(self, workdir: Path, impl: str, name: str, unix: Path | None = None) -> None:
        self.name, self.impl = name, impl
        self.calls_path = workdir / f"{name}-calls.jsonl"
        self.calls_path.touch()
        self.unix = unix
        if unix is None:
            self.port = ephemeral_port_reserve.reserve("127.0.0.1")
            where = ["--host", "127.0.0.1", "--port", str(self.port)]
            self.upstream = f"127.0.0.1:{self.port}"
        else:
            where = ["--unix", str(unix)]
            self.upstream = f"unix:{unix}"
        env = dict(
            os.environ, PYTHONUNBUFFERED="1", PROXIED_APP_NAME=name,
            PROXIED_APP_CALLS=str(self.calls_path),
        )  # fmt: skip
        if impl == "py":
            env["FASTSERVE_NO_EXTENSIONS"] = "1"
        else:
            env.pop("FASTSERVE_NO_EXTENSIONS", None)
        self.log_path = workdir / f"{name}.log"
        self._log = open(self.log_path, "wb")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "fastserve", "proxied_app:app", *where],
            cwd=HERE,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        try:
            self._wait_ready()
        except BaseException:
            self.stop()
            raise

    def connect(self, timeout: float = 10) -> socket.socket:
        """A socket connected to fastserve itself (not through nginx)."""
        if self.unix is None:
            return socket.create_connection(("127.0.0.1", self.port), timeout=timeout)
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(timeout)
        try:
            sock.connect(str(self.unix))
        except BaseException:
            sock.close()
            raise
        return sock

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + READY_TIMEOUT
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"fastserve exited with {self.proc.returncode}:\n{self.log()}")
            try:
                with self.connect(timeout=2) as sock:
                    sock.sendall(b"GET /ensure HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                    answer = recv_until_closed(sock)
                if answer.startswith(b"HTTP/1.1 200 "):
                    break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"fastserve not ready after {READY_TIMEOUT}s:\n{self.log()}")
            time.sleep(0.05)
        loaded = answer.rpartition(b"\r\n\r\n")[2].decode()
        assert loaded == self.impl, f"fastserve loaded the {loaded!r} parser, not {self.impl!r}"

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def calls(self) -> list[dict[str, Any]]:
        """The requests the app has seen, oldest first."""
        return [json.loads(line) for line in self.calls_path.read_text().splitlines()]

    def terminate(self) -> None:
        """SIGTERM: fastserve's graceful stop (requests in flight finish)."""
        self.proc.send_signal(signal.SIGTERM)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        self._log.close()


class Recorder:
    """A TCP listener on 127.0.0.1 that pipes every connection to ``upstream`` unchanged.

    ``streams()`` returns, per accepted connection, every byte that came in (what nginx
    wrote upstream). Responses flow back untouched and are not kept.
    """

    def __init__(self, connect_upstream: Any) -> None:
        self._connect_upstream = connect_upstream
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self.upstream = f"127.0.0.1:{self.port}"  # an nginx server address
        self._lock = threading.Lock()
        self._streams: list[bytearray] = []
        self._sockets: list[socket.socket] = []
        self._threads: list[threading.Thread] = []
        self._start(self._accept_loop)

    def _start(self, target: Any, *args: Any) -> None:
        thread = threading.Thread(target=target, args=args, daemon=True)
        self._threads.append(thread)
        thread.start()

    def _accept_loop(self) -> None:
        while True:
            try:
                downstream, _ = self._listener.accept()
            except OSError:  # closed
                return
            upstream = self._connect_upstream()
            record = bytearray()
            with self._lock:
                self._streams.append(record)
                self._sockets += [downstream, upstream]
            self._start(self._pump, downstream, upstream, record)
            self._start(self._pump, upstream, downstream, None)

    def _pump(self, source: socket.socket, sink: socket.socket, record: bytearray | None) -> None:
        try:
            while data := source.recv(65536):
                if record is not None:
                    with self._lock:
                        record += data
                sink.sendall(data)
            sink.shutdown(socket.SHUT_WR)
        except OSError:  # the other side reset or the recorder closed
            for sock in (source, sink):
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def streams(self) -> list[bytes]:
        with self._lock:
            return [bytes(stream) for stream in self._streams]

    def close(self) -> None:
        try:
            self._listener.shutdown(socket.SHUT_RDWR)  # wakes the blocked accept() (Linux)
        except OSError:
            pass
        self._listener.close()
        with self._lock:
            sockets = list(self._sockets)
        for sock in sockets:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        for thread in self._threads:
            thread.join(10)
        for sock in sockets:
            sock.close()


class Processes:
    """Starts fastserve instances, recorders and nginx in a short scratch directory."""

    def __init__(self, stack: ExitStack, nginx_binary: str, impl: str) -> None:
        # Short: unix socket paths live here (at most 107 bytes).
        self.workdir = Path(tempfile.mkdtemp(prefix="fs-ngx-"))
        stack.callback(shutil.rmtree, self.workdir, ignore_errors=True)
        self._stack, self._binary, self.impl = stack, nginx_binary, impl
        self._count = 0

    def _next(self, name: str) -> str:
        self._count += 1
        return f"{name}{self._count}"

    def fastserve(self, unix: bool = False) -> Fastserve:
        name = self._next("fs")
        server = Fastserve(
            self.workdir, self.impl, name, unix=self.workdir / f"{name}.sock" if unix else None
        )
        self._stack.callback(server.stop)
        return server

    def recorder(self, upstream: Fastserve) -> Recorder:
        recorder = Recorder(upstream.connect)
        self._stack.callback(recorder.close)
        return recorder

    def nginx(self, *upstreams: Any) -> Nginx:
        """nginx with a ``server`` line per upstream (:class:`Fastserve`, :class:`Recorder`)."""
        workdir = self.workdir / self._next("nginx")
        proxy = Nginx(self._binary, workdir, [upstream.upstream for upstream in upstreams])
        self._stack.callback(proxy.stop)
        return proxy


def frame(impl: ModuleType, stream: bytes) -> list[tuple[str, str, bytes]]:
    """Cut one connection's byte stream into ``(method, request-target, body)`` messages.

    Uses the parser module ``impl`` exactly as a connection does: a head, then a body
    framed by Content-Length or decoded by the chunked decoder (RFC 9112 §6.3). Every
    byte must belong to a message: a partial message at the end is an error.
    """
    messages = []
    pos = 0
    while pos < len(stream):
        parser = impl.RequestParser()
        head = parser.parse(stream[pos:])
        assert head, f"incomplete head at byte {pos}: {stream[pos : pos + 200]!r}"
        pos += head
        if parser.chunked:
            decoder = impl.ChunkedDecoder()
            body, used = decoder.decode(stream[pos:])
            assert decoder.done, f"incomplete chunked body at byte {pos}"
            pos += used
        else:
            body = stream[pos : pos + parser.content_length]
            assert len(body) == parser.content_length, f"short body at byte {pos}"
            pos += parser.content_length
        messages.append((parser.method, parser.environ["REQUEST_URI"], body))
    return messages


def wait_for(condition: Any, what: str, timeout: float = 20) -> None:
    """Poll ``condition()`` until it is true; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.01)


def recv_until_closed(sock: socket.socket, limit: int = 16 * 1024 * 1024) -> bytes:
    """Everything the peer sends until it closes (a reset ends it too), bounded by ``limit``."""
    parts, size = [], 0
    while size < limit:
        try:
            chunk = sock.recv(65536)
        except ConnectionResetError:
            break
        if not chunk:
            break
        parts.append(chunk)
        size += len(chunk)
    return b"".join(parts)
