"""The looks of the classic backend: --style NAME picks one, and the fine
options (--levels, --edges, --line-width, --smooth) adjust it.

A Look holds every number the filter needs, so a style is data, not code.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Look:
    colours: int  # the clip's palette: fewer = flatter (--levels)
    edges: float  # ink darkness: 1 = black on strong edges, 0 = no lines (--edges)
    line_width: float  # ink width, in units of LINE_UNIT of the frame's short side (--line-width)
    smooth: int  # edge-preserving smoothing passes before the palette (--smooth)
    saturation: float = 1.2  # chroma of the palette colours, times the source's
    softness: float = 1.0  # how wide the blend between two palette colours is; 0 = hard
    paper: bool = False  # a pencil drawing: light paper tones from the luminance, no colour
    steady: float = 0.8  # share of the previous frame carried along the motion where it is trusted (--steady)


# Line width 1 is this share of the short side: ~2 px at 720p, ~6 px at 4K.
LINE_UNIT = 0.0028

STYLES = {
    "cel": Look(colours=16, edges=1.0, line_width=1.0, smooth=1, saturation=1.35),  # flat cel colours, clean ink: the default
    "comic": Look(colours=10, edges=1.6, line_width=1.8, smooth=2, saturation=1.45, softness=0.6),  # bold
    "anime": Look(colours=18, edges=0.7, line_width=0.6, smooth=2, saturation=1.15, softness=1.6),  # soft, thin lines
    "sketch": Look(colours=4, edges=1.5, line_width=0.8, smooth=1, saturation=0.0, paper=True),  # pencil on paper
    "flat": Look(colours=16, edges=0.0, line_width=1.0, smooth=1, saturation=1.35),  # colour only, no lines
}
DEFAULT_STYLE = "cel"
