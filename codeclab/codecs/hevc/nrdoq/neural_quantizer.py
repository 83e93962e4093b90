"""``nrdoq-fcn`` / ``nrdoq-ar``: the trained networks as quantizers (quantizer.Quantizer).

Per batch: HM's SQ levels and the features (features.py), the network's class per active
coefficient (keep / minus1 / zero / plus1, masked to RDOQ's candidates), the changed levels
with the coefficients' signs, then HM's signBitHidingHDQ (``quantizer.sign_hiding_hdq``,
the one implementation) so the levels satisfy the parity rule and the stream stays valid.
The FCN runs in torch (one forward pass per batch; small batches in numba, same
arithmetic in float32), the AR network in numba (one call per
batch; per block a reverse-scan loop over its active coefficients computing their
inputs and the MLP inline).
Both read the CABAC rate state (``needs_rate_state = True``): the bits of the block's
current contexts are inputs (features.py, group "rate"). This object is what users and
the training scripts call; the encoder's search runs the same numba kernels compiled
(``tb_coding``, weights from :meth:`NRDOQQuantizer.kernel_weights`), never calling back.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from codeclab.base.errors import InputError, UsageError
from codeclab.codecs.hevc.nrdoq.features import (
    N_LOCAL,
    N_STATE,
    apply_classes,
    ar_infer,
    block_features,
    drop_channels,
    fcn_infer,
    scaled_and_sq,
    valid_mask,
)
from codeclab.codecs.hevc.quantizer import QuantBatch, sign_hiding_hdq
from codeclab.codecs.hevc.scan import scan_tables

__all__ = ["NRDOQQuantizer", "nrdoq_fcn", "nrdoq_ar", "WEIGHTS_DIR", "default_weights", "load_weights"]

#: batches of at most this many blocks run the FCN in numba: torch's per-call overhead
#: dominates a single block (numba 124 / 125 / 219 / 529 us vs torch 205 / 218 / 277 / 530 us
#: for n = 4..32), while torch is 2-9x faster per block on batches of 4096 coefficients
NUMBA_FCN_MAX = 1

WEIGHTS_DIR = Path(__file__).resolve().parent / "weights"


def default_weights(kind: str) -> Path:
    return WEIGHTS_DIR / f"nrdoq_{kind}.npz"


def load_weights(path: Path) -> dict:
    """The exported .npz: kind, width, dropped input groups, float32 state dict."""
    p = Path(path)
    if not p.is_file():
        raise InputError(f"{p}: nrdoq weights not found (train with `codeclab nrdoq train ... --export`)")
    try:
        with np.load(p) as z:
            w = {k[2:]: z[k] for k in z.files if k.startswith("w.")}
            return {"kind": str(z["kind"]), "width": int(z["width"]),
                    "drop": [g for g in str(z["drop"]).split(",") if g], "state": w}
    except (OSError, KeyError, ValueError) as e:
        raise InputError(f"{p}: not an nrdoq weights file ({e})") from None


class NRDOQQuantizer:
    """A trained nrdoq network behind the quantizer interface.

    kind: "fcn" or "ar"; weights: an exported .npz (default: the shipped one)."""

    needs_rate_state = True

    def __init__(self, kind: str, weights: str | Path | None = None) -> None:
        if kind not in ("fcn", "ar"):
            raise UsageError(f"nrdoq: unknown network {kind!r} (fcn, ar)")
        w = load_weights(Path(weights) if weights else default_weights(kind))
        if w["kind"] != kind:
            raise UsageError(f"nrdoq-{kind}: weights {weights} are for nrdoq-{w['kind']}")
        self.name = f"nrdoq-{kind}"
        self.kind = kind
        self.drop_idx = drop_channels(w["drop"])
        st = w["state"]
        n_in = st["net.0.weight"].shape[1]
        want = N_LOCAL if kind == "fcn" else N_LOCAL + N_STATE
        if n_in != want:  # e.g. weights from before the rate inputs (25 local channels)
            raise UsageError(f"nrdoq-{kind}: weights {weights or default_weights(kind)} take {n_in} inputs, "
                             f"this version's features are {want}; retrain them (codeclab nrdoq train)")
        if kind == "fcn":
            self.width = w["width"]
            self.state = st
            self._model = None  # the torch module, built for the first batch too big for numba
            self.conv = tuple(np.ascontiguousarray(st[f"net.{i}.{k}"], np.float32)
                              for i in (0, 2, 4, 6) for k in ("weight", "bias"))
        else:
            w1 = np.array(st["net.0.weight"].T, np.float32)
            w1[self.drop_idx] = 0.0  # dropped inputs (also the running state's) read as zeros
            self.mlp = tuple(np.ascontiguousarray(a, np.float32) for a in (
                w1, st["net.0.bias"], st["net.2.weight"].T, st["net.2.bias"],
                st["net.4.weight"].T, st["net.4.bias"]))

    def kernel_weights(self) -> tuple[np.ndarray, ...]:
        """The float32 arrays the numba kernel takes (features.ar_infer / fcn_infer), the
        ablation's dropped inputs zeroed in the first layer: what the compiled search runs."""
        if self.kind == "ar":
            return self.mlp
        w0 = self.conv[0].copy()
        w0[:, [i for i in self.drop_idx if i < N_LOCAL]] = 0.0
        return (w0,) + self.conv[1:]

    def classes(self, batch: QuantBatch) -> tuple[np.ndarray, np.ndarray]:
        """(class per coefficient (B, n, n), |SQ level| (B, n, n)) for a batch."""
        if batch.ctx is None:
            raise UsageError(f"{self.name}: the batch carries no CABAC rate state (ctx)")
        nb, n = batch.coeffs.shape[0], 1 << batch.log2_size
        if self.kind == "ar":  # features computed inside the kernel, for the active coefficients
            per = [np.ascontiguousarray(np.broadcast_to(np.asarray(v, np.int64), (nb,)))
                   for v in (batch.qp, batch.c_idx, batch.scan_idx)]
            a, sq = scaled_and_sq(batch.coeffs, per[0], batch.log2_size, batch.bit_depth)
            scans, _ = scan_tables(batch.log2_size)
            cls = np.zeros((nb, n * n), np.int64)
            ar_infer(a, sq, scans, per[2], batch.log2_size, per[0], per[1],
                     np.ascontiguousarray(batch.ctx, dtype=np.int64), *self.mlp, cls)
            return cls.reshape(nb, n, n), sq.reshape(nb, n, n)
        feat, a, sq = block_features(batch.coeffs, batch.log2_size, np.asarray(batch.qp),
                                     np.asarray(batch.c_idx), np.asarray(batch.scan_idx), batch.ctx,
                                     batch.bit_depth)
        if self.drop_idx:
            feat[:, [i for i in self.drop_idx if i < N_LOCAL]] = 0.0
        if nb <= NUMBA_FCN_MAX:
            cls = np.zeros((nb, n, n), np.int64)
            fcn_infer(feat, a, sq, *self.conv, cls)
        else:
            import torch

            if self._model is None:
                from codeclab.codecs.hevc.nrdoq.models import build

                self._model = build("fcn", self.width)
                self._model.load_state_dict({k: torch.from_numpy(v) for k, v in self.state.items()})
                self._model.eval()
            threads = torch.get_num_threads()
            torch.set_num_threads(1)  # a few-thousand-parameter net: more threads only contend
            try:
                with torch.inference_mode():
                    logits = self._model(torch.from_numpy(feat)).permute(0, 2, 3, 1).numpy()
            finally:
                torch.set_num_threads(threads)
            logits = np.where(valid_mask(a, sq), logits, -np.inf)
            cls = logits.argmax(-1)
            cls[(sq == 0) & (np.floor(a + 0.5) == 0)] = 0
        return cls, sq

    def quantize(self, batch: QuantBatch) -> np.ndarray:
        cls, sq = self.classes(batch)
        lv = apply_classes(sq, cls)
        lv = np.where(np.asarray(batch.coeffs) < 0, -lv, lv).astype(np.int32)
        if batch.sign_hiding:
            lv = sign_hiding_hdq(lv, batch.coeffs, batch.log2_size, batch.scan_idx, batch.qp, batch.bit_depth)
        return lv


def nrdoq_fcn(weights: str | Path | None = None) -> NRDOQQuantizer:
    """``nrdoq-fcn`` of the quantizer registry."""
    return NRDOQQuantizer("fcn", weights)


def nrdoq_ar(weights: str | Path | None = None) -> NRDOQQuantizer:
    """``nrdoq-ar`` of the quantizer registry."""
    return NRDOQQuantizer("ar", weights)
