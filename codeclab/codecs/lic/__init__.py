"""Learned intra codec ``lic``: MSP probability model, gain-unit variable rate, LOF.

Importing this package registers the codec (see :mod:`.codec`)."""

from .codec import LicDecoder, LicEncoder, LicOptions, load_model

__all__ = ["LicEncoder", "LicDecoder", "LicOptions", "load_model"]
