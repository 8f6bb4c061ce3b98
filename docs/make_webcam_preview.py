"""Make docs/webcam_preview.png, the README's screenshot of the live preview:
`vidtoon webcam` on the bundled sample, in its real window on a private Xvfb
display, screenshotted through X (needs Xvfb and python-xlib, as the tests do).

    python docs/make_webcam_preview.py [--size 960x540] [--after 2.0]
"""

import argparse
import subprocess
import sys
import time
from pathlib import Path

import cv2

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests" / "helpers"))

from xdisplay import XDisplay  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", default="960x540")
    parser.add_argument("--after", type=float, default=2.0, help="seconds after the window appears (the key help shows for 3)")
    args = parser.parse_args()
    out = ROOT / "docs" / "webcam_preview.png"
    with XDisplay(1600, 900) as x:
        command = [sys.executable, "-m", "vidtoon", "webcam", "--source", str(ROOT / "samples" / "astronaut.mp4"),
                   "--backend", "classic", "--size", args.size]
        proc = subprocess.Popen(command, env=x.env())
        try:
            window = x.find_window("vidtoon")
            time.sleep(args.after)
            shot = x.screenshot(window)
            x.press(window, "q")
            proc.wait(timeout=20)
        finally:
            proc.kill()
            proc.wait()
    cv2.imwrite(str(out), cv2.cvtColor(shot, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_PNG_COMPRESSION, 9])
    print(f"wrote {out} ({out.stat().st_size // 1024} KiB)")


if __name__ == "__main__":
    main()
