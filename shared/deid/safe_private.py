"""The private attributes kept with the Retain Safe Private Option: a small, partial list from PS3.15 Table E.3.10-1.

Only MR diffusion attributes whose entry in Table E.3.10-1 we are confident of are listed, each kept only in MR
instances, only under its private creator and only with the VR the vendor gives it; every other private attribute
is removed, as without the option.
The list is deliberately partial: an attribute missing here is removed, which retains less, never more.
"""
from __future__ import annotations

from typing import Dict, Optional, Tuple

# (private creator, group, element offset within the creator's block) -> the VR the vendor gives it
SAFE_PRIVATE: Dict[Tuple[str, int, int], str] = {
    ("SIEMENS MR HEADER", 0x0019, 0x0C): "IS",       # B_value
    ("SIEMENS MR HEADER", 0x0019, 0x0D): "CS",       # DiffusionDirectionality
    ("SIEMENS MR HEADER", 0x0019, 0x0E): "FD",       # DiffusionGradientDirection
    ("SIEMENS MR HEADER", 0x0019, 0x27): "FD",       # B_matrix
    ("GEMS_PARM_01", 0x0043, 0x39): "IS",            # slop_int_6..9: diffusion b-value and related
    ("Philips Imaging DD 001", 0x2001, 0x03): "FL",  # Diffusion B-Factor
    ("Philips Imaging DD 001", 0x2001, 0x04): "CS",  # Diffusion Direction
}
SAFE_MODALITIES = ("MR",)


def is_safe(creator: Optional[str], tag: int, modality: Optional[str], vr: str) -> bool:
    """Whether the private data element `tag` (gggg,xxee) under `creator` is on the list for this modality, with
    the VR listed for it (another VR, a sequence say, is not the vendor's attribute and may hold anything)."""
    if creator is None or modality not in SAFE_MODALITIES:
        return False
    group, element = tag >> 16, tag & 0xFFFF
    return SAFE_PRIVATE.get((creator.strip(), group, element & 0xFF)) == vr and element >= 0x1000
