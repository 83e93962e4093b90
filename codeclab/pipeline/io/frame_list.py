"""What each coded picture of a compressed video file is: ``codeclab info --frames``.

Packets are read in decoding order and given their decoding index as timestamp before
FFmpeg decodes them; the decoder carries a packet's timestamp to the picture it returns, in
presentation order, so every picture is matched to its own packet even in raw streams with
reordered B pictures and no timestamps at all.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from codeclab.base.errors import InputError
from codeclab.codecs.ffmpeg import PICT_TYPES
from codeclab.pipeline.io.avframes import ffmpeg_msg

__all__ = ["CodedPicture", "list_frames"]


@dataclass(frozen=True)
class CodedPicture:
    """One picture in presentation order."""

    index: int            # presentation order
    decode_index: int     # decoding order (its packet's position in the file)
    pict_type: str        # I / P / B as the decoder reports it
    key: bool             # the packet is a random access point
    bits: int             # size of its packet
    time: float | None    # presentation time in seconds (None: the file has no timestamps)


def list_frames(path: str | os.PathLike[str]) -> list[CodedPicture]:
    """Every picture of the file's first video stream, in presentation order."""
    import av

    p = Path(path)
    try:
        container = av.open(str(p), "r")
    except av.FFmpegError as e:
        raise InputError(f"{p}: not a video file, or damaged ({ffmpeg_msg(e)})") from None
    with container:
        if not container.streams.video:
            raise InputError(f"{p}: not a video file (no video stream)")
        stream = container.streams.video[0]
        tb = stream.time_base
        packets: list[tuple[int, bool, int | None]] = []  # bits, key, original pts
        out: list[CodedPicture] = []

        def take(frames: list) -> None:
            for f in frames:
                k = int(f.pts)
                bits, key, pts = packets[k]
                out.append(CodedPicture(len(out), k, PICT_TYPES.get(int(f.pict_type), "?"), key, bits,
                                        float(pts * tb) if pts is not None and tb is not None else None))

        try:
            cc = stream.codec_context
            for pkt in container.demux(stream):
                if not pkt.size:
                    continue
                packets.append((8 * pkt.size, bool(pkt.is_keyframe), pkt.pts))
                pkt.pts = pkt.dts = len(packets) - 1
                take(cc.decode(pkt))
            take(cc.decode(None))
        except av.FFmpegError as e:
            raise InputError(f"{p}: cannot decode picture {len(out)} ({ffmpeg_msg(e)})") from None
    return out
