"""CABAC context layout and initValue tables of H.265 (Tables 9-5 .. 9-37), initType 0.

Every context variable of the syntax elements we code sits in one array (see
:mod:`codeclab.bitstream.cabac`); ``CTX_*`` are the offsets of each element's first
context. Only initType 0 (I slices) is needed: every slice we write is an I slice.
"""

from __future__ import annotations

import numpy as np

__all__ = ["CTX_SAO_MERGE", "CTX_SAO_TYPE", "CTX_SPLIT_CU", "CTX_TRANSQUANT_BYPASS",
           "CTX_PART_MODE", "CTX_PREV_INTRA", "CTX_CHROMA_MODE", "CTX_SPLIT_TF", "CTX_CBF_LUMA",
           "CTX_CBF_CHROMA", "CTX_TS_FLAG", "CTX_LAST_X", "CTX_LAST_Y", "CTX_CSBF", "CTX_SIG",
           "CTX_GT1", "CTX_GT2", "CTX_CU_QP_DELTA", "NUM_CTX", "INIT_VALUES_I"]

# (name, initType-0 values) in layout order
_LAYOUT: list[tuple[str, list[int]]] = [
    ("SAO_MERGE", [153]),                              # Table 9-5
    ("SAO_TYPE", [200]),                               # Table 9-6
    ("SPLIT_CU", [139, 141, 157]),                     # Table 9-7
    ("TRANSQUANT_BYPASS", [154]),                      # Table 9-8
    ("PART_MODE", [184]),                              # Table 9-11 (bin 0)
    ("PREV_INTRA", [184]),                             # Table 9-12
    ("CHROMA_MODE", [63]),                             # Table 9-13
    ("SPLIT_TF", [153, 138, 138]),                     # Table 9-20
    ("CBF_LUMA", [111, 141]),                          # Table 9-21
    ("CBF_CHROMA", [94, 138, 182, 154, 154]),          # Table 9-22
    ("TS_FLAG", [139, 139]),                           # Table 9-24 (luma, chroma)
    ("LAST_X", [110, 110, 124, 125, 140, 153, 125, 127, 140, 109, 111, 143, 127, 111,
                79, 108, 123, 63]),                    # Table 9-27
    ("LAST_Y", [110, 110, 124, 125, 140, 153, 125, 127, 140, 109, 111, 143, 127, 111,
                79, 108, 123, 63]),                    # Table 9-28
    ("CSBF", [91, 171, 134, 141]),                     # Table 9-29
    ("SIG", [111, 111, 125, 110, 110, 94, 124, 108, 124, 107, 125, 141, 179, 153, 125,
             107, 125, 141, 179, 153, 125, 107, 125, 141, 179, 153, 125, 140, 139, 182,
             182, 152, 136, 152, 136, 153, 136, 139, 111, 136, 139, 111,
             141, 111]),                               # Table 9-30 (+ 126..127 of RExt)
    ("GT1", [140, 92, 137, 138, 140, 152, 138, 139, 153, 74, 149, 92, 139, 107, 122, 152,
             140, 179, 166, 182, 140, 227, 122, 197]),  # Table 9-31
    ("GT2", [138, 153, 136, 167, 152, 152]),           # Table 9-32
    ("CU_QP_DELTA", [154, 154]),                       # Table 9-23
]

_offsets: dict[str, int] = {}
_vals: list[int] = []
for _name, _v in _LAYOUT:
    _offsets[_name] = len(_vals)
    _vals.extend(_v)

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
NUM_CTX = len(_vals)

INIT_VALUES_I = np.array(_vals, dtype=np.int64)
INIT_VALUES_I.setflags(write=False)
