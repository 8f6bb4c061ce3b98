"""Time: optical flow and what it says about a clip's source frames (flow), the
stabiliser that any backend's output can go through (stabilize), the flicker
measurement (metrics) and its pictures (figures)."""

# The optical flows `vidtoon metrics --flow` offers (DIS presets), here so that the CLI
# can list them without importing OpenCV; the first is the default.
METRICS_FLOWS = ("medium", "fast")
