"""The webcam: a live source (camera: a camera, or a file or stream paced as
one), the loop that keeps only the newest frame at every step (session,
processor), and where frames go: the preview window (preview), recordings and
snapshots (recorder), a virtual camera (virtualcam).

    from vidtoon.live import Live, LiveSettings
"""

from . import preview  # noqa: F401, I001 - first: it imports cv2, which must load before PyAV
from .session import Live, LiveResult, LiveSettings

__all__ = ["Live", "LiveResult", "LiveSettings"]
