"""Learned intra codec ``overfit``: each picture codes its own latent pyramid and tiny decoder
(Cool-chic / C3 class), with a multi-scale progressive probability model.

The registry names this package's :data:`SPEC` (see :mod:`.codec`); importing it loads
neither torch nor numba (the encoder and decoder import them when they run).
"""

from codeclab.codecs.overfit.codec import SPEC, OverfitDecoder, OverfitEncoder, OverfitOptions

__all__ = ["SPEC", "OverfitEncoder", "OverfitDecoder", "OverfitOptions"]
