"""The fuzz target (``fuzz_parser.check``) driven by hypothesis, in the normal test run.

Inputs are random bytes and mutated seeds (:data:`fuzz_parser.SEEDS`): a mode
byte chooses the request parser or the chunked decoder, limits, the buffer type
and split points (see :func:`fuzz_parser.check`). The example count is bounded
(``FASTSERVE_FUZZ_EXAMPLES``, default 2000 per test: about 10 s in all); CI runs more
when atheris is missing (.ci/run). Marked ``c_extension``: it compares the two
builds.
"""

from __future__ import annotations

import os

import fuzz_parser
import pytest
from fuzz_parser import SEEDS, check
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

pytestmark = pytest.mark.c_extension

EXAMPLES = int(os.environ.get("FASTSERVE_FUZZ_EXAMPLES", "2000"))
fuzz_settings = settings(
    max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)

INTERESTING = b'\r\n \t:;,/?#%@[]"\\\x00\x01\x7f\x80\xff0aAxn-'


@st.composite
def mutated_seeds(draw: st.DrawFn) -> bytes:
    """A seed with a few byte flips, insertions, deletions or a truncation; sometimes a
    different mode byte."""
    data = bytearray(draw(st.sampled_from(SEEDS)))
    if draw(st.booleans()):
        data[0] = draw(st.integers(0, 255))
    for _ in range(draw(st.integers(0, 5))):
        at = round(draw(st.floats(0, 1)) * len(data))
        byte = draw(st.one_of(st.sampled_from(INTERESTING), st.integers(0, 255)))
        op = draw(st.sampled_from(["flip", "insert", "delete", "truncate"]))
        if op == "flip" and at < len(data):
            data[at] = byte
        elif op == "insert":
            data[at:at] = bytes([byte]) * draw(st.sampled_from([1, 1, 2, 40]))
        elif op == "delete" and at < len(data):
            del data[at]
        elif op == "truncate":
            del data[at:]
    return bytes(data)


@fuzz_settings
@given(st.binary(max_size=200))
def test_fuzz_random_bytes(data: bytes) -> None:
    check(data)


@fuzz_settings
@given(mutated_seeds())
@example(b"\x00PUT s://]ufd/: HTTP/1.1\r\n\r\n")
@example(b"\x00GET //]x/ HTTP/1.1\r\n\r\n")
def test_fuzz_mutated_seeds(data: bytes) -> None:
    check(data)


@pytest.mark.parametrize("seed", SEEDS, ids=range(len(SEEDS)))
def test_seeds_are_accepted(seed: bytes) -> None:
    """The seeds themselves parse (they are the fuzzer's valid starting points)."""
    check(seed)
    trace = fuzz_parser.run_seed(seed)
    assert all(type(step) is not tuple or step[0] != "error" for step in trace), trace
