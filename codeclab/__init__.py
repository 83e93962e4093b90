"""codeclab: a video coding lab.

The top level stays light on purpose: importing ``codeclab`` pulls in neither torch,
numba nor vapoursynth. Import the layer you need (``codeclab.pipeline.io.sources``,
``codeclab.codecs``...).
"""

__version__ = "0.1.0"
__all__ = ["__version__"]
