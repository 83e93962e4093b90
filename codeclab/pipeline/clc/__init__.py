"""``.clc``, our container for codecs without a standard stream (docs/container.md).

``container`` (the byte format: reader and writer; base layer types only), ``source``
(a ``.clc`` file as a video source, decoded by the codec its header names), ``sink``
(packets of a codec into a ``.clc`` file), ``decode`` (a ``.clc`` file to pictures).
"""
