"""Send frames to a virtual camera (pyvirtualcam) that video-call apps can pick.

On Linux that is a v4l2loopback device, which must exist first:

    sudo modprobe v4l2loopback devices=1 exclusive_caps=1 card_label=vidtoon

On Windows and macOS pyvirtualcam uses OBS's virtual camera.
"""

from __future__ import annotations

import sys

import numpy as np

from ..errors import DeviceUnavailable

SETUP = (
    "create one with: sudo modprobe v4l2loopback devices=1 exclusive_caps=1 card_label=vidtoon "
    "(Debian/Ubuntu: sudo apt install v4l2loopback-dkms first)"
    if sys.platform.startswith("linux")
    else "install OBS Studio and start its virtual camera once"
)


class VirtualCamera:
    """A virtual camera of a fixed size that takes RGB frames."""

    def __init__(self, width: int, height: int, fps: float, device: str | None = None) -> None:
        try:
            import pyvirtualcam
        except ImportError:
            raise DeviceUnavailable(
                "--virtual-cam needs pyvirtualcam: pip install 'vidtoon[virtualcam]'"
            ) from None
        try:
            self._camera = pyvirtualcam.Camera(width, height, fps, fmt=pyvirtualcam.PixelFormat.RGB, device=device)
        except (RuntimeError, ValueError) as e:
            # pyvirtualcam lists one line per backend it tried; the first says why.
            reason = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            raise DeviceUnavailable(f"no virtual camera ({reason}); {SETUP}") from None
        self.device = self._camera.device
        self.description = f"virtual camera {self.device}: {width}x{height} at {fps:g} fps"

    def send(self, rgb: np.ndarray) -> None:
        self._camera.send(np.ascontiguousarray(rgb))

    def close(self) -> None:
        self._camera.close()

    def __enter__(self) -> VirtualCamera:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
