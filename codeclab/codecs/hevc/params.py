"""Parameter sets and slice segment headers of our HEVC streams (7.3.2, 7.3.6).

Main (8-bit) or Main 10, 4:2:0, one slice per picture. All-intra streams: every picture is
an IDR (IDR_N_LP) preceded by VPS/SPS/PPS, so each access unit decodes on its own (random
access to any frame, trivial cutting) and POC is 0 for each. Streams with P / B pictures
(``StreamParams.max_refs`` > 0): IRAP pictures (IDR, CRA) carry the parameter sets, the
others are TRAIL_R or (leading pictures of a CRA) RASL_R with their reference picture set
in the slice header (:class:`SliceInfo`: no RPS in the SPS, short-term references only,
no list modification, every picture in temporal sub-layer 0). Presentation times come from
the container (or, for raw .hevc, from the VUI frame rate, which FFmpeg reads as the stream
rate).
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction

from codeclab.base.errors import FormatError
from codeclab.bitstream.bitwriter import BitWriter
from codeclab.bitstream.nal import NAL_CRA, NAL_IDR_N_LP, NAL_PPS, NAL_SPS, NAL_TRAIL_R, NAL_VPS, nal_unit
from codeclab.codecs.hevc.scalar_quant import check_qp

__all__ = ["StreamParams", "SliceInfo", "pick_level", "vps_rbsp", "sps_rbsp", "pps_rbsp",
           "slice_header_bits", "parameter_set_nals", "MAX_MERGE_CAND"]

#: MaxNumMergeCand of every P slice (five_minus_max_num_merge_cand = 0, as HM)
MAX_MERGE_CAND = 5

# Table A.8: level -> (MaxLumaPs, MaxLumaSr); general_level_idc = 30 * level
_LEVELS = [
    (1.0, 36864, 552960), (2.0, 122880, 3686400), (2.1, 245760, 7372800),
    (3.0, 552960, 16588800), (3.1, 983040, 33177600), (4.0, 2228224, 66846720),
    (4.1, 2228224, 133693440), (5.0, 8912896, 267386880), (5.1, 8912896, 534773760),
    (5.2, 8912896, 1069547520), (6.0, 35651584, 1069547520), (6.1, 35651584, 2139095040),
    (6.2, 35651584, 4278190080),
]


def pick_level(width: int, height: int, fps: Fraction) -> int:
    """Smallest general_level_idc whose picture size (A.4.1: area, and each side at most
    sqrt(8 * MaxLumaPs)) and luma sample rate admit the stream (bit rate not checked)."""
    area = width * height
    for level, max_ps, max_sr in _LEVELS:
        side = int((8 * max_ps) ** 0.5)
        if area <= max_ps and width <= side and height <= side and area * float(fps) <= max_sr:
            return int(round(level * 30))
    return 186  # level 6.2


@dataclass(frozen=True)
class StreamParams:
    """Everything the headers depend on."""

    width: int              # conformance (output) size
    height: int
    bit_depth: int          # 8 (Main) or 10 (Main 10), luma and chroma alike
    log2_ctb: int           # 4, 5, 6
    max_tu_depth: int       # max_transform_hierarchy_depth_intra
    qp: int                 # SliceQpY (init_qp_minus26 = qp - 26, slice_qp_delta = 0)
    fps: Fraction
    sign_hiding: bool
    transform_skip: bool
    deblock: bool
    sao: bool
    md5: bool = False       # decoded picture hash SEI (MD5) after each slice (sei.py)
    max_refs: int = 0       # sps_max_dec_pic_buffering_minus1; 0: all-intra
    max_reorder: int = 0    # sps_max_num_reorder_pics (random access)
    tmvp: bool = True       # temporal motion vector prediction (streams with P pictures)

    @property
    def coded_width(self) -> int:
        return -(-self.width // 8) * 8

    @property
    def coded_height(self) -> int:
        return -(-self.height // 8) * 8

    @property
    def max_tu_depth_inter(self) -> int:
        """max_transform_hierarchy_depth_inter: HM's QuadtreeTUMaxDepthInter 3, signalled
        minus one, in streams with P pictures (0 in all-intra streams, where it is unused)."""
        return 2 if self.max_refs else 0

    @property
    def log2_max_tb(self) -> int:
        return min(5, self.log2_ctb)

    def check(self) -> None:
        if self.bit_depth not in (8, 10):
            raise FormatError(f"hevc: bit depth {self.bit_depth} not supported (Main / Main 10 only)")
        if self.log2_ctb not in (4, 5, 6):
            raise FormatError(f"hevc: CTB size {1 << self.log2_ctb} not in 16/32/64")
        check_qp(self.qp, self.bit_depth)
        if not 0 <= self.max_tu_depth <= self.log2_ctb - 2:
            raise FormatError(f"hevc: max_tu_depth {self.max_tu_depth} outside 0..{self.log2_ctb - 2}")
        if not 0 <= self.max_reorder <= self.max_refs <= 15:
            raise FormatError(f"hevc: decoded picture buffer of {self.max_refs + 1} pictures with "
                              f"{self.max_reorder} reordered (need 0 <= reordered < size <= 16)")


@dataclass(frozen=True)
class SliceInfo:
    """What the slice header of one picture says: its type, POC, QP and references.

    refs: POC deltas of the pictures it references (used_by_curr_pic: negative ones
    precede it in output order, positive ones follow); keep: further deltas the RPS keeps
    for later pictures (used_by_curr_pic 0); num_ref: num_ref_idx_l0 / l1_active (None:
    every reference in list 0 of a P slice, in both lists of a B slice). An I picture with
    ``idr`` starts a new coded video sequence; ``nal`` overrides the NAL unit type (CRA for
    an I picture that keeps pictures for its leading ones, RASL_R for those)."""

    slice_type: str             # "I", "P" or "B"
    poc: int
    qp: int
    idr: bool = True
    refs: tuple[int, ...] = ()
    keep: tuple[int, ...] = ()
    num_ref: tuple[int, int] | None = None
    nal: int | None = None

    @property
    def nal_type(self) -> int:
        if self.nal is not None:
            return self.nal
        return NAL_IDR_N_LP if self.idr else NAL_TRAIL_R

    @property
    def irap(self) -> bool:
        """An IDR or CRA picture: it carries the parameter sets."""
        return self.idr or self.nal == NAL_CRA

    def num_active(self, lx: int) -> int:
        """num_ref_idx_lX_active of the slice (0 for lists it does not have)."""
        if self.slice_type == "I" or (lx == 1 and self.slice_type == "P"):
            return 0
        return self.num_ref[lx] if self.num_ref is not None else len(self.refs)

    def ref_list(self, lx: int) -> tuple[int, ...]:
        """POC deltas of RefPicListX (8.3.4): the preceding references closest first then the
        following ones (list 1: the other way round), cycled up to num_ref_idx_lX_active."""
        before = sorted((d for d in self.refs if d < 0), reverse=True)
        after = sorted(d for d in self.refs if d > 0)
        cur = before + after if lx == 0 else after + before
        n = self.num_active(lx)
        return tuple(cur[i % len(cur)] for i in range(n)) if cur else ()


def _profile_tier_level(w: BitWriter, p: StreamParams) -> None:
    """profile_tier_level(1, 0) (7.3.3)."""
    idc = 1 if p.bit_depth == 8 else 2
    w.u(2, 0)          # general_profile_space
    w.u(1, 0)          # general_tier_flag (Main tier)
    w.u(5, idc)        # general_profile_idc
    for j in range(32):  # Main streams are also Main 10 streams
        w.u(1, 1 if (j == idc or (idc == 1 and j == 2)) else 0)
    w.u(1, 1)          # general_progressive_source_flag
    w.u(1, 0)          # general_interlaced_source_flag
    w.u(1, 0)          # general_non_packed_constraint_flag
    w.u(1, 1)          # general_frame_only_constraint_flag
    w.u(32, 0)         # general_reserved_zero_43bits (32 + 11)
    w.u(11, 0)
    w.u(1, 0)          # general_inbld_flag / reserved
    w.u(8, pick_level(p.coded_width, p.coded_height, p.fps))


def vps_rbsp(p: StreamParams) -> bytes:
    w = BitWriter()
    w.u(4, 0)          # vps_video_parameter_set_id
    w.u(1, 1)          # vps_base_layer_internal_flag
    w.u(1, 1)          # vps_base_layer_available_flag
    w.u(6, 0)          # vps_max_layers_minus1
    w.u(3, 0)          # vps_max_sub_layers_minus1
    w.u(1, 1)          # vps_temporal_id_nesting_flag
    w.u(16, 0xFFFF)    # vps_reserved_0xffff_16bits
    _profile_tier_level(w, p)
    w.u(1, 1)          # vps_sub_layer_ordering_info_present_flag
    w.ue(p.max_refs)   # vps_max_dec_pic_buffering_minus1
    w.ue(p.max_reorder)  # vps_max_num_reorder_pics
    w.ue(0)            # vps_max_latency_increase_plus1
    w.u(6, 0)          # vps_max_layer_id
    w.ue(0)            # vps_num_layer_sets_minus1
    w.u(1, 0)          # vps_timing_info_present_flag
    w.u(1, 0)          # vps_extension_flag
    w.trailing_bits()
    return w.getvalue()


def _vui(w: BitWriter, p: StreamParams) -> None:
    """vui_parameters() (E.2.1) carrying only the timing: time_scale / num_units_in_tick."""
    w.u(1, 0)  # aspect_ratio_info_present_flag
    w.u(1, 0)  # overscan_info_present_flag
    w.u(1, 0)  # video_signal_type_present_flag
    w.u(1, 0)  # chroma_loc_info_present_flag
    w.u(1, 0)  # neutral_chroma_indication_flag
    w.u(1, 0)  # field_seq_flag
    w.u(1, 0)  # frame_field_info_present_flag
    w.u(1, 0)  # default_display_window_flag
    fps = Fraction(p.fps)
    timing = fps > 0 and fps.numerator < 2**32 and fps.denominator < 2**32
    w.u(1, 1 if timing else 0)  # vui_timing_info_present_flag
    if timing:
        w.u(32, fps.denominator)  # vui_num_units_in_tick
        w.u(32, fps.numerator)    # vui_time_scale
        w.u(1, 0)  # vui_poc_proportional_to_timing_flag
        w.u(1, 0)  # vui_hrd_parameters_present_flag
    w.u(1, 0)  # bitstream_restriction_flag


def sps_rbsp(p: StreamParams) -> bytes:
    w = BitWriter()
    w.u(4, 0)          # sps_video_parameter_set_id
    w.u(3, 0)          # sps_max_sub_layers_minus1
    w.u(1, 1)          # sps_temporal_id_nesting_flag
    _profile_tier_level(w, p)
    w.ue(0)            # sps_seq_parameter_set_id
    w.ue(1)            # chroma_format_idc (4:2:0)
    w.ue(p.coded_width)
    w.ue(p.coded_height)
    crop_r, crop_b = p.coded_width - p.width, p.coded_height - p.height
    if crop_r or crop_b:
        if crop_r % 2 or crop_b % 2:
            raise FormatError(f"hevc: 4:2:0 picture size {p.width}x{p.height} must be even")
        w.u(1, 1)      # conformance_window_flag; offsets in chroma samples (SubWidthC = 2)
        w.ue(0)
        w.ue(crop_r // 2)
        w.ue(0)
        w.ue(crop_b // 2)
    else:
        w.u(1, 0)
    w.ue(p.bit_depth - 8)  # bit_depth_luma_minus8
    w.ue(p.bit_depth - 8)  # bit_depth_chroma_minus8
    w.ue(4)            # log2_max_pic_order_cnt_lsb_minus4
    w.u(1, 1)          # sps_sub_layer_ordering_info_present_flag
    w.ue(p.max_refs)   # sps_max_dec_pic_buffering_minus1
    w.ue(p.max_reorder)  # sps_max_num_reorder_pics
    w.ue(0)            # sps_max_latency_increase_plus1
    w.ue(0)            # log2_min_luma_coding_block_size_minus3 (8x8)
    w.ue(p.log2_ctb - 3)   # log2_diff_max_min_luma_coding_block_size
    w.ue(0)            # log2_min_luma_transform_block_size_minus2 (4x4)
    w.ue(p.log2_max_tb - 2)  # log2_diff_max_min_luma_transform_block_size
    w.ue(p.max_tu_depth_inter)  # max_transform_hierarchy_depth_inter
    w.ue(p.max_tu_depth)     # max_transform_hierarchy_depth_intra
    w.u(1, 0)          # scaling_list_enabled_flag
    w.u(1, 0)          # amp_enabled_flag
    w.u(1, 1 if p.sao else 0)  # sample_adaptive_offset_enabled_flag
    w.u(1, 0)          # pcm_enabled_flag
    w.ue(0)            # num_short_term_ref_pic_sets
    w.u(1, 0)          # long_term_ref_pics_present_flag
    w.u(1, 1 if (p.tmvp and p.max_refs) else 0)  # sps_temporal_mvp_enabled_flag
    w.u(1, 1)          # strong_intra_smoothing_enabled_flag
    w.u(1, 1)          # vui_parameters_present_flag
    _vui(w, p)
    w.u(1, 0)          # sps_extension_present_flag
    w.trailing_bits()
    return w.getvalue()


def pps_rbsp(p: StreamParams) -> bytes:
    w = BitWriter()
    w.ue(0)            # pps_pic_parameter_set_id
    w.ue(0)            # pps_seq_parameter_set_id
    w.u(1, 0)          # dependent_slice_segments_enabled_flag
    w.u(1, 0)          # output_flag_present_flag
    w.u(3, 0)          # num_extra_slice_header_bits
    w.u(1, 1 if p.sign_hiding else 0)  # sign_data_hiding_enabled_flag
    w.u(1, 0)          # cabac_init_present_flag
    w.ue(0)            # num_ref_idx_l0_default_active_minus1
    w.ue(0)            # num_ref_idx_l1_default_active_minus1
    w.se(p.qp - 26)    # init_qp_minus26
    w.u(1, 0)          # constrained_intra_pred_flag
    w.u(1, 1 if p.transform_skip else 0)  # transform_skip_enabled_flag
    w.u(1, 0)          # cu_qp_delta_enabled_flag
    w.se(0)            # pps_cb_qp_offset
    w.se(0)            # pps_cr_qp_offset
    w.u(1, 0)          # pps_slice_chroma_qp_offsets_present_flag
    w.u(1, 0)          # weighted_pred_flag
    w.u(1, 0)          # weighted_bipred_flag
    w.u(1, 0)          # transquant_bypass_enabled_flag
    w.u(1, 0)          # tiles_enabled_flag
    w.u(1, 0)          # entropy_coding_sync_enabled_flag
    w.u(1, 0)          # pps_loop_filter_across_slices_enabled_flag
    w.u(1, 1)          # deblocking_filter_control_present_flag
    w.u(1, 0)          # deblocking_filter_override_enabled_flag
    w.u(1, 0 if p.deblock else 1)  # pps_deblocking_filter_disabled_flag
    if p.deblock:
        w.se(0)        # pps_beta_offset_div2
        w.se(0)        # pps_tc_offset_div2
    w.u(1, 0)          # pps_scaling_list_data_present_flag
    w.u(1, 0)          # lists_modification_present_flag
    w.ue(0)            # log2_parallel_merge_level_minus2
    w.u(1, 0)          # slice_segment_header_extension_present_flag
    w.u(1, 0)          # pps_extension_present_flag
    w.trailing_bits()
    return w.getvalue()


def slice_header_bits(p: StreamParams, sao_luma: bool, sao_chroma: bool,
                      sl: SliceInfo | None = None) -> bytes:
    """slice_segment_header() + byte_alignment() (7.3.6.1) of the picture ``sl`` (None: an
    IDR I slice at the stream QP, as every picture of an all-intra stream)."""
    if sl is None:
        sl = SliceInfo("I", 0, p.qp)
    w = BitWriter()
    w.u(1, 1)          # first_slice_segment_in_pic_flag
    if sl.irap:
        w.u(1, 0)      # no_output_of_prior_pics_flag
    w.ue(0)            # slice_pic_parameter_set_id
    w.ue({"B": 0, "P": 1, "I": 2}[sl.slice_type])  # slice_type
    tmvp = p.tmvp and p.max_refs > 0
    inter = sl.slice_type != "I"
    if not sl.idr:
        w.u(8, sl.poc & 255)  # slice_pic_order_cnt_lsb (log2_max_pic_order_cnt_lsb = 8)
        w.u(1, 0)      # short_term_ref_pic_set_sps_flag: the RPS follows (st_ref_pic_set(0))
        rps = set(sl.refs) | set(sl.keep)
        neg = sorted((d for d in rps if d < 0), reverse=True)
        pos = sorted(d for d in rps if d > 0)
        w.ue(len(neg))  # num_negative_pics
        w.ue(len(pos))  # num_positive_pics
        prev = 0
        for d in neg:
            w.ue(prev - d - 1)  # delta_poc_s0_minus1
            w.u(1, 1 if d in sl.refs else 0)  # used_by_curr_pic_s0_flag
            prev = d
        prev = 0
        for d in pos:
            w.ue(d - prev - 1)  # delta_poc_s1_minus1
            w.u(1, 1 if d in sl.refs else 0)  # used_by_curr_pic_s1_flag
            prev = d
        if tmvp:
            w.u(1, 1 if inter else 0)  # slice_temporal_mvp_enabled_flag
    if p.sao:
        w.u(1, 1 if sao_luma else 0)
        w.u(1, 1 if sao_chroma else 0)
    if inter:
        n0, n1 = sl.num_active(0), sl.num_active(1)
        w.u(1, 1)      # num_ref_idx_active_override_flag
        w.ue(n0 - 1)   # num_ref_idx_l0_active_minus1
        if sl.slice_type == "B":
            w.ue(n1 - 1)  # num_ref_idx_l1_active_minus1
            w.u(1, 0)     # mvd_l1_zero_flag
        if tmvp:
            # the collocated picture: RefPicList1[0] in B slices, RefPicList0[0] in P slices
            if sl.slice_type == "B":
                w.u(1, 0)  # collocated_from_l0_flag
            if (n1 if sl.slice_type == "B" else n0) > 1:
                w.ue(0)    # collocated_ref_idx
        w.ue(5 - MAX_MERGE_CAND)  # five_minus_max_num_merge_cand
    w.se(sl.qp - p.qp)  # slice_qp_delta
    w.byte_alignment()
    return w.getvalue()


def parameter_set_nals(p: StreamParams) -> list[bytes]:
    """VPS, SPS and PPS NAL units (without start codes)."""
    return [nal_unit(NAL_VPS, vps_rbsp(p)), nal_unit(NAL_SPS, sps_rbsp(p)),
            nal_unit(NAL_PPS, pps_rbsp(p))]

