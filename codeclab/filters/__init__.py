"""The filters layer: codecs and metrics as VapourSynth filters (``vs``)."""
