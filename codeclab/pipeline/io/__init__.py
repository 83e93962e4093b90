"""Reading and writing video files.

``sources`` (the Source interface, frame ranges, the opener registry) and one module per
kind of source: ``pyav_source`` (anything FFmpeg reads), ``raw_source`` (``.yuv``, with
``jvet_names``), ``y4m_source``, ``vapoursynth_io`` (``.vpy`` scripts and VapourSynth
frames); ``sinks`` (``.yuv``/``.y4m``/FFV1 and muxed H.264/HEVC); ``avframes`` (numpy
planes <-> PyAV frames, swscale). The ``.clc`` source lives with its format in ``../clc``.
"""
