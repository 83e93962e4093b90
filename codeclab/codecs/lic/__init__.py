"""Learned intra codec ``lic``: MSP probability model, gain-unit variable rate, LOF.

The registry names this package's :data:`SPEC` (see :mod:`.codec`)."""

from codeclab.codecs.lic.codec import SPEC, LicDecoder, LicEncoder, LicOptions, load_model

__all__ = ["SPEC", "LicEncoder", "LicDecoder", "LicOptions", "load_model"]
