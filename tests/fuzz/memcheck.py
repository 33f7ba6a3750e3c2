"""Drive the compiled parser alone over many inputs, for a memory checker (valgrind).

Runs ``fastserve._parser`` (not the twin) over: the fuzz seeds, every file of
the corpus directories given (atheris/libFuzzer's, in ``fuzz_parser`` input
format), the malformed-request table of ``tests/parser``, and ``--generated N``
seeded mutations of the seeds. Each input goes through
:func:`fuzz_parser.decode_input` (parser or decoder, limits, buffer type, split
points) and is also fed whole, three times in a row (what a parser keeps from one
head for the next, docs/parsing.md "Successive heads") and, when short, byte by
byte; and every input goes, in turn, through one long-lived parser (a connection
whose heads are all different). Errors must be
``HTTPParseError``; anything else stops the run. Usage (the command recorded in
docs/parsing.md, "Memory safety")::

    PYTHONMALLOC=malloc valgrind --tool=memcheck --error-exitcode=99 \\
        python tests/fuzz/memcheck.py --generated 3000 CORPUS_DIR ...
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from pathlib import Path
from typing import Any

import fuzz_parser

from fastserve.errors import HTTPParseError

INTERESTING = b'\r\n \t:;,/?#%@[]"\\\x00\x01\x7f\x80\xff0aAxn-'


def mutations(count: int, seed: int = 7) -> list[bytes]:
    """``count`` seeded mutations of the fuzz seeds (flips, insertions, deletions, cuts)."""
    rng = random.Random(seed)
    out = []
    for _ in range(count):
        data = bytearray(rng.choice(fuzz_parser.SEEDS))
        if rng.random() < 0.5:
            data[0] = rng.randrange(256)
        for _ in range(rng.randrange(1, 6)):
            at = rng.randrange(len(data) + 1)
            byte = rng.choice(INTERESTING) if rng.random() < 0.6 else rng.randrange(256)
            op = rng.choice("fidt")
            if op == "f" and at < len(data):
                data[at] = byte
            elif op == "i":
                data[at:at] = bytes([byte]) * rng.choice([1, 1, 3, 300])
            elif op == "d" and at < len(data):
                del data[at]
            elif op == "t":
                del data[at:]
        out.append(bytes(data))
    return out


def malformed_table() -> list[bytes]:
    """The request rows of tests/parser/test_malformed.py, as request-parser inputs."""
    sys.path[:0] = [str(Path(__file__).parents[1]), str(Path(__file__).parents[1] / "parser")]
    import test_malformed

    return [b"\x00" + case[1] for case in test_malformed.CASES]


def run(data: bytes, c_impl: object) -> None:
    if not data:
        return
    chunked, limits, wrap, pieces = fuzz_parser.decode_input(data)
    trace = fuzz_parser.decode_trace if chunked else fuzz_parser.parse_trace
    message = b"".join(pieces)
    trace(c_impl, pieces, limits, wrap)
    trace(c_impl, [message], limits, memoryview)
    trace(c_impl, [message * 3], limits, bytes)
    if len(message) <= 200:
        trace(c_impl, [message[i : i + 1] for i in range(len(message))], limits, bytearray)


def through_one_parser(inputs: list[bytes], c_impl: Any) -> None:
    """Every request-parser input's message on one parser, twice, reset after an error."""
    parser = c_impl.RequestParser()
    for data in inputs:
        if not data or fuzz_parser.decode_input(data)[0]:
            continue
        message = b"".join(fuzz_parser.decode_input(data)[3])
        for _ in range(2):
            try:
                parser.parse(message)
            except HTTPParseError:
                pass
            parser.reset()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("corpus", nargs="*", type=Path)
    parser.add_argument("--generated", type=int, default=3000)
    args = parser.parse_args()
    c_impl = fuzz_parser._implementations()[0]
    inputs = list(fuzz_parser.SEEDS) + malformed_table() + mutations(args.generated)
    for directory in args.corpus:
        inputs += [p.read_bytes() for p in sorted(directory.iterdir()) if p.is_file()]
    start = time.monotonic()
    for data in inputs:
        run(data, c_impl)
    through_one_parser(inputs, c_impl)
    print(
        f"memcheck: {len(inputs)} inputs through fastserve._parser in "
        f"{time.monotonic() - start:.1f} s"
    )


if __name__ == "__main__":
    main()
