"""The preview window (OpenCV HighGUI) and the text overlay drawn on it.

    check_display()                        # DeviceUnavailable instead of a crash
    with Preview(1280, 720) as window:
        key = window.show(bgr)             # "q", "space", "esc", ... or None

OpenCV's GUI here is Qt on X11. Without a display Qt aborts the whole process
(SIGABRT, which Python cannot catch), so check_display() first connects to the
X server the way Qt will (through libxcb) and raises a one-line error instead.

Import this module (it imports cv2) before anything imports PyAV: PyAV's wheel
bundles its own libxcb, and once that is loaded first OpenCV's window hangs
for good at 100% CPU (PyAV issue #978). Preview refuses to open in that case.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import sys

import cv2  # before PyAV, see above
import numpy as np

from ..errors import DeviceUnavailable

KEY_NAMES = {27: "esc", 32: "space", 13: "enter", 10: "enter", 9: "tab", 8: "backspace"}
_HINT = "use --no-window, or run under a display (e.g. xvfb-run -a vidtoon webcam ...)"
# xcb_connection_has_error() codes
_XCB_ERRORS = {
    1: "connection refused or lost",
    2: "extension not supported",
    3: "out of memory",
    4: "request too long",
    5: "cannot parse the display name",
    6: "no such screen",
    7: "file descriptor passing failed",
}


def check_display() -> None:
    """Raise DeviceUnavailable unless a window can be opened here."""
    if not sys.platform.startswith("linux"):
        return  # Windows and macOS GUIs do not abort like this
    display = os.environ.get("DISPLAY", "")
    if not display:
        raise DeviceUnavailable(f"no display for the preview window (DISPLAY is not set); {_HINT}")
    error = _xcb_error(display)
    if error:
        raise DeviceUnavailable(f"cannot open display {display!r} for the preview window ({error}); {_HINT}")


def _xcb_error(display: str) -> str | None:
    """What goes wrong connecting to `display`, or None if it works."""
    name = ctypes.util.find_library("xcb") or "libxcb.so.1"
    try:
        xcb = ctypes.CDLL(name)
    except OSError:
        return "libxcb is not installed (apt install libxcb1)"
    xcb.xcb_connect.restype = ctypes.c_void_p
    xcb.xcb_connect.argtypes = [ctypes.c_char_p, ctypes.c_void_p]
    xcb.xcb_connection_has_error.argtypes = [ctypes.c_void_p]
    xcb.xcb_disconnect.argtypes = [ctypes.c_void_p]
    connection = xcb.xcb_connect(display.encode(), None)
    try:
        code = xcb.xcb_connection_has_error(connection)
    finally:
        xcb.xcb_disconnect(connection)
    return _XCB_ERRORS.get(code, f"xcb error {code}") if code else None


class Preview:
    """One resizable window that shows BGR frames and reports key presses."""

    def __init__(self, width: int, height: int, title: str = "vidtoon") -> None:
        check_display()
        loaded = list(sys.modules)  # in import order
        if "av" in sys.modules and loaded.index("av") < loaded.index("cv2"):
            raise DeviceUnavailable(
                "PyAV was imported before OpenCV, so the preview window would hang (PyAV issue #978); "
                "import vidtoon.live or cv2 before av"
            )
        self._cv2 = cv2
        self.title = title
        self._shown = False
        # GUI_NORMAL: no Qt toolbar or status bar, so the window is the picture.
        cv2.namedWindow(title, cv2.WINDOW_NORMAL | cv2.WINDOW_KEEPRATIO | cv2.WINDOW_GUI_NORMAL)
        cv2.resizeWindow(title, width, height)

    def show(self, bgr: np.ndarray) -> str | None:
        """Show a frame and let the window paint it; returns a key pressed meanwhile."""
        self._cv2.imshow(self.title, bgr)
        self._shown = True
        return self.poll(1)

    def poll(self, wait_ms: int = 1) -> str | None:
        """Handle window events for up to `wait_ms`; the key pressed, if any."""
        return key_name(self._cv2.waitKey(wait_ms))

    @property
    def closed(self) -> bool:
        """True once the user closed the window (its close button)."""
        if not self._shown:
            return False
        try:
            return self._cv2.getWindowProperty(self.title, self._cv2.WND_PROP_VISIBLE) < 1
        except self._cv2.error:  # Qt has destroyed it already
            return True

    def close(self) -> None:
        try:
            self._cv2.destroyWindow(self.title)
            self._cv2.waitKey(1)  # let the window actually go
        except self._cv2.error:
            pass  # already gone

    def __enter__(self) -> Preview:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def key_name(code: int) -> str | None:
    """OpenCV's key code as a name: a printable character, or 'esc', 'space', ..."""
    if code is None or code < 0:
        return None
    code &= 0xFF
    if code in KEY_NAMES:
        return KEY_NAMES[code]
    return chr(code).lower() if 33 <= code < 127 else None


def draw_overlay(bgr: np.ndarray, lines: list[tuple[str, tuple[int, int, int]]]) -> None:
    """Draw text lines (text, BGR colour) top left on a darkened box, in place."""
    if not lines:
        return
    height = bgr.shape[0]
    scale = max(0.4, 0.6 * height / 720)
    thickness = 1 if scale < 0.8 else 2
    font = cv2.FONT_HERSHEY_SIMPLEX
    sizes = [cv2.getTextSize(text, font, scale, thickness)[0] for text, _ in lines]
    line_height = max(h for _, h in sizes) + int(12 * scale)
    pad = int(10 * scale)
    box_w = min(bgr.shape[1], max(w for w, _ in sizes) + 2 * pad)
    box_h = min(height, line_height * len(lines) + pad)
    box = bgr[:box_h, :box_w]
    box >>= 1  # halve the brightness behind the text, so it reads on any picture
    for i, (text, colour) in enumerate(lines):
        y = pad + line_height * i + sizes[i][1]
        cv2.putText(bgr, text, (pad, y), font, scale, colour, thickness, cv2.LINE_AA)
