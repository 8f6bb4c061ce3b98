"""Make docs/web/video.png and docs/web/webcam.png, docs/web.md's screenshots: the real
`vidtoon serve` in Debian's headless Chromium (as tests/web/test_browser.py runs it),
the bundled sample uploaded, and, as the camera, the same sample fed to Chromium's
fake capture device.

    python docs/web/make_screenshots.py
"""

import sys
import tempfile
from pathlib import Path

import av

ROOT = Path(__file__).resolve().parent.parent.parent
sys.path.insert(0, str(ROOT / "tests" / "helpers"))

from selenium import webdriver  # noqa: E402
from selenium.webdriver.chrome.service import Service  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.common.keys import Keys  # noqa: E402
from selenium.webdriver.support.ui import Select, WebDriverWait  # noqa: E402
from web_helpers import Served  # noqa: E402

SAMPLE = ROOT / "samples" / "astronaut.mp4"
OUT = ROOT / "docs" / "web"


def y4m(source: Path, target: Path, width: int = 640, height: int = 360) -> None:
    """The sample as a Y4M file, which Chromium's fake camera plays in a loop."""
    with av.open(str(source)) as inp, av.open(str(target), "w", format="yuv4mpegpipe") as out:
        stream = out.add_stream("rawvideo", rate=30)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        for frame in inp.decode(video=0):
            out.mux(stream.encode(frame.reformat(width, height, "yuv420p")))
        out.mux(stream.encode(None))


def until(driver, condition, timeout=180):
    return WebDriverWait(driver, timeout, poll_frequency=0.05).until(lambda d: condition(d) or None)


def main() -> None:
    with tempfile.TemporaryDirectory() as temp:
        camera = Path(temp) / "camera.y4m"
        y4m(SAMPLE, camera)
        options = webdriver.ChromeOptions()
        options.binary_location = "/usr/bin/chromium"
        for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1400,900",
                     "--hide-scrollbars", "--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream",
                     f"--use-file-for-fake-video-capture={camera}"):
            options.add_argument(flag)
        with Served(env={"TMPDIR": temp}) as served:
            driver = webdriver.Chrome(options=options, service=Service(executable_path="/usr/bin/chromedriver"))
            try:
                driver.get(served.url)
                until(driver, lambda d: d.find_elements(By.ID, "opt-style"))
                Select(driver.find_element(By.ID, "opt-style")).select_by_value("comic")
                driver.find_element(By.ID, "file").send_keys(str(SAMPLE))
                until(driver, lambda d: d.find_element(By.ID, "after").get_attribute("data-frame") == "0")
                slider = driver.find_element(By.ID, "frame")
                for _ in range(60):
                    slider.send_keys(Keys.ARROW_RIGHT)
                until(driver, lambda d: d.find_element(By.ID, "after").get_attribute("data-frame") == "60")
                driver.find_element(By.ID, "start").click()
                until(driver, lambda d: d.find_elements(By.CSS_SELECTOR, "li.job[data-state=done]"))
                until(driver, lambda d: d.execute_script("return document.getElementById('result-video').readyState >= 2"))
                driver.execute_async_script(SHOW_RESULT)
                shot(driver, OUT / "video.png")
                driver.find_element(By.ID, "tab-webcam").click()
                driver.find_element(By.ID, "cam-start").click()
                until(driver, lambda d: int(d.find_element(By.ID, "cam-out").get_attribute("data-frames") or 0) >= 30)
                shot(driver, OUT / "webcam.png")
            finally:
                driver.quit()
    print(f"wrote {OUT / 'video.png'} and {OUT / 'webcam.png'}")


# Both videos at 2 s, paused, painted. Headless Chromium keeps its loading spinner over
# videos with controls, so the controls are hidden for the picture.
SHOW_RESULT = """
const done = arguments[arguments.length - 1];
const videos = [...document.querySelectorAll('#result video')];
for (const v of videos) v.controls = false;
Promise.all(videos.map((v) => new Promise((resolve) => {
  v.pause();
  v.addEventListener('seeked', resolve, { once: true });
  v.currentTime = 2;
}))).then(() => new Promise(function ready(resolve) {  // the spinner goes once enough is buffered
  if (videos.every((v) => v.readyState === 4)) resolve(); else setTimeout(() => ready(resolve), 50);
})).then(() => requestAnimationFrame(() => requestAnimationFrame(() => done())));
"""


def shot(driver, path: Path) -> None:
    """The whole page, beyond the window's height (Chromium's DevTools screenshot)."""
    import base64

    width, height = driver.execute_script("return [document.documentElement.scrollWidth, document.documentElement.scrollHeight]")
    data = driver.execute_cdp_cmd("Page.captureScreenshot", {"format": "png", "captureBeyondViewport": True,
                                                             "clip": {"x": 0, "y": 0, "width": width, "height": height, "scale": 1}})
    path.write_bytes(base64.b64decode(data["data"]))


if __name__ == "__main__":
    main()
