"""The access line's fast path (``fastserve._logging.log_access``) emits the
record werkzeug's own ``WSGIRequestHandler.log_request`` emits: same logger,
level, ``msg`` template, ``args``, message text and caller.

The reference is always werkzeug's function, run on the same handler
instance with the same clock; every test runs for both parser
implementations (the autouse ``server_parser`` fixture), which matters for the
tests that go through a connection (``conn_driver``, no listener).
"""

from __future__ import annotations

import logging
import re
import time
from typing import Any
from unittest import mock

import pytest
from conn_driver import split_responses
from hypothesis import assume, given
from hypothesis import strategies as st
from server_helpers import LogCapture, hello_app
from werkzeug import serving as wz_serving
from werkzeug.urls import uri_to_iri

from fastserve import _logging
from fastserve.connection import WSGIRequestHandler

#: a fixed clock (a fraction of a second in, as time.time() returns)
FROZEN = 1_764_100_000.625

PLAIN_PATHS = [
    "/",
    "/index.html",
    "/a/b/c?x=1&y=2",
    "/a?b?c",
    "/a??b",
    "/;params",
    "/~user/@!$&'()*+,;=:",
    "/A-Z_a.z~",
    '/quote"x',
    "/a//b",
    "/a?//b",
    "/brackets[]{}|^`<>",
]

OTHER_PATHS = [
    "",  # werkzeug's uri_to_iri("") -> ""; not origin form: slow path
    "*",
    "/a?",
    "/a?#",
    "/a?b?",
    "/a#frag",
    "//double",
    "/a%20b",
    "/p%C3%A5th?q=%C3%A8ry%DF",
    "/%e2%98%83",
    "/%0A%0d%7F%C2%85",
    "/x%",
    "/%zz",
    "/%25",
    "http://Example.COM:8080/x?y",
    "http://xn--n3h.net/",
    "/tab\there",
    "/nl\nx",
    "/cr\rx",
    "/nul\x00x",
    "/del\x7f",
    "/c1\x85\x9f",
    "/back\\slash",
    "/snow\u2603",
    "/latin\xe9",
    "/sp ace",
    " /lead",
]

METHODS = ["GET", "HEAD", "POST", "DELETE", "M-SEARCH", "X\x01Y", "G\\T", "A B"]
VERSIONS = ["HTTP/1.1", "HTTP/1.0"]
# every colour class: 1xx, 200, 201/204/206, 304, other 3xx, 404, other 4xx, 5xx, other
CODES: list[int | str] = [100, 101, 200, "200", 201, 204, 206, 301, 302, 304, 307]
CODES += [400, 401, 404, "404", 405, 414, 431, 500, 502, 503, 999, "-", "abc"]
ADDRESSES = ["127.0.0.1", "::1", "fe80::1%eth0", "fe80::1%%25x", "10.0.0.1"]

RECORD_FIELDS = ("name", "levelno", "msg", "args", "pathname", "module", "funcName", "lineno")


@pytest.fixture
def frozen_clock(monkeypatch: pytest.MonkeyPatch) -> float:
    """``time.time()`` fixed (both date formatters read it), the date cache empty."""
    monkeypatch.setattr(time, "time", lambda: FROZEN)
    monkeypatch.setattr(_logging, "_date_cache", (-1, ""))
    return FROZEN


def make_handler(
    address: str | None = "127.0.0.1",
    command: str = "GET",
    path: str = "/",
    version: str = "HTTP/1.1",
    cls: type = WSGIRequestHandler,
) -> Any:
    """A handler bound to one request, as the connection binds it."""
    handler = cls.__new__(cls)
    handler.client_address = ("127.0.0.1", 5000)
    handler.environ = None if address is None else {"REMOTE_ADDR": address}
    handler.command = command
    handler.path = path
    handler.request_version = version
    handler._fs_fast_log = _logging.fast_access_log(cls)
    return handler


def record_dict(record: logging.LogRecord) -> dict[str, Any]:
    out = {field: getattr(record, field) for field in RECORD_FIELDS}
    out["message"] = record.getMessage()
    return out


def both(logs: LogCapture, handler: Any, code: int | str) -> tuple[dict[str, Any], dict[str, Any]]:
    """(werkzeug's record, ours) for ``handler.log_request(code)``."""
    start = len(logs.records)
    wz_serving.WSGIRequestHandler.log_request(handler, code)
    handler.log_request(code)
    records = logs.records[start:]
    assert len(records) == 2, [r.getMessage() for r in records]
    return record_dict(records[0]), record_dict(records[1])


@pytest.mark.parametrize("path", PLAIN_PATHS + OTHER_PATHS)
def test_record_equals_werkzeugs(path: str, logs: LogCapture, frozen_clock: float) -> None:
    for method in METHODS:
        for code in CODES:
            for address in ADDRESSES[:2] if code not in (200, 404) else ADDRESSES:
                handler = make_handler(address, method, path)
                theirs, ours = both(logs, handler, code)
                assert ours == theirs


@pytest.mark.parametrize("path", PLAIN_PATHS)
def test_plain_paths_take_the_fast_path(path: str, logs: LogCapture, frozen_clock: float) -> None:
    for method in ["GET", "M-SEARCH"]:
        for version in VERSIONS:
            assert _logging.log_access(make_handler("::1", method, path, version), 200, "-")
    assert len(logs.records) == 4


@pytest.mark.parametrize("path", OTHER_PATHS)
def test_other_paths_take_werkzeugs_path(path: str, logs: LogCapture) -> None:
    assert not _logging.log_access(make_handler(path=path), 200, "-")
    assert logs.records == []


@pytest.mark.parametrize("method", ["X\x01Y", "G\\T", "A B", ""])
def test_unusual_methods_take_werkzeugs_path(method: str, logs: LogCapture) -> None:
    assert not _logging.log_access(make_handler(command=method), 200, "-")
    assert logs.records == []


def test_every_colour_class(logs: LogCapture, frozen_clock: float) -> None:
    expected = {
        100: "\x1b[1mGET / HTTP/1.1\x1b[0m",
        200: "GET / HTTP/1.1",
        201: "\x1b[35m\x1b[1mGET / HTTP/1.1\x1b[0m",
        304: "\x1b[36mGET / HTTP/1.1\x1b[0m",
        302: "\x1b[32mGET / HTTP/1.1\x1b[0m",
        404: "\x1b[33mGET / HTTP/1.1\x1b[0m",
        400: "\x1b[31m\x1b[1mGET / HTTP/1.1\x1b[0m",
        500: "\x1b[35m\x1b[1mGET / HTTP/1.1\x1b[0m",
    }
    for code, styled in expected.items():
        theirs, ours = both(logs, make_handler(), code)
        assert ours == theirs
        assert ours["args"] == (styled, str(code), "-")
        assert ours["message"] == f'127.0.0.1 - - [{frozen_date()}] "{styled}" {code} -'


def frozen_date() -> str:
    return time.strftime("%d/%b/%Y %H:%M:%S", time.localtime(FROZEN))


def test_colours_off(
    logs: LogCapture, frozen_clock: float, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(wz_serving, "_log_add_style", False)
    for code in CODES:
        theirs, ours = both(logs, make_handler(), code)
        assert ours == theirs
        assert ours["args"][0] == "GET / HTTP/1.1"


def test_local_address(logs: LogCapture, frozen_clock: float) -> None:
    handler = make_handler(address=None)
    handler.client_address = ""
    theirs, ours = both(logs, handler, 200)
    assert ours == theirs
    assert ours["message"].startswith("<local> - - [")


def test_scoped_ipv6_address_keeps_its_percent(logs: LogCapture, frozen_clock: float) -> None:
    theirs, ours = both(logs, make_handler("fe80::1%eth0"), 200)
    assert ours == theirs
    assert ours["msg"].startswith("fe80::1%%eth0 - - [")
    assert ours["message"].startswith("fe80::1%eth0 - - [")


def test_refused_request_logs_the_request_line(logs: LogCapture, frozen_clock: float) -> None:
    handler = make_handler()
    del handler.path
    handler.requestline = "BAD\x01 /%41 line"
    assert not _logging.log_access(handler, 400, "-")
    theirs, ours = both(logs, handler, 400)
    assert ours == theirs
    assert "BAD\\x01 /%41 line" in ours["message"]


def test_nothing_is_built_when_info_is_off(logs: LogCapture) -> None:
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    handler = make_handler()
    del handler.path  # would need werkzeug's path if the line were built
    assert _logging.log_access(handler, 200, "-")
    handler.log_request(200)
    assert logs.records == []


class AddressHandler(WSGIRequestHandler):
    def address_string(self) -> str:
        return "proxy%1"


class DateHandler(WSGIRequestHandler):
    def log_date_time_string(self) -> str:
        return "yesterday"


class MonthHandler(WSGIRequestHandler):
    monthname = [None, *"jan feb mar apr may jun jul aug sep oct nov dec".split()]


class TableHandler(WSGIRequestHandler):
    _control_char_table = {ord("/"): "|"}


class LogHandler(WSGIRequestHandler):
    def log(self, type: str, message: str, *args: Any) -> None:
        super().log(type, "custom " + message, *args)


@pytest.mark.parametrize(
    ("cls", "fast"),
    [
        (WSGIRequestHandler, True),
        (AddressHandler, True),  # called, not inlined
        (DateHandler, False),
        (MonthHandler, False),
        (TableHandler, False),
        (LogHandler, False),
    ],
)
def test_overridden_hooks(cls: type, fast: bool, logs: LogCapture, frozen_clock: float) -> None:
    assert _logging.fast_access_log(cls) is fast
    for path in ["/plain", "/a%20b"]:
        for code in [200, 500]:
            theirs, ours = both(logs, make_handler(cls=cls, path=path), code)
            assert ours == theirs


@pytest.mark.parametrize(
    "now", [0.0, 0.999, 1_000_000_000.5, 1_711_846_799.999, 1_711_846_800.0, FROZEN]
)
def test_date_string_equals_the_stdlib_one(now: float, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_logging, "_date_cache", (-1, ""))
    reference = make_handler()
    for t in (now, now + 0.0001, now + 1, now + 3600, now + 86400 * 40):
        monkeypatch.setattr(time, "time", lambda t=t: t)
        assert _logging.log_date_time_string() == reference.log_date_time_string()
        assert _logging.log_date_time_string() == reference.log_date_time_string()  # cached


def test_date_string_at_the_real_clock() -> None:
    # the second may turn between the two reads; it cannot turn twice
    reference = make_handler()
    pairs = [(_logging.log_date_time_string(), reference.log_date_time_string()) for _ in range(2)]
    assert any(ours == theirs for ours, theirs in pairs)
    assert re.fullmatch(r"\d\d/[A-Z][a-z]{2}/\d{4} \d\d:\d\d:\d\d", pairs[0][0])


TARGET_CHARS = st.characters(min_codepoint=0, max_codepoint=0xFF) | st.sampled_from(
    "/?#%;:@&=+$,!~*'()[]\\\u2603"
)


@given(st.text(TARGET_CHARS, max_size=24))
def test_plain_targets_need_no_decoding(tail: str) -> None:
    for target in (tail, "/" + tail):
        if _logging._plain_request(f"GET {target} HTTP/1.1"):
            assert uri_to_iri(target) == target
            table = wz_serving.WSGIRequestHandler._control_char_table
            assert f"GET {target} HTTP/1.1".translate(table) == f"GET {target} HTTP/1.1"


@given(st.text(TARGET_CHARS, max_size=24), st.sampled_from(CODES))
def test_any_target_logs_as_werkzeug_does(tail: str, code: int | str) -> None:
    # targets werkzeug's own log_request cannot read are refused by the parser
    # before any hook runs (tests/parser/test_target_readable.py)
    for target in (tail, "/" + tail, "//" + tail):
        try:
            uri_to_iri(target)
        except ValueError:
            assume(False)
    capture = LogCapture()
    logger = logging.getLogger("werkzeug")
    old_level = logger.level
    logger.setLevel(logging.INFO)
    logger.addHandler(capture)
    # one frozen second for both formatters: the real clock may turn between
    # werkzeug's record and ours (a fixture cannot do this under @given)
    saved_cache = _logging._date_cache
    _logging._date_cache = (-1, "")
    try:
        with mock.patch.object(time, "time", lambda: FROZEN):
            for target in (tail, "/" + tail):
                theirs, ours = both(capture, make_handler(path=target), code)
                assert ours == theirs
    finally:
        _logging._date_cache = saved_cache
        logger.removeHandler(capture)
        logger.setLevel(old_level)


SERVER_TARGETS = [
    ("/", 200),
    ("/created?x=1", 201),
    ("/moved", 301),
    ("/same", 304),
    ("/missing", 404),
    ("/teapot", 418),
    ("/boom", 500),
    ("/a%20b?q=%C3%A8ry%DF", 200),
    ("/%e2%98%83/%0a", 404),
    ("/x?y=%25%41", 302),
    ("/a?", 200),
]


def status_app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
    code = dict(SERVER_TARGETS)[environ["REQUEST_URI"]]
    body = b"" if code == 304 else b"ok"
    start_response(f"{code} X", [("Content-Length", str(len(body)))])
    return [body]


def test_through_the_server(drive: Any, logs: LogCapture) -> None:
    drv = drive(status_app)
    for target, code in SERVER_TARGETS:
        method = "POST" if code == 201 else "GET"
        raw = f"{method} {target} HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n".encode()
        (resp,) = split_responses(drv.exchange(raw))
        assert resp.status == code
    # refused: werkzeug's path, with the request line
    (resp,) = split_responses(
        drive(status_app).exchange(b"GET /bad\x01 HTTP/1.1\r\nHost: x\r\n\r\n")
    )
    assert resp.status == 400
    access = [r for r in logs.records if r.args and len(r.args) == 3]
    assert len(access) == len(SERVER_TARGETS) + 1
    for record, (target, code) in zip(access, SERVER_TARGETS + [("", 400)], strict=True):
        date = re.fullmatch(r'127\.0\.0\.1 - - \[(.+)\] "%s" %s %s', record.msg)
        assert date is not None, record.msg
        # werkzeug's own handler, same request, same date
        reference = wz_serving.WSGIRequestHandler.__new__(wz_serving.WSGIRequestHandler)
        reference.client_address = ("127.0.0.1", 1)
        reference.environ = {"REMOTE_ADDR": "127.0.0.1"}
        reference.log_date_time_string = lambda d=date[1]: d
        if target:
            reference.command = "POST" if code == 201 else "GET"
            reference.path = target
            reference.request_version = "HTTP/1.1"
        else:
            reference.requestline = "GET /bad\x01 HTTP/1.1"
        capture = LogCapture()
        logging.getLogger("werkzeug").addHandler(capture)
        try:
            reference.log_request(code)
        finally:
            logging.getLogger("werkzeug").removeHandler(capture)
        assert record_dict(record) == record_dict(capture.records[0])


def test_hello_through_the_server_is_one_plain_line(drive: Any, logs: LogCapture) -> None:
    (resp,) = split_responses(
        drive(hello_app).exchange(b"GET /hello?name=x HTTP/1.1\r\nHost: x\r\n\r\n")
    )
    assert resp.status == 200
    (message,) = logs.messages
    assert re.fullmatch(
        r"127\.0\.0\.1 - - \[\d\d/[A-Z][a-z]{2}/\d{4} \d\d:\d\d:\d\d\] "
        r'"GET /hello\?name=x HTTP/1\.1" 200 -',
        message,
    )


class PickyLogger(logging.Logger):
    """A logger class of its own: its isEnabledFor is asked, not its level cache."""

    allow = True

    def isEnabledFor(self, level: int) -> bool:  # noqa: N802 - logging's name
        return self.allow and super().isEnabledFor(level)


def test_the_logger_state_is_read_per_request(
    drive: Any, logs: LogCapture, monkeypatch: pytest.MonkeyPatch, server_parser: Any
) -> None:
    """On one keep-alive connection, each response is logged or not as the werkzeug
    logger says at that moment: its level, ``disabled``, ``logging.disable()``, and
    a logger of another class that replaced it."""
    import werkzeug._internal

    drv = drive(hello_app)
    # the compiled fast path reads the logger's state itself (c), the Python path asks it
    assert (drv.conn.fast is not None) == (server_parser.__name__ == "fastserve._parser")
    logger = logging.getLogger("werkzeug")
    request = b"GET /hello HTTP/1.1\r\nHost: x\r\n\r\n"

    def logged_lines() -> int:
        before = len(logs.records)
        (resp,) = split_responses(drv.exchange(request))
        assert resp.status == 200
        return len(logs.records) - before

    assert logged_lines() == 1
    logger.setLevel(logging.WARNING)
    assert logged_lines() == 0
    logger.setLevel(logging.INFO)
    assert logged_lines() == 1
    logger.disabled = True
    try:
        assert logged_lines() == 0
    finally:
        logger.disabled = False
    assert logged_lines() == 1
    logging.disable(logging.INFO)
    try:
        assert logged_lines() == 0
    finally:
        logging.disable(logging.NOTSET)
    assert logged_lines() == 1

    picky = PickyLogger("werkzeug.picky-test")
    picky.setLevel(logging.INFO)
    picky.addHandler(logs)
    picky.propagate = False
    monkeypatch.setattr(werkzeug._internal, "_logger", picky)
    assert logged_lines() == 1
    picky.allow = False
    assert logged_lines() == 0
    monkeypatch.undo()
    assert logged_lines() == 1
