"""Pluggable quantizers of the HEVC encoder: one batch of same-size blocks in, levels out.

The encoder groups candidate blocks by size and calls ``quantizer.quantize(batch)`` once per
group, so a network (``nrdoq-*``) can process many blocks in one forward pass. See
docs/quantizers.md for the contract. Registered here: ``sq`` (HM's dead-zone quantizer +
HM's distortion-only sign hiding ``signBitHidingHDQ``) and ``rdoq`` (HM's RDOQ, rdoq.py).

Rate state: RDOQ needs the CABAC context states the block will be coded with. ``batch.ctx``
holds, per block, the states of that component's residual contexts in the per-block layout
of rdoq.py (RATE_*), HM's state byte ``(pStateIdx << 1) | valMPS``;
:func:`extract_rate_state` cuts them out of the entropy coder's full context array, and
:func:`rate_table` turns them into fractional bits with the coder's entropy-bits table.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from functools import lru_cache
from typing import Callable, Mapping, Protocol, runtime_checkable

import numpy as np
from numba import njit

from codeclab.base.errors import UsageError
from codeclab.base.registry import Registry
from codeclab.codecs.hevc.lambdas import slice_lambdas
from codeclab.codecs.hevc.rdoq import (
    RATE_CBF,
    RATE_CSBF,
    RATE_GT1,
    RATE_GT2,
    RATE_K,
    RATE_LAST_X,
    RATE_LAST_Y,
    RATE_SIG,
    rdoq_blocks,
)
from codeclab.codecs.hevc.residual_rules import hide_signs, level_delta
from codeclab.codecs.hevc.scalar_quant import QUANT_SCALES, qp_prime, quant_shift, quantize_sq
from codeclab.codecs.hevc.scan import scan_tables

__all__ = [
    "QuantBatch",
    "Quantizer",
    "SQQuantizer",
    "RDOQQuantizer",
    "EncoderQuantizer",
    "register_quantizer",
    "get_quantizer",
    "available_quantizers",
    "sign_hiding_hdq",
    "rate_table",
    "extract_rate_state",
    "coder_offsets",
    "RATE_K",
]

_QS = np.array(QUANT_SCALES, dtype=np.int64)


@dataclass
class QuantBatch:
    """B blocks of the same size n x n, everything a quantizer may look at.

    coeffs: (B, n, n) int32 transform (or transform-skip) coefficients, unquantized.
    c_idx / scan_idx / qp / lam / transform_skip: (B,) per block; qp is the signalled QP
    of the block's component (chroma after mapping), lam the lambda of that component
    (SSE in 8-bit units + lam * bits, lambdas.py). ctx: (B, RATE_K) uint8 CABAC states
    (rdoq.py layout) seen by each block, or None for quantizers that need no rate.
    """

    coeffs: np.ndarray
    log2_size: int
    c_idx: np.ndarray
    scan_idx: np.ndarray
    qp: np.ndarray
    lam: np.ndarray
    transform_skip: np.ndarray
    bit_depth: int
    ctx: np.ndarray | None = None
    sign_hiding: bool = True

    def __post_init__(self) -> None:
        n = 1 << self.log2_size
        c = np.asarray(self.coeffs)
        if c.ndim != 3 or c.shape[1:] != (n, n) or not 2 <= self.log2_size <= 5:
            raise ValueError(f"QuantBatch: coeffs {c.shape} are not (B, {n}, {n}) with n in 4..32")
        b = c.shape[0]
        for name in ("c_idx", "scan_idx", "qp", "lam", "transform_skip"):
            v = np.broadcast_to(np.asarray(getattr(self, name)), (b,))
            setattr(self, name, v)
        if self.ctx is not None and np.asarray(self.ctx).shape != (b, RATE_K):
            raise ValueError(f"QuantBatch: ctx {np.asarray(self.ctx).shape} is not ({b}, {RATE_K})")

    def __len__(self) -> int:
        return int(np.asarray(self.coeffs).shape[0])


@runtime_checkable
class Quantizer(Protocol):
    """What the encoder calls; levels are signed int32 (B, n, n)."""

    name: str
    needs_rate_state: bool

    def quantize(self, batch: QuantBatch) -> np.ndarray: ...


# ---------------------------------------------------------------------------------------
# sign data hiding, distortion only (HM signBitHidingHDQ): the SQ path


@njit(cache=True)
def _hdq_batch(lv, coef, scans, scan_idx, qbits, qscale):  # pragma: no cover - numba
    """In place on lv (B, n*n) raster signed levels from coef (B, n*n) raster coefficients."""
    nn = lv.shape[1]
    delta_u = np.empty(nn, dtype=np.int64)
    for b in range(lv.shape[0]):
        for i in range(nn):
            delta_u[i] = level_delta(np.int64(abs(coef[b, i])) * qscale[b], abs(lv[b, i]), qbits[b])
        hide_signs(lv[b], coef[b], scans[scan_idx[b]], delta_u, delta_u, delta_u, delta_u,
                   np.int64(1), False)


def sign_hiding_hdq(levels: np.ndarray, coeffs: np.ndarray, log2_size: int,
                    scan_idx: np.ndarray, qp: np.ndarray, bit_depth: int) -> np.ndarray:
    """HM's signBitHidingHDQ on SQ levels (B, n, n): in every 4x4 group whose first and last
    non-zero levels (scan order) are >= 4 apart and whose level-sum parity disagrees with
    the first level's sign, move the level that costs least distortion by +-1 (HM's
    deltaU rule; ``residual_rules.hide_signs``, unrated). Returns a new array; the syntax
    writer then omits that sign."""
    lv = np.array(levels, dtype=np.int32).reshape(levels.shape[0], -1)
    nb = lv.shape[0]
    c = np.ascontiguousarray(coeffs, dtype=np.int32).reshape(nb, -1)
    qp = np.broadcast_to(np.asarray(qp, dtype=np.int64), (nb,))
    qpp = qp_prime(qp, bit_depth)
    qbits = quant_shift(qp, log2_size, bit_depth)  # per block (works on arrays)
    scans, _ = scan_tables(log2_size)
    _hdq_batch(lv, c, scans, np.ascontiguousarray(np.broadcast_to(scan_idx, (nb,)), dtype=np.int64),
               qbits, _QS[qpp % 6])
    return lv.reshape(levels.shape)


# ---------------------------------------------------------------------------------------
# rate state


def rate_table(states: np.ndarray, entropy_bits: np.ndarray) -> np.ndarray:
    """(…, K) HM state bytes -> (…, K, 2) int32 bits (1/32768) for bin 0 / bin 1.

    entropy_bits: HM's 128-entry table indexed by ``state ^ bin`` (even index = the MPS cost
    of pStateIdx = index >> 1, odd = the LPS cost), i.e. the CABAC rate estimator's table."""
    s = np.asarray(states, dtype=np.int64)
    t = np.asarray(entropy_bits, dtype=np.int32)
    if t.shape != (128,):
        raise ValueError(f"rate_table: entropy_bits must have 128 entries, got {t.shape}")
    return np.stack([t[s], t[s ^ 1]], axis=-1)


# names of the residual syntax elements' context groups in the entropy coder's layout
_ELEMENTS = ("coded_sub_block_flag", "sig_coeff_flag", "coeff_abs_level_greater1_flag",
             "coeff_abs_level_greater2_flag", "last_sig_coeff_x_prefix",
             "last_sig_coeff_y_prefix", "cbf_luma", "cbf_cb_cr")


def _gather_index(offsets: Mapping[str, int], luma: bool, cbf_ctx_inc: int) -> np.ndarray:
    """Index into the full context array for every entry of the per-block layout."""
    idx = np.zeros(RATE_K, dtype=np.int64)
    # (rate offset, element, count, spec ctxInc offset of chroma)
    parts = ((RATE_CSBF, "coded_sub_block_flag", 2, 2), (RATE_SIG, "sig_coeff_flag", 27, 27),
             (RATE_GT1, "coeff_abs_level_greater1_flag", 16, 16),
             (RATE_GT2, "coeff_abs_level_greater2_flag", 4, 4),
             (RATE_LAST_X, "last_sig_coeff_x_prefix", 15, 15),
             (RATE_LAST_Y, "last_sig_coeff_y_prefix", 15, 15))
    for off, name, count, chroma_off in parts:
        if luma:
            idx[off:off + count] = offsets[name] + np.arange(count)
        else:
            m = {2: 2, 27: 15, 16: 8, 4: 2, 15: 3}[count]
            idx[off:off + m] = offsets[name] + chroma_off + np.arange(m)
            idx[off + m:off + count] = idx[off]  # unused by chroma; any valid index
    idx[RATE_CBF] = offsets["cbf_luma" if luma else "cbf_cb_cr"] + cbf_ctx_inc
    return idx


def coder_offsets() -> dict[str, int]:
    """Where the residual contexts start in the CABAC coder's array (codecs/hevc/tables.py)."""
    from codeclab.codecs.hevc import tables as t  # the syntax layer; imported on use

    return {"coded_sub_block_flag": t.CTX_CSBF, "sig_coeff_flag": t.CTX_SIG,
            "coeff_abs_level_greater1_flag": t.CTX_GT1, "coeff_abs_level_greater2_flag": t.CTX_GT2,
            "last_sig_coeff_x_prefix": t.CTX_LAST_X, "last_sig_coeff_y_prefix": t.CTX_LAST_Y,
            "cbf_luma": t.CTX_CBF_LUMA, "cbf_cb_cr": t.CTX_CBF_CHROMA}


def extract_rate_state(full_states: np.ndarray, offsets: Mapping[str, int] | None, c_idx: int,
                       cbf_ctx_inc: int) -> np.ndarray:
    """The (RATE_K,) per-block state vector of one block from the coder's full context array.

    offsets: where each element's contexts start in ``full_states`` (keys: the spec names
    in ``_ELEMENTS``; ctxInc as in 9.3.4.2, chroma after the luma ones, as the spec counts);
    None = the encoder's own layout (:func:`coder_offsets`).
    cbf_ctx_inc: the ctxInc of this block's cbf flag (luma: trafoDepth == 0; chroma:
    trafoDepth). ``full_states`` may be (K_full,) or (B, K_full) (then c_idx/cbf scalar)."""
    if offsets is None:
        offsets = coder_offsets()
    missing = [e for e in _ELEMENTS if e not in offsets]
    if missing:
        raise UsageError(f"extract_rate_state: context layout lacks {', '.join(missing)}")
    idx = _gather_index(offsets, c_idx == 0, int(cbf_ctx_inc))
    return np.asarray(full_states)[..., idx].astype(np.uint8)


# ---------------------------------------------------------------------------------------
# quantizers


class SQQuantizer:
    """HM's scalar dead-zone quantizer (rounding 171/512 for I slices), then signBitHidingHDQ."""

    name = "sq"
    needs_rate_state = False

    def __init__(self, rounding: float = 171 / 512) -> None:
        if not 0 <= rounding < 1:
            raise UsageError(f"sq: rounding {rounding} outside [0, 1)")
        self.rounding = float(rounding)

    def quantize(self, batch: QuantBatch) -> np.ndarray:
        lv = quantize_sq(batch.coeffs, np.asarray(batch.qp), batch.log2_size, batch.bit_depth,
                         rounding=self.rounding)
        if batch.sign_hiding:
            lv = sign_hiding_hdq(lv, batch.coeffs, batch.log2_size, batch.scan_idx, batch.qp,
                                 batch.bit_depth)
        return lv


class RDOQQuantizer:
    """HM's RDOQ (rdoq.py) with rates from the blocks' CABAC states.

    entropy_bits: the CABAC rate estimator's 128-entry fractional-bit table (HM's
    ``sm_aucEntropyBits``); default: codeclab.bitstream.cabac.ENTROPY_BITS."""

    name = "rdoq"
    needs_rate_state = True

    def __init__(self, entropy_bits: np.ndarray | None = None) -> None:
        self.entropy_bits = None if entropy_bits is None else np.asarray(entropy_bits, np.int32)

    def _table(self) -> np.ndarray:
        if self.entropy_bits is None:
            try:
                from codeclab.bitstream.cabac import ENTROPY_BITS
            except ImportError as e:
                raise UsageError(f"rdoq: no CABAC entropy-bits table ({e})") from None
            self.entropy_bits = np.asarray(ENTROPY_BITS, dtype=np.int32)
        return self.entropy_bits

    def quantize(self, batch: QuantBatch) -> np.ndarray:
        if batch.ctx is None:
            raise UsageError("rdoq: the batch carries no CABAC rate state (ctx)")
        bits = rate_table(batch.ctx, self._table())
        return rdoq_blocks(batch.coeffs, batch.log2_size, batch.c_idx, batch.scan_idx,
                           batch.qp, batch.lam, bits, batch.bit_depth, batch.sign_hiding)


class EncoderQuantizer:
    """A registry quantizer behind the picture encoder's per-call signature (encoder.py:
    ``quantize(coeffs, qp, log2, bit_depth, c_idx, scan_idx, sign_hiding)``), so that
    ``PictureEncoder(params, quantizer=EncoderQuantizer("rdoq", params.qp))`` needs no
    change in the encoder. Inside the encoder's search every call gets what the compiled
    RDOQ would use: the picture's quantizer lambda (``lam``, lambdas.SliceLambdas.quant of
    the picture's QP) and the contexts in ``live_ctx`` (the search's carried CABAC context
    array, or the slice's initial one), cut with the cbf context of the block's
    ``trafo_depth`` (``extract_rate_state``). Called on its own (no ``lam``, ``live_ctx``
    None) it uses ``qp_slice``'s I-slice lambdas and the I-slice initial contexts
    (``ctx_states``), cbf context of trafoDepth 0. Transform-skip blocks are not told apart
    (no quantizer here treats them differently).

    ``begin_picture(sl)`` is called by the picture encoder before it searches picture ``sl``
    (a params.SliceInfo), for wrappers that record per picture."""

    def __init__(self, name: str, qp_slice: int, *, ctx_states: np.ndarray | None = None,
                 **options) -> None:
        self.q = get_quantizer(name, **options)
        # the quantizers' lambdas do not depend on the bit depth (their SSE is in 8-bit units)
        self.lam = slice_lambdas(qp_slice, 8).quant
        self.state: list[np.ndarray] | None = None
        if self.q.needs_rate_state:
            if ctx_states is None:
                from codeclab.bitstream.cabac import init_contexts
                from codeclab.codecs.hevc.tables import INIT_VALUES_I

                ctx_states = init_contexts(INIT_VALUES_I, qp_slice)
            self.state = [extract_rate_state(ctx_states, None, c, 1 if c == 0 else 0)
                          for c in range(3)]
        self.live_ctx: np.ndarray | None = None
        self.calls = 0         # quantizer calls and (wall) seconds spent in them (benchmarks)
        self.seconds = 0.0

    def begin_picture(self, sl) -> None:
        """The encoder is about to search picture ``sl``; nothing to do here."""

    def quantize(self, coeffs: np.ndarray, qp: int, log2: int, bit_depth: int, c_idx: int,
                 scan_idx: int | np.ndarray, sign_hiding: bool, trafo_depth: int = 0,
                 lam: float | None = None) -> np.ndarray:
        """scan_idx: one for the batch or one per block; trafo_depth: the blocks' trafoDepth
        (picks the cbf context of the rate state when ``live_ctx`` is set); lam: the
        component's quantizer lambda (None: ``qp_slice``'s)."""
        t0 = time.perf_counter()
        nb = coeffs.shape[0]
        if self.state is None:
            ctx = None
        elif self.live_ctx is not None:
            cbf_inc = (1 if trafo_depth == 0 else 0) if c_idx == 0 else trafo_depth
            ctx = np.repeat(self.live_ctx[_live_index(c_idx, cbf_inc)][None].astype(np.uint8), nb, axis=0)
        else:
            ctx = np.repeat(self.state[c_idx][None], nb, axis=0)
        batch = QuantBatch(coeffs, log2, c_idx, scan_idx, qp, self.lam[c_idx] if lam is None else lam,
                           False, bit_depth, ctx, sign_hiding)
        out = self.q.quantize(batch)
        self.seconds += time.perf_counter() - t0
        self.calls += 1
        return out


@lru_cache(maxsize=None)
def _live_index(c_idx: int, cbf_ctx_inc: int) -> np.ndarray:
    """extract_rate_state's gather index for the encoder's own context layout (cached: the
    RD search asks for the current states at every quantizer call)."""
    return _gather_index(coder_offsets(), c_idx == 0, cbf_ctx_inc)


#: quantizers by name; the neural ones by "module:attribute", imported (with their
#: weights) only when built
_QUANTIZERS: Registry[Callable[..., Quantizer]] = Registry("quantizer", {
    "sq": SQQuantizer,
    "rdoq": RDOQQuantizer,
    "nrdoq-fcn": "codeclab.codecs.hevc.nrdoq.neural_quantizer:nrdoq_fcn",
    "nrdoq-ar": "codeclab.codecs.hevc.nrdoq.neural_quantizer:nrdoq_ar",
})


def register_quantizer(name: str, factory: Callable[..., Quantizer] | str) -> None:
    """Make ``get_quantizer(name, **options)`` build ``factory(**options)``; ``factory`` may
    be given as ``"package.module:attribute"``."""
    _QUANTIZERS.register(name, factory)


def available_quantizers() -> list[str]:
    return _QUANTIZERS.names()


def get_quantizer(name: str, **options) -> Quantizer:
    """A quantizer by name ("sq", "rdoq", ...); options go to its constructor."""
    factory = _QUANTIZERS.get(name)
    try:
        return factory(**options)
    except TypeError as e:
        raise UsageError(f"quantizer {name!r}: {e}") from None
