"""CABAC encoder of H.265 (9.3.4.x / 9.3.5) in numba, plus a fractional-bit rate estimator.

State lives in three small numpy arrays so that an RD search can save/restore it with a
copy of a few hundred bytes:

- ``ctx``  uint8[NCTX]: one byte per context variable, ``(pStateIdx << 1) | valMps``.
- ``eng``  int64[ENG_SIZE]: low, ivRange, bytes held back (the buffered byte and the 0xff
  bytes after it), bits left in ``low``, output position, buffered byte (the flush's bit
  accumulator at the end), its bit count, mode (0 = write, 1 = estimate), fractional bits,
  overflow.
- ``buf``  uint8[...]: output bytes (slice data).

The writer is the byte-oriented form of the spec's encoder (9.3.4.3) that HM uses
(``TEncBinCABAC``): ``low`` keeps up to 32 bits, a renormalisation is one shift (the
LPS's by a table), and a byte leaves ``low`` whenever fewer than 12 bits are left; a byte
of 0xff may still take a carry, so runs of them wait in a counter behind the byte before
them. The spec's flowcharts put out one bit per renormalisation step (PutBit with
bitsOutstanding), about four times the work per bin; the bytes are the same (tested
against a bit-by-bit transcription of the spec's decoder).

In estimate mode (``eng[E_MODE] = 1``) the same coding functions update the contexts and add
the cost of each bin to ``eng[E_FRAC]`` in units of 1/32768 bit (``FRAC_ONE``) instead of
producing bits: the residual and syntax writers double as rate estimators.
"""

from __future__ import annotations

import numpy as np
from numba import njit

__all__ = [
    "E_LOW", "E_RANGE", "E_OUT", "E_LEFT", "E_POS", "E_BYTE", "E_NBITS", "E_MODE", "E_FRAC",
    "E_OVF", "ENG_SIZE", "FRAC_ONE", "RANGE_LPS", "TRANS_LPS", "TRANS_MPS", "ENTROPY_BITS",
    "init_contexts", "new_engine", "encode_bin", "encode_bypass", "encode_bypass_bits",
    "encode_terminate", "encode_flush", "CabacWriter",
]

E_LOW, E_RANGE, E_OUT, E_LEFT, E_POS, E_BYTE, E_NBITS, E_MODE, E_FRAC, E_OVF = range(10)
ENG_SIZE = 10
FRAC_ONE = 1 << 15

# Table 9-52 (rangeTabLps[pStateIdx][qRangeIdx]) and Table 9-53 (state transitions)
RANGE_LPS = np.array([
    [128, 176, 208, 240], [128, 167, 197, 227], [128, 158, 187, 216], [123, 150, 178, 205],
    [116, 142, 169, 195], [111, 135, 160, 185], [105, 128, 152, 175], [100, 122, 144, 166],
    [95, 116, 137, 158], [90, 110, 130, 150], [85, 104, 123, 142], [81, 99, 117, 135],
    [77, 94, 111, 128], [73, 89, 105, 122], [69, 85, 100, 116], [66, 80, 95, 110],
    [62, 76, 90, 104], [59, 72, 86, 99], [56, 69, 81, 94], [53, 65, 77, 89],
    [51, 62, 73, 85], [48, 59, 69, 80], [46, 56, 66, 76], [43, 53, 63, 72],
    [41, 50, 59, 69], [39, 48, 56, 65], [37, 45, 54, 62], [35, 43, 51, 59],
    [33, 41, 48, 56], [32, 39, 46, 53], [30, 37, 43, 50], [29, 35, 41, 48],
    [27, 33, 39, 45], [26, 31, 37, 43], [24, 30, 35, 41], [23, 28, 33, 39],
    [22, 27, 32, 37], [21, 26, 30, 35], [20, 24, 29, 33], [19, 23, 27, 31],
    [18, 22, 26, 30], [17, 21, 25, 28], [16, 20, 23, 27], [15, 19, 22, 25],
    [14, 18, 21, 24], [14, 17, 20, 23], [13, 16, 19, 22], [12, 15, 18, 21],
    [12, 14, 17, 20], [11, 14, 16, 19], [11, 13, 15, 18], [10, 12, 15, 17],
    [10, 12, 14, 16], [9, 11, 13, 15], [9, 11, 12, 14], [8, 10, 12, 14],
    [8, 9, 11, 13], [7, 9, 11, 12], [7, 9, 10, 12], [7, 8, 10, 11],
    [6, 8, 9, 11], [6, 7, 9, 10], [6, 7, 8, 9], [2, 2, 2, 2]], dtype=np.int64)
TRANS_LPS = np.array([
    0, 0, 1, 2, 2, 4, 4, 5, 6, 7, 8, 9, 9, 11, 11, 12, 13, 13, 15, 15, 16, 16, 18, 18,
    19, 19, 21, 21, 22, 22, 23, 24, 24, 25, 26, 26, 27, 27, 28, 29, 29, 30, 30, 30, 31, 32,
    32, 33, 33, 33, 34, 34, 35, 35, 35, 36, 36, 36, 37, 37, 37, 38, 38, 63], dtype=np.int64)
TRANS_MPS = np.array(list(range(1, 63)) + [62, 63], dtype=np.int64)
# shifts that bring an LPS range (6..240 outside the terminating state) back to >= 256,
# indexed by rangeLPS >> 3
RENORM_LPS = np.array([6, 5, 4, 4, 3, 3, 3, 3] + [2] * 8 + [1] * 16, dtype=np.int64)


def _entropy_bits() -> np.ndarray:
    """Cost in 1/32768 bit of a bin, indexed by ``ctx_byte ^ bin``: even index = MPS of that
    state, odd = LPS. pLPS(s) = 0.5 * a^s with a = (0.01875/0.5)^(1/63), the model the state
    machine was designed from (the same construction as HM's entropy-bits table)."""
    a = (0.01875 / 0.5) ** (1 / 63)
    p = 0.5 * a ** np.arange(64)
    t = np.empty(128, dtype=np.int64)
    t[0::2] = np.round(-np.log2(1 - p) * FRAC_ONE)
    t[1::2] = np.round(-np.log2(p) * FRAC_ONE)
    return t


ENTROPY_BITS = _entropy_bits()
for _t in (RANGE_LPS, TRANS_LPS, TRANS_MPS, RENORM_LPS, ENTROPY_BITS):
    _t.setflags(write=False)


def init_contexts(init_values: np.ndarray, slice_qp: int) -> np.ndarray:
    """9.3.2.2: context bytes from initValue and SliceQpY (vectorised)."""
    iv = np.asarray(init_values, dtype=np.int64)
    m = (iv >> 4) * 5 - 45
    n = ((iv & 15) << 3) - 16
    pre = np.clip(((m * min(max(int(slice_qp), 0), 51)) >> 4) + n, 1, 126)
    mps = (pre > 63).astype(np.int64)
    state = np.where(mps == 1, pre - 64, 63 - pre)
    return ((state << 1) | mps).astype(np.uint8)


@njit(cache=True)
def new_engine(mode: int = 0) -> np.ndarray:
    """9.3.2.5 initialisation: ivLow = 0, ivRange = 510; 23 bits left before the first byte
    leaves (its leading bit, the spec's firstBitFlag, is the 10th bit of ``low`` and never
    written), no byte buffered (numba: compiled code makes its engines with it too)."""
    eng = np.zeros(ENG_SIZE, dtype=np.int64)
    eng[E_RANGE] = 510
    eng[E_LEFT] = 23
    eng[E_BYTE] = 0xFF
    eng[E_MODE] = mode
    return eng


@njit(cache=True, inline="always")
def _put_byte(eng, buf, v):  # pragma: no cover - numba
    p = eng[E_POS]
    if p < buf.shape[0]:
        buf[p] = v
    else:
        eng[E_OVF] = 1
    eng[E_POS] = p + 1


@njit(cache=True)
def _write_out(eng, buf):  # pragma: no cover - numba
    """The leading byte of ``low`` leaves it; a 0xff waits (a later carry would turn it into
    0x00 and add one to the byte before it), any other byte releases the bytes waiting."""
    left = eng[E_LEFT]
    lead = eng[E_LOW] >> (24 - left)
    left += 8
    eng[E_LEFT] = left
    eng[E_LOW] &= 0xFFFFFFFF >> left
    if lead == 0xFF:
        eng[E_OUT] += 1
    elif eng[E_OUT] > 0:
        carry = lead >> 8
        _put_byte(eng, buf, (eng[E_BYTE] + carry) & 0xFF)
        eng[E_BYTE] = lead & 0xFF
        run = (0xFF + carry) & 0xFF
        while eng[E_OUT] > 1:
            _put_byte(eng, buf, run)
            eng[E_OUT] -= 1
    else:
        eng[E_OUT] = 1
        eng[E_BYTE] = lead


@njit(cache=True, inline="always")
def _test_write_out(eng, buf):  # pragma: no cover - numba
    if eng[E_LEFT] < 12:
        _write_out(eng, buf)


@njit(cache=True, inline="always")
def _write_bit(eng, buf, b):  # pragma: no cover - numba
    """One bit of the flush's tail (after every byte of the arithmetic coder has left)."""
    eng[E_BYTE] = (eng[E_BYTE] << 1) | b
    eng[E_NBITS] += 1
    if eng[E_NBITS] == 8:
        _put_byte(eng, buf, eng[E_BYTE])
        eng[E_BYTE] = 0
        eng[E_NBITS] = 0


@njit(cache=True, inline="always")
def encode_bin(eng, ctx, buf, ci, b):  # pragma: no cover - numba
    """EncodeDecision (9.3.4.3.2 / Figure 9-7) of bin b with context ctx[ci].

    Inlined where it is called: an estimate (the RD search prices millions of bins) then
    costs no call, and numba's reference counting of the three arrays a call passes
    (atomic increments) disappears with the call; writing calls _encode_bin_arith."""
    s = np.int64(ctx[ci])
    if eng[E_MODE]:
        eng[E_FRAC] += ENTROPY_BITS[s ^ b]
    else:
        _encode_bin_arith(eng, buf, s, b)
    ctx[ci] = _next_state(s, b)


@njit(cache=True, inline="always")
def _next_state(s, b):  # pragma: no cover - numba
    """pStateIdx / valMps after coding bin b in context state s = (pStateIdx << 1) | valMps."""
    state = s >> 1
    mps = s & 1
    if b != mps:
        if state == 0:
            mps = 1 - mps
        state = TRANS_LPS[state]
    else:
        state = TRANS_MPS[state]
    return (state << 1) | mps


@njit(cache=True)
def _encode_bin_arith(eng, buf, s, b):  # pragma: no cover - numba
    """The arithmetic coding of a bin in context state s: an LPS renormalises by one table
    shift, an MPS by at most one bit."""
    lps = RANGE_LPS[s >> 1, (eng[E_RANGE] >> 6) & 3]
    rng = eng[E_RANGE] - lps
    if b != (s & 1):
        k = RENORM_LPS[lps >> 3]
        eng[E_LOW] = (eng[E_LOW] + rng) << k
        eng[E_RANGE] = lps << k
        eng[E_LEFT] -= k
    elif rng >= 256:
        eng[E_RANGE] = rng
        return
    else:
        eng[E_LOW] <<= 1
        eng[E_RANGE] = rng << 1
        eng[E_LEFT] -= 1
    _test_write_out(eng, buf)


@njit(cache=True, inline="always")
def encode_bypass(eng, buf, b):  # pragma: no cover - numba
    """EncodeBypass (Figure 9-10); inlined as encode_bin is."""
    if eng[E_MODE]:
        eng[E_FRAC] += FRAC_ONE
    else:
        _encode_bypass_arith(eng, buf, b)


@njit(cache=True)
def _encode_bypass_arith(eng, buf, b):  # pragma: no cover - numba
    eng[E_LOW] <<= 1
    if b:
        eng[E_LOW] += eng[E_RANGE]
    eng[E_LEFT] -= 1
    _test_write_out(eng, buf)


@njit(cache=True, inline="always")
def encode_bypass_bits(eng, buf, value, n):  # pragma: no cover - numba
    """n bypass bins of value, most significant first (FL binarisation)."""
    for k in range(n - 1, -1, -1):
        encode_bypass(eng, buf, (value >> k) & 1)


@njit(cache=True)
def encode_flush(eng, buf):  # pragma: no cover - numba
    """EncodeFlush (9.3.4.3.5) after the terminating bin added ivRange - 2 to ``low``:
    ivRange = 2 renormalises by 7 bits, the bytes still waiting leave (with the carry, if
    ``low`` has one), then the bits of ``low`` down to the spec's PutBit(ivLow >> 9 & 1)
    and its final 1, the rbsp_stop_one_bit; the writer is then byte-aligned with zero bits
    (rbsp_alignment_zero_bit)."""
    eng[E_LOW] <<= 7
    eng[E_RANGE] = 2 << 7
    eng[E_LEFT] -= 7
    _test_write_out(eng, buf)
    left = eng[E_LEFT]
    if eng[E_LOW] >> (32 - left):
        _put_byte(eng, buf, (eng[E_BYTE] + 1) & 0xFF)
        while eng[E_OUT] > 1:
            _put_byte(eng, buf, 0)
            eng[E_OUT] -= 1
        eng[E_LOW] -= 1 << (32 - left)
    else:
        if eng[E_OUT] > 0:
            _put_byte(eng, buf, eng[E_BYTE])
        while eng[E_OUT] > 1:
            _put_byte(eng, buf, 0xFF)
            eng[E_OUT] -= 1
    eng[E_OUT] = 0
    eng[E_BYTE] = 0
    eng[E_NBITS] = 0
    v = eng[E_LOW] >> 8
    for k in range(23 - left, -1, -1):
        _write_bit(eng, buf, (v >> k) & 1)
    _write_bit(eng, buf, 1)
    while eng[E_NBITS] != 0:
        _write_bit(eng, buf, 0)
    eng[E_LEFT] = 0  # flushed (while coding, at least 6 bits are always left)


@njit(cache=True)
def encode_terminate(eng, buf, b):  # pragma: no cover - numba
    """EncodeTerminate (Figure 9-8); b = 1 also flushes (end of slice segment)."""
    if eng[E_MODE]:
        eng[E_FRAC] += 185 if b == 0 else 8 * FRAC_ONE  # -log2(1 - 2/510) and ~8 bits
        return
    rng = eng[E_RANGE] - 2
    if b:
        eng[E_LOW] += rng
        eng[E_RANGE] = rng
        encode_flush(eng, buf)
    elif rng >= 256:
        eng[E_RANGE] = rng
    else:
        eng[E_LOW] <<= 1
        eng[E_RANGE] = rng << 1
        eng[E_LEFT] -= 1
        _test_write_out(eng, buf)


class CabacWriter:
    """One slice's CABAC engine: contexts, engine state and output buffer together.

    ``snapshot()``/``restore()`` copy the contexts (and engine) for an RD search; the
    numba-level functions above take ``(w.eng, w.ctx, w.buf, ...)`` directly.
    """

    def __init__(self, init_values: np.ndarray, slice_qp: int, capacity: int = 1 << 16,
                 estimate: bool = False) -> None:
        self.ctx = init_contexts(init_values, slice_qp)
        self.eng = new_engine(1 if estimate else 0)
        self.buf = np.zeros(max(int(capacity), 16), dtype=np.uint8)

    def snapshot(self) -> tuple[np.ndarray, np.ndarray]:
        return self.ctx.copy(), self.eng.copy()

    def restore(self, snap: tuple[np.ndarray, np.ndarray]) -> None:
        self.ctx[:] = snap[0]
        self.eng[:] = snap[1]

    def getvalue(self) -> bytes:
        """Bytes written (after the terminating bin); raises if the buffer overflowed."""
        if self.eng[E_OVF]:
            raise OverflowError(f"CABAC output buffer of {self.buf.shape[0]} bytes overflowed")
        if self.eng[E_LEFT]:
            raise ValueError("CABAC stream not flushed")
        return self.buf[: self.eng[E_POS]].tobytes()
