"""What each latent's probability is conditioned on: the two context orders.

Both orders decode the grids coarsest first and give the same MLP the same number of
inputs (:data:`N_CTX` = 21), so they differ only in what of the *same* grid is known:

- **msp** (multi-scale progressive): a grid is decoded in 4 polyphase stages, (even, even),
  (odd, odd), (even, odd), (odd, even) rows/columns. A latent sees the 8 neighbours of its
  3x3 window that earlier stages decoded (zero where not yet decoded; which ones is fixed
  per stage) and a one-hot of its stage: 12 inputs. Decoding takes ``4 * grids`` steps,
  each one batched over every latent of the stage, whatever the picture size.
- **ar** (raster auto-regressive, Cool-chic's order): a latent sees the 12 causal
  neighbours of its 5x5 window (two rows above, two to the left): one step per latent.

Both add the 3x3 window of the coarser grid around the latent's parent (zeros for the
coarsest grid): 9 inputs. Grid ``l`` channel ``c`` takes its parent from channel
``c mod channels[l+1]``. Outside the grid everything reads zero.

The functions here build the contexts in integers from a partly decoded grid (decoding,
and the encoder's final pass); :func:`.model.context_tensors` builds the same numbers for
every latent at once in torch (training: what is masked is never looked at).
"""

from __future__ import annotations

import numpy as np

from codeclab.codecs.overfit.config import N_CTX

__all__ = ["N_CTX", "STAGES", "NEIGHBOURS", "MSP_AVAILABLE", "AR_OFFSETS", "stage_context", "parent_context",
           "ar_context_at", "ar_contexts"]

#: the 4 polyphase stages of the msp order: (row parity, column parity)
STAGES = ((0, 0), (1, 1), (0, 1), (1, 0))
NEIGHBOURS = tuple((dy, dx) for dy in (-1, 0, 1) for dx in (-1, 0, 1) if (dy, dx) != (0, 0))


def _stage_of(py: int, px: int) -> int:
    return STAGES.index((py % 2, px % 2))


#: per stage, whether each of the 8 neighbours (row-major, centre left out) is decoded
MSP_AVAILABLE = tuple(
    tuple(_stage_of(py + dy, px + dx) < s for dy, dx in NEIGHBOURS) for s, (py, px) in enumerate(STAGES))
#: the 12 causal neighbours of the raster order in a 5x5 window
AR_OFFSETS = tuple((dy, dx) for dy in (-2, -1) for dx in range(-2, 3)) + ((0, -2), (0, -1))


# ---------------------------------------------------------------------------------------
# numpy, integers: what the decoder knows


def parent_context(parent: np.ndarray | None, c: int, h: int, w: int) -> np.ndarray:
    """(c, 9, h, w) int64 parent windows (numpy twin of the torch version)."""
    if parent is None:
        return np.zeros((c, 9, h, w), np.int64)
    cp = parent.shape[0]
    par = parent[[ch % cp for ch in range(c)]]
    p = np.pad(par, ((0, 0), (1, 1), (1, 1)))
    hp, wp = par.shape[1], par.shape[2]
    wins = np.stack([p[:, 1 + dy:1 + dy + hp, 1 + dx:1 + dx + wp] for dy in (-1, 0, 1) for dx in (-1, 0, 1)], 1)
    return wins.repeat(2, axis=-2).repeat(2, axis=-1)[:, :, :h, :w].astype(np.int64)


def stage_context(grid: np.ndarray, par: np.ndarray, s: int) -> np.ndarray:
    """(N, 21) int64 contexts of stage ``s`` of a partly decoded grid (c, h, w)."""
    c, h, w = grid.shape
    py, px = STAGES[s]
    rows, ncol = (h - py + 1) // 2, (w - px + 1) // 2
    p = np.pad(grid, ((0, 0), (1, 1), (1, 1)))
    cols = []
    for k, (dy, dx) in enumerate(NEIGHBOURS):
        if MSP_AVAILABLE[s][k]:
            cols.append(p[:, 1 + dy + py:1 + dy + h:2, 1 + dx + px:1 + dx + w:2])
        else:
            cols.append(np.zeros((c, rows, ncol), np.int64))
    for k in range(4):
        cols.append(np.full((c, rows, ncol), 1 if k == s else 0, np.int64))
    ctx = np.concatenate([np.stack(cols, 1), par[:, :, py::2, px::2]], 1)
    return np.ascontiguousarray(ctx.transpose(0, 2, 3, 1).reshape(-1, N_CTX)).astype(np.int64)


def ar_context_at(grid: np.ndarray, par: np.ndarray, ch: int, y: int, x: int) -> np.ndarray:
    """(21,) int64 context of one latent in raster order (the grid decoded up to it)."""
    _, h, w = grid.shape
    out = np.zeros(N_CTX, np.int64)
    for k, (dy, dx) in enumerate(AR_OFFSETS):
        yy, xx = y + dy, x + dx
        if 0 <= yy < h and 0 <= xx < w:
            out[k] = grid[ch, yy, xx]
    out[12:] = par[ch, :, y, x]
    return out


def ar_contexts(grid: np.ndarray, par: np.ndarray) -> np.ndarray:
    """Every latent's raster-order context at once (the encoder knows the whole grid)."""
    c, h, w = grid.shape
    p = np.pad(grid, ((0, 0), (2, 2), (2, 2)))
    cols = [p[:, 2 + dy:2 + dy + h, 2 + dx:2 + dx + w] for dy, dx in AR_OFFSETS]
    ctx = np.concatenate([np.stack(cols, 1), par], 1)
    return np.ascontiguousarray(ctx.transpose(0, 2, 3, 1).reshape(-1, N_CTX)).astype(np.int64)
