"""The chunked body decoder (RFC 9112 §7.1)."""

from __future__ import annotations

from types import ModuleType

import pytest
from helpers import NEXT_REQUEST, decode_all, decode_raises_three_ways, decode_three_ways

from fastserve import errors as e


@pytest.mark.parametrize(
    ("raw", "body"),
    [
        (b"0\r\n\r\n", b""),
        (b"5\r\nhello\r\n0\r\n\r\n", b"hello"),
        (b"5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n", b"hello world"),
        (b"a\r\n0123456789\r\nA\r\nabcdefghij\r\n0\r\n\r\n", b"0123456789abcdefghij"),
        (b"0005\r\nhello\r\n000\r\n\r\n", b"hello"),
        (b"2\r\n\r\n\r\n0\r\n\r\n", b"\r\n"),
        (b"3\r\n\x00\xff\n\r\n0\r\n\r\n", b"\x00\xff\n"),
    ],
    ids=[
        "empty",
        "one_chunk",
        "two_chunks",
        "hex_both_cases",
        "leading_zeros",
        "crlf_as_data",
        "binary_data",
    ],
)
def test_decodes(parser_impl: ModuleType, raw: bytes, body: bytes) -> None:
    decode_three_ways(parser_impl, raw, body)


@pytest.mark.parametrize(
    "ext",
    [
        b";a",
        b";a=b",
        b" ; a = b ",
        b"\t;\ta\t=\tb",
        b";a=b;c;d=e",
        b';a="quoted value"',
        b';a="with \\" escape and ; = inside"',
        b';a=""',
        b';a="obs-text \x80\xff"',
        b";!#$%&'*+-.^_`|~=x",
    ],
)
def test_chunk_extensions_skipped(parser_impl: ModuleType, ext: bytes) -> None:
    """RFC 9112 §7.1.1 (BWS, token or quoted-string values)."""
    if ext.endswith(b" "):
        ext = ext.rstrip(b" ")  # trailing BWS is not in the grammar
    decode_three_ways(parser_impl, b"5" + ext + b"\r\nhello\r\n0" + ext + b"\r\n\r\n", b"hello")


def test_trailers_parsed_and_dropped(parser_impl: ModuleType) -> None:
    """RFC 9112 §7.1.2."""
    raw = b"3\r\nabc\r\n0\r\nExpires: never\r\nX-Sum: 1 \r\n\tfolded\r\n\r\n"
    decode_three_ways(parser_impl, raw, b"abc")


@pytest.mark.parametrize(
    ("raw", "error"),
    [
        (b"\r\n", e.InvalidChunkError),
        (b"x\r\n", e.InvalidChunkError),
        (b"0x5\r\nhello\r\n0\r\n\r\n", e.InvalidChunkError),
        (b"+5\r\nhello\r\n0\r\n\r\n", e.InvalidChunkError),
        (b"-5\r\n", e.InvalidChunkError),
        (b" 5\r\nhello\r\n0\r\n\r\n", e.InvalidChunkError),
        (b"5 \r\nhello\r\n0\r\n\r\n", e.InvalidChunkError),
        (b"5_0\r\n", e.InvalidChunkError),
        (b"5;\r\nhello\r\n0\r\n\r\n", e.InvalidChunkError),
        (b"5;a=\r\nhello\r\n0\r\n\r\n", e.InvalidChunkError),
        (b'5;a="open\r\nhello\r\n0\r\n\r\n', e.InvalidChunkError),
        (b"5;a b\r\nhello\r\n0\r\n\r\n", e.InvalidChunkError),
        (b"5;a=b c\r\nhello\r\n0\r\n\r\n", e.InvalidChunkError),
        (b"5;a=\x01\r\nhello\r\n0\r\n\r\n", e.InvalidChunkError),
        (b"5\nhello\r\n0\r\n\r\n", e.InvalidChunkError),
        (b"5\r\nhello\n0\r\n\r\n", e.InvalidChunkError),
        (b"5\r\nhelloX\r\n0\r\n\r\n", e.InvalidChunkError),
        (b"5\r\nhello\rX0\r\n\r\n", e.InvalidChunkError),
        (b"5\r\nhello\r\n0\n\r\n", e.InvalidChunkError),
        (b"5\r\nhello\r\n0\r\n\n", e.InvalidHeaderError),
        (b"0\r\nX: a\n\r\n", e.InvalidHeaderError),
        (b"0\r\nX a\r\n\r\n", e.InvalidHeaderError),
        (b"0\r\n: a\r\n\r\n", e.InvalidHeaderError),
        (b"0\r\nX: a\x00\r\n\r\n", e.InvalidHeaderError),
        (b"0\r\n folded\r\n\r\n", e.InvalidHeaderError),
        (b"0\r\nX: a\rb\r\n\r\n", e.InvalidHeaderError),
        (b"8000000000000000\r\n", e.InvalidChunkError),
        (b"00000000000000000000000000000000000000010000000000000000\r\n", e.InvalidChunkError),
    ],
    ids=[
        "empty_size_line",
        "non_hex_size",
        "0x_prefix",
        "plus_sign",
        "minus_sign",
        "space_before_size",
        "space_after_size_without_ext",
        "underscore_in_size",
        "ext_without_name",
        "ext_without_value",
        "unterminated_quoted_ext",
        "space_in_ext_name",
        "space_in_ext_value",
        "ctl_in_ext_value",
        "bare_lf_after_size",
        "bare_lf_after_data",
        "data_longer_than_size",
        "cr_then_garbage_after_data",
        "bare_lf_after_last_chunk",
        "bare_lf_final_line",
        "bare_lf_in_trailer",
        "trailer_without_colon",
        "trailer_empty_name",
        "nul_in_trailer",
        "obs_fold_as_first_trailer",
        "cr_in_trailer_value",
        "size_over_63_bits",
        "size_over_63_bits_after_zeros",
    ],
)
def test_malformed_chunked_body_refused(
    parser_impl: ModuleType, raw: bytes, error: type[Exception]
) -> None:
    decode_raises_three_ways(parser_impl, raw, error)


def test_largest_chunk_size_accepted(parser_impl: ModuleType) -> None:
    """2**63 - 1 fits: the decoder then waits for that much data."""
    decoder = parser_impl.ChunkedDecoder()
    assert decoder.decode(b"7fffffffffffffff\r\nabc") == (b"abc", 21)
    assert not decoder.done


def test_pipelined_bytes_are_left(parser_impl: ModuleType) -> None:
    decoder = parser_impl.ChunkedDecoder()
    raw = b"1\r\na\r\n0\r\n\r\n"
    assert decoder.decode(raw + NEXT_REQUEST) == (b"a", len(raw))
    assert decoder.done
    assert decoder.decode(NEXT_REQUEST) == (b"", 0)


def test_partial_size_line_left_unconsumed(parser_impl: ModuleType) -> None:
    decoder = parser_impl.ChunkedDecoder()
    assert decoder.decode(b"1") == (b"", 0)
    assert decoder.decode(b"1;x=") == (b"", 0)
    assert decoder.decode(b"1;x=y\r") == (b"", 0)
    assert decoder.decode(b"1;x=y\r\na") == (b"a", 8)
    assert decoder.decode(b"\r") == (b"", 0)
    assert decoder.decode(b"\r\n0\r\n\r\n") == (b"", 7)
    assert decoder.done


def test_chunk_data_returned_as_it_arrives(parser_impl: ModuleType) -> None:
    decoder = parser_impl.ChunkedDecoder()
    assert decoder.decode(b"a\r\n0123") == (b"0123", 7)
    assert decoder.decode(b"456") == (b"456", 3)
    assert decoder.decode(b"789\r") == (b"789", 3)  # a lone CR after data is left
    assert decoder.decode(b"\r\n0\r\n") == (b"", 5)
    assert not decoder.done
    assert decoder.decode(b"\r\n") == (b"", 2)
    assert decoder.done


def test_partial_trailer_line_left_unconsumed(parser_impl: ModuleType) -> None:
    decoder = parser_impl.ChunkedDecoder()
    assert decoder.decode(b"0\r\nX: a") == (b"", 3)
    assert decoder.decode(b"X: a\r\nY") == (b"", 6)
    assert decoder.decode(b"Y: b\r\n\r") == (b"", 6)
    assert not decoder.done
    assert decoder.decode(b"\r\n") == (b"", 2)
    assert decoder.done


def test_wrong_byte_after_data_refused_at_once(parser_impl: ModuleType) -> None:
    decoder = parser_impl.ChunkedDecoder()
    assert decoder.decode(b"1\r\na") == (b"a", 4)
    with pytest.raises(e.InvalidChunkError):
        decoder.decode(b"X")


def test_server_style_loop_over_random_splits(parser_impl: ModuleType) -> None:
    raw = b"4;n=v\r\nWiki\r\n5\r\npedia\r\nE\r\n in\r\n\r\nchunks.\r\n0\r\nT: x\r\n\r\n"
    for step in range(1, len(raw) + 1):
        assert decode_all(parser_impl.ChunkedDecoder(), raw, step) == (
            b"Wikipedia in\r\n\r\nchunks.",
            len(raw),
        )
