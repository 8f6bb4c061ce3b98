"""Time: optical flow and what it says about a clip's source frames (flow), the
stabiliser that any backend's output can go through (stabilize), the flicker
measurement (metrics) and its pictures (figures)."""
