"""RBSP writer and NAL framing (checked against the spec's tables and an independent reader)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from codeclab.bitstream.bitwriter import BitWriter
from codeclab.bitstream.nal import (
    NAL_IDR_N_LP,
    NAL_PPS,
    NAL_SPS,
    NAL_VPS,
    annexb,
    escape_rbsp,
    nal_header,
    unescape_rbsp,
)


def bits_of(w: BitWriter) -> str:
    w.align_zero()
    return "".join(f"{b:08b}" for b in w.getvalue())


def test_exp_golomb_codes_of_table_9_2():
    # Table 9-2 / 9-3: codeNum -> bit string, se(v) k -> codeNum
    expect = {0: "1", 1: "010", 2: "011", 3: "00100", 4: "00101", 6: "00111", 7: "0001000",
              14: "0001111", 15: "000010000"}
    for v, code in expect.items():
        w = BitWriter()
        w.ue(v)
        n = w.bit_pos
        assert n == len(code)
        assert bits_of(w)[:n] == code
    for k, code_num in ((0, 0), (1, 1), (-1, 2), (2, 3), (-2, 4), (3, 5), (-3, 6)):
        a, b = BitWriter(), BitWriter()
        a.se(k)
        b.ue(code_num)
        assert bits_of(a) == bits_of(b)


def _read_ue(bits: str, pos: int) -> tuple[int, int]:
    z = 0
    while bits[pos + z] == "0":
        z += 1
    v = int(bits[pos + z: pos + 2 * z + 1], 2) - 1
    return v, pos + 2 * z + 1


@settings(max_examples=50, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 2), st.integers(0, 10**6)), min_size=1, max_size=40))
def test_writer_round_trips_with_an_independent_reader(items):
    w = BitWriter()
    for kind, v in items:
        if kind == 0:
            w.ue(v)
        elif kind == 1:
            w.se(v - 500000)
        else:
            w.u(20, v)
    w.trailing_bits()
    bits = "".join(f"{b:08b}" for b in w.getvalue())
    pos = 0
    for kind, v in items:
        if kind == 2:
            assert int(bits[pos:pos + 20], 2) == v
            pos += 20
        else:
            got, pos = _read_ue(bits, pos)
            if kind == 1:
                got = (got + 1) // 2 if got % 2 else -(got // 2)
                assert got == v - 500000
            else:
                assert got == v
    assert bits[pos] == "1" and set(bits[pos + 1:]) <= {"0"} and len(bits) % 8 == 0


def test_u_rejects_values_that_do_not_fit_and_unaligned_output():
    w = BitWriter()
    with pytest.raises(ValueError):
        w.u(3, 8)
    w.u(3, 5)
    with pytest.raises(ValueError):
        w.getvalue()


def test_emulation_prevention():
    assert escape_rbsp(b"\x00\x00\x01") == b"\x00\x00\x03\x01"
    assert escape_rbsp(b"\x00\x00\x04") == b"\x00\x00\x04"
    assert escape_rbsp(b"\x00\x00\x00\x00") == b"\x00\x00\x03\x00\x00\x03"
    assert escape_rbsp(b"\x01\x00\x00\x02\x00\x00\x03") == b"\x01\x00\x00\x03\x02\x00\x00\x03\x03"
    rng = np.random.default_rng(0)
    for _ in range(50):
        raw = rng.choice([0, 0, 0, 1, 2, 3, 4, 255], size=rng.integers(1, 300)).astype(np.uint8).tobytes()
        esc = escape_rbsp(raw)
        assert unescape_rbsp(esc)[: len(raw)] == raw
        for i in range(len(esc) - 2):  # no start code emulation left
            assert not (esc[i] == 0 and esc[i + 1] == 0 and esc[i + 2] <= 2)


def test_nal_headers_and_annexb():
    assert nal_header(NAL_VPS) == b"\x40\x01"
    assert nal_header(NAL_SPS) == b"\x42\x01"
    assert nal_header(NAL_PPS) == b"\x44\x01"
    assert nal_header(NAL_IDR_N_LP) == b"\x28\x01"
    assert annexb([b"\x40\x01", b"\x42\x01"]) == b"\x00\x00\x00\x01\x40\x01\x00\x00\x00\x01\x42\x01"
