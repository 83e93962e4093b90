"""The pipeline layer: frames moving between files and codecs.

``io/`` (sources per kind, sinks, PyAV frame helpers), ``clc/`` (our container: its byte
format and the source, sink and decoder that put codecs behind it), ``metrics``
(PSNR, MS-SSIM, per-frame logs), ``compare`` (two videos frame by frame), ``transcode``
(the per-frame coding loop), ``frame_parallel`` (its encoding in worker processes for
codecs whose pictures are independent), ``demo``.
"""
