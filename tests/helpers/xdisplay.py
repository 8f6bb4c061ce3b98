"""A private X display for window tests: Xvfb on a free display number, and
python-xlib to find a window, screenshot it and type real key events (XTEST).

    with XDisplay() as x:
        subprocess.Popen([...], env=x.env())
        window = x.find_window("vidtoon")
        rgb = x.screenshot(window)
        x.press(window, "h", "space", "q")
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time

import numpy as np

REMAP_AFTER = 3.0  # s a mapped window may stay black before find_window maps it again


class XDisplay:
    def __init__(self, width: int = 1280, height: int = 800) -> None:
        if shutil.which("Xvfb") is None:
            raise FileNotFoundError("Xvfb is not installed (apt install xvfb)")
        read, write = os.pipe()
        # -displayfd: Xvfb picks a free display number and writes it once it is ready.
        self._server = subprocess.Popen(
            ["Xvfb", "-displayfd", str(write), "-screen", "0", f"{width}x{height}x24", "-nolisten", "tcp"],
            pass_fds=(write,), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        os.close(write)
        try:
            number = b""
            while not number.endswith(b"\n"):  # Xvfb dies if the pipe closes before it wrote the newline
                chunk = os.read(read, 16)
                if not chunk:
                    raise RuntimeError("Xvfb did not start")
                number += chunk
        except BaseException:
            self._server.kill()
            self._server.wait()
            raise
        finally:
            os.close(read)
        self.name = f":{number.decode().strip()}"
        from Xlib import display

        self.conn = display.Display(self.name)
        self.root = self.conn.screen().root

    def env(self) -> dict[str, str]:
        return {**os.environ, "DISPLAY": self.name}

    def find_window(self, title: str, timeout: float = 30.0, proc: subprocess.Popen | None = None):
        """The mapped top-level window called `title`, once it has painted something;
        with `proc`, the program that should open it: its exit ends the wait, with its stderr."""
        from Xlib import X

        started = time.monotonic()
        deadline, remapped = started + timeout, False
        while time.monotonic() < deadline:
            if proc is not None and proc.poll() is not None:
                raise RuntimeError(f"exited with {proc.returncode} before a window {title!r} appeared: {proc.stderr.read()}")
            for window in self.root.query_tree().children:
                try:
                    if window.get_wm_name() == title and window.get_attributes().map_state == X.IsViewable:
                        if self.screenshot(window).max() > 0:
                            return window
                        if not remapped and time.monotonic() - started > REMAP_AFTER:
                            # Mapped and still black: OpenCV's Qt 5 missed the first MapNotify and
                            # Expose (its log shows neither; ~1 start in 12 on a loaded 2-core machine),
                            # so it never paints. A window manager would map it again; so do we, once.
                            window.unmap()
                            window.map()
                            self.conn.sync()
                            remapped = True
                except Exception:  # noqa: BLE001 - windows come and go
                    continue
            time.sleep(0.1)
        said = ""
        if proc is not None:  # what it said while we waited
            proc.kill()
            said = f"; it said: {proc.communicate()[1]}"
        raise TimeoutError(f"no window {title!r} appeared on {self.name} in {timeout:.0f} s{said}")

    def screenshot(self, window) -> np.ndarray:
        """What the screen shows inside `window`, as RGB uint8 (H, W, 3)."""
        from Xlib import X

        geometry = window.get_geometry()
        origin = window.translate_coords(self.root, 0, 0)
        x, y = -origin.x, -origin.y  # translate_coords gives root's origin in the window
        image = self.root.get_image(x, y, geometry.width, geometry.height, X.ZPixmap, 0xFFFFFFFF)
        pixels = np.frombuffer(image.data, np.uint8).reshape(geometry.height, geometry.width, 4)
        return np.ascontiguousarray(pixels[..., 2::-1])  # BGRX -> RGB

    def press(self, window, *keys: str) -> None:
        """Real key events through XTEST ('q', 'space', 'Escape', '1', ...), to `window`."""
        from Xlib import XK, X
        from Xlib.ext import xtest

        # No window manager: give the window the focus, and the pointer too.
        geometry = window.get_geometry()
        origin = window.translate_coords(self.root, 0, 0)
        xtest.fake_input(self.conn, X.MotionNotify, x=-origin.x + geometry.width // 2, y=-origin.y + geometry.height // 2)
        window.set_input_focus(X.RevertToParent, X.CurrentTime)
        for key in keys:
            code = self.conn.keysym_to_keycode(XK.string_to_keysym(key))
            if not code:
                raise ValueError(f"no key {key!r}")
            xtest.fake_input(self.conn, X.KeyPress, code)
            xtest.fake_input(self.conn, X.KeyRelease, code)
            self.conn.sync()
            time.sleep(0.05)

    def close_window(self, window) -> None:
        """What a window manager's close button does: send WM_DELETE_WINDOW."""
        from Xlib import X
        from Xlib.protocol import event

        protocols = self.conn.intern_atom("WM_PROTOCOLS")
        delete = self.conn.intern_atom("WM_DELETE_WINDOW")
        message = event.ClientMessage(window=window, client_type=protocols, data=(32, [delete, X.CurrentTime, 0, 0, 0]))
        window.send_event(message, event_mask=X.NoEventMask)
        self.conn.sync()

    def close(self) -> None:
        try:
            self.conn.close()
        finally:
            self._server.terminate()
            try:
                self._server.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._server.kill()
                self._server.wait()

    def __enter__(self) -> XDisplay:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
