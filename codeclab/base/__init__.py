"""The base layer: what every other layer shares, depending on nothing of codeclab's.

``frame`` (Frame, VideoFormat), ``packet`` (Packet), ``errors`` (the error classes the CLI
prints as one line), ``atomic`` (temporary name + rename for small outputs), ``convert``
(RGB->YUV, bit depth, colour-matrix names), ``registry`` (name -> object registries with
lazy ``"module:attribute"`` entries), ``pool`` (process pools that leave no orphans, and an
ordered, bounded map over them). Nothing heavy is imported here.
"""
