"""Bits on the wire: bit writer, NAL units / Annex-B, the CABAC engine."""
