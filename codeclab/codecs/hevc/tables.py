"""CABAC context layout and initValue tables of H.265 (Tables 9-5 .. 9-37), initTypes 0-2.

Every context variable of the syntax elements we code sits in one array (see
:mod:`codeclab.bitstream.cabac`); ``CTX_*`` are the offsets of each element's first
context; ``INIT_VALUES_I`` / ``_P`` / ``_B`` hold the initValues of initType 0, 1 and 2.
"""

from __future__ import annotations

import numpy as np

__all__ = ["CTX_SAO_MERGE", "CTX_SAO_TYPE", "CTX_SPLIT_CU", "CTX_TRANSQUANT_BYPASS",
           "CTX_PART_MODE", "CTX_PREV_INTRA", "CTX_CHROMA_MODE", "CTX_SPLIT_TF", "CTX_CBF_LUMA",
           "CTX_CBF_CHROMA", "CTX_TS_FLAG", "CTX_LAST_X", "CTX_LAST_Y", "CTX_CSBF", "CTX_SIG",
           "CTX_GT1", "CTX_GT2", "CTX_CU_QP_DELTA", "CTX_SKIP", "CTX_PRED_MODE",
           "CTX_MERGE_FLAG", "CTX_MERGE_IDX", "CTX_INTER_DIR", "CTX_REF_IDX", "CTX_MVP_FLAG",
           "CTX_RQT_ROOT_CBF", "CTX_MVD", "NUM_CTX", "INIT_VALUES_I", "INIT_VALUES_P", "INIT_VALUES_B"]

# (name, initType 0 (I), 1 (P), 2 (B) values) in layout order; 154 marks a context the
# slice type never uses (HM's CNU). Values from Tables 9-5 .. 9-37 (initType 1 is a P slice
# with cabac_init_flag 0, the only kind we write).
_CNU = 154
_LAYOUT: list[tuple[str, list[int], list[int], list[int]]] = [
    ("SAO_MERGE", [153], [153], [153]),                           # Table 9-5
    ("SAO_TYPE", [200], [185], [160]),                            # Table 9-6
    ("SPLIT_CU", [139, 141, 157], [107, 139, 126], [107, 139, 126]),  # Table 9-7
    ("TRANSQUANT_BYPASS", [154], [154], [154]),                   # Table 9-8
    ("PART_MODE", [184, _CNU, _CNU, _CNU], [154, 139, 154, 154],
     [154, 139, 154, 154]),                                       # Table 9-11 (bins 0..3)
    ("PREV_INTRA", [184], [154], [183]),                          # Table 9-12
    ("CHROMA_MODE", [63], [152], [152]),                          # Table 9-13
    ("SPLIT_TF", [153, 138, 138], [124, 138, 94], [224, 167, 122]),  # Table 9-20
    ("CBF_LUMA", [111, 141], [153, 111], [153, 111]),             # Table 9-21
    ("CBF_CHROMA", [94, 138, 182, 154, 154], [149, 107, 167, 154, 154],
     [149, 92, 167, 154, 154]),                                   # Table 9-22
    ("TS_FLAG", [139, 139], [139, 139], [139, 139]),              # Table 9-24 (luma, chroma)
    ("LAST_X", [110, 110, 124, 125, 140, 153, 125, 127, 140, 109, 111, 143, 127, 111, 79,
                108, 123, 63],
     [125, 110, 94, 110, 95, 79, 125, 111, 110, 78, 110, 111, 111, 95, 94, 108, 123, 108],
     [125, 110, 124, 110, 95, 94, 125, 111, 111, 79, 125, 126, 111, 111, 79, 108, 123, 93]),
    ("LAST_Y", [110, 110, 124, 125, 140, 153, 125, 127, 140, 109, 111, 143, 127, 111, 79,
                108, 123, 63],
     [125, 110, 94, 110, 95, 79, 125, 111, 110, 78, 110, 111, 111, 95, 94, 108, 123, 108],
     [125, 110, 124, 110, 95, 94, 125, 111, 111, 79, 125, 126, 111, 111, 79, 108, 123, 93]),
    ("CSBF", [91, 171, 134, 141], [121, 140, 61, 154], [121, 140, 61, 154]),  # Table 9-29
    # Table 9-30: luma 0..26, chroma 27..41, then the transform_skip_context pair (RExt)
    ("SIG", [111, 111, 125, 110, 110, 94, 124, 108, 124, 107, 125, 141, 179, 153, 125,
             107, 125, 141, 179, 153, 125, 107, 125, 141, 179, 153, 125, 140, 139, 182,
             182, 152, 136, 152, 136, 153, 136, 139, 111, 136, 139, 111, 141, 111],
     [155, 154, 139, 153, 139, 123, 123, 63, 153, 166, 183, 140, 136, 153, 154, 166, 183,
      140, 136, 153, 154, 166, 183, 140, 136, 153, 154, 170, 153, 123, 123, 107, 121, 107,
      121, 167, 151, 183, 140, 151, 183, 140, 140, 140],
     [170, 154, 139, 153, 139, 123, 123, 63, 124, 166, 183, 140, 136, 153, 154, 166, 183,
      140, 136, 153, 154, 166, 183, 140, 136, 153, 154, 170, 153, 138, 138, 122, 121, 122,
      121, 167, 151, 183, 140, 151, 183, 140, 140, 140]),
    ("GT1", [140, 92, 137, 138, 140, 152, 138, 139, 153, 74, 149, 92, 139, 107, 122, 152,
             140, 179, 166, 182, 140, 227, 122, 197],
     [154, 196, 196, 167, 154, 152, 167, 182, 182, 134, 149, 136, 153, 121, 136, 137,
      169, 194, 166, 167, 154, 167, 137, 182],
     [154, 196, 167, 167, 154, 152, 167, 182, 182, 134, 149, 136, 153, 121, 136, 122,
      169, 208, 166, 167, 154, 152, 167, 182]),                   # Table 9-31
    ("GT2", [138, 153, 136, 167, 152, 152], [107, 167, 91, 122, 107, 167],
     [107, 167, 91, 107, 107, 167]),                              # Table 9-32
    ("CU_QP_DELTA", [154, 154], [154, 154], [154, 154]),          # Table 9-23
    # inter prediction (P and B slices only)
    ("SKIP", [_CNU] * 3, [197, 185, 201], [197, 185, 201]),       # Table 9-9
    ("PRED_MODE", [_CNU], [149], [134]),                          # Table 9-10
    ("MERGE_FLAG", [_CNU], [110], [154]),                         # Table 9-16
    ("MERGE_IDX", [_CNU], [122], [137]),                          # Table 9-17
    ("INTER_DIR", [_CNU] * 5, [95, 79, 63, 31, 31], [95, 79, 63, 31, 31]),  # Table 9-18
    ("REF_IDX", [_CNU] * 2, [153, 153], [153, 153]),              # Table 9-19
    ("MVP_FLAG", [_CNU], [168], [168]),                           # Table 9-15
    ("RQT_ROOT_CBF", [_CNU], [79], [79]),                         # Table 9-14
    ("MVD", [_CNU] * 2, [140, 198], [169, 198]),                  # Tables 9-25, 9-26 (gt0, gt1)
]

_offsets: dict[str, int] = {}
_vals: list[list[int]] = [[], [], []]
for _name, *_v in _LAYOUT:
    if not len(_v[0]) == len(_v[1]) == len(_v[2]):
        raise AssertionError(f"context table {_name}: initTypes differ in length")
    _offsets[_name] = len(_vals[0])
    for _t in range(3):
        _vals[_t].extend(_v[_t])

CTX_SAO_MERGE = _offsets["SAO_MERGE"]
CTX_SAO_TYPE = _offsets["SAO_TYPE"]
CTX_SPLIT_CU = _offsets["SPLIT_CU"]
CTX_TRANSQUANT_BYPASS = _offsets["TRANSQUANT_BYPASS"]
CTX_PART_MODE = _offsets["PART_MODE"]
CTX_PREV_INTRA = _offsets["PREV_INTRA"]
CTX_CHROMA_MODE = _offsets["CHROMA_MODE"]
CTX_SPLIT_TF = _offsets["SPLIT_TF"]
CTX_CBF_LUMA = _offsets["CBF_LUMA"]
CTX_CBF_CHROMA = _offsets["CBF_CHROMA"]
CTX_TS_FLAG = _offsets["TS_FLAG"]
CTX_LAST_X = _offsets["LAST_X"]
CTX_LAST_Y = _offsets["LAST_Y"]
CTX_CSBF = _offsets["CSBF"]
CTX_SIG = _offsets["SIG"]
CTX_GT1 = _offsets["GT1"]
CTX_GT2 = _offsets["GT2"]
CTX_CU_QP_DELTA = _offsets["CU_QP_DELTA"]
CTX_SKIP = _offsets["SKIP"]
CTX_PRED_MODE = _offsets["PRED_MODE"]
CTX_MERGE_FLAG = _offsets["MERGE_FLAG"]
CTX_MERGE_IDX = _offsets["MERGE_IDX"]
CTX_INTER_DIR = _offsets["INTER_DIR"]
CTX_REF_IDX = _offsets["REF_IDX"]
CTX_MVP_FLAG = _offsets["MVP_FLAG"]
CTX_RQT_ROOT_CBF = _offsets["RQT_ROOT_CBF"]
CTX_MVD = _offsets["MVD"]
NUM_CTX = len(_vals[0])

INIT_VALUES_I = np.array(_vals[0], dtype=np.int64)
INIT_VALUES_P = np.array(_vals[1], dtype=np.int64)
INIT_VALUES_B = np.array(_vals[2], dtype=np.int64)
for _a in (INIT_VALUES_I, INIT_VALUES_P, INIT_VALUES_B):
    _a.setflags(write=False)
