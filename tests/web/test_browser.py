"""The page in a real browser: Debian's headless Chromium, driven by chromedriver through
selenium, on the real `vidtoon serve`. Every wait is on the page's own state (the
timeouts are a safety net only). Without Chromium these tests fail; they are skipped
only where VIDTOON_NO_BROWSER=1 says so."""

import os
import shutil

import av
import pytest
from web_helpers import Served

WAIT = 120  # seconds: a safety net on a busy machine, never a pace


@pytest.fixture(scope="module")
def browser_paths():
    chromium, driver = shutil.which("chromium"), shutil.which("chromedriver")
    if chromium and driver:
        return chromium, driver
    if os.environ.get("VIDTOON_NO_BROWSER") == "1":
        pytest.skip("VIDTOON_NO_BROWSER=1: no browser tests here")
    pytest.fail("the browser tests need Debian's chromium and chromium-driver (apt-get install chromium chromium-driver), "
                "or VIDTOON_NO_BROWSER=1 to skip them")


@pytest.fixture
def browser(browser_paths, tmp_path):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    chromium, driver_path = browser_paths
    downloads = tmp_path / "downloads"
    downloads.mkdir()
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu", "--window-size=1280,1000",
                 "--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream", "--autoplay-policy=no-user-gesture-required"):
        options.add_argument(flag)
    options.add_experimental_option("prefs", {"download.default_directory": str(downloads), "download.prompt_for_download": False})
    driver = webdriver.Chrome(options=options, service=Service(executable_path=driver_path))
    driver.downloads = downloads
    yield driver
    driver.quit()


@pytest.fixture
def served(tmp_path):
    batch = tmp_path / "batch"  # a report.html as `vidtoon batch --report-html` writes one (its own test: test_serve.py)
    batch.mkdir()
    (batch / "report.html").write_text('<!doctype html><title>vidtoon batch</title><h1>1 clip</h1><a href="a.mp4">a.mp4</a>')
    with Served("--batch-dir", batch, env={"TMPDIR": str(tmp_path)}) as server:
        yield server


def wait(driver, condition, timeout=WAIT):
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, timeout, poll_frequency=0.05).until(lambda d: condition(d) or None)


def test_the_video_page_uploads_previews_cartoonizes_and_downloads(browser, served, clip):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support.ui import Select

    source = clip("walk.mp4", width=320, height=240, frames=24)
    browser.get(served.url)
    wait(browser, lambda d: d.find_elements(By.ID, "opt-style"))
    browser.find_element(By.ID, "file").send_keys(str(source.path))
    wait(browser, lambda d: d.find_element(By.ID, "after").get_attribute("data-frame") == "0")
    assert "320x240 h264, 24 frames, 12 fps" in browser.find_element(By.ID, "info").text
    # the frame slider: five steps right, and the preview follows
    slider = browser.find_element(By.ID, "frame")
    for _ in range(5):
        slider.send_keys(Keys.ARROW_RIGHT)
    wait(browser, lambda d: d.find_element(By.ID, "after").get_attribute("data-frame") == "5")
    assert browser.find_element(By.ID, "frame-number").text == "5"
    before, after = (browser.find_element(By.ID, i).get_attribute("src") for i in ("before", "after"))
    Select(browser.find_element(By.ID, "opt-style")).select_by_value("comic")
    wait(browser, lambda d: d.find_element(By.ID, "after").get_attribute("src") != after)
    assert browser.find_element(By.ID, "before").get_attribute("src") == before  # the same frame
    assert browser.find_element(By.ID, "error").text == ""
    # the job: queued, run with progress, shown and downloaded
    browser.find_element(By.ID, "start").click()
    job = wait(browser, lambda d: d.find_elements(By.CSS_SELECTOR, "li.job[data-state=done]"))[0]
    assert "24/24 frames" in job.text and "fps" in job.text
    wait(browser, lambda d: d.execute_script("return document.getElementById('result-video').readyState >= 1"))
    assert browser.execute_script("return document.getElementById('result-video').videoWidth") == 320
    browser.find_element(By.ID, "download").click()
    done = wait(browser, lambda d: [p for p in d.downloads.iterdir() if p.suffix == ".mp4"])
    assert [p.name for p in done] == ["walk-cartoon.mp4"]
    with av.open(str(done[0])) as container:
        assert container.streams.audio and container.streams.audio[0].codec_context.name == "aac"
        assert sum(1 for _ in container.decode(video=0)) == 24


def test_a_bad_file_gets_the_cli_line_in_the_page(browser, served, tmp_path):
    from selenium.webdriver.common.by import By

    junk = tmp_path / "notes.mp4"
    junk.write_bytes(b"these are not frames" * 50)
    browser.get(served.url)
    wait(browser, lambda d: d.find_elements(By.ID, "opt-style"))
    browser.find_element(By.ID, "file").send_keys(str(junk))
    text = wait(browser, lambda d: d.find_element(By.ID, "error").text)
    assert text.startswith("error: notes.mp4: not a readable video (") and "\n" not in text


def test_the_webcam_page_sends_camera_frames_and_shows_them_cartoonized(browser, served):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    browser.get(served.url)
    wait(browser, lambda d: d.find_elements(By.ID, "opt-style"))
    Select(browser.find_element(By.ID, "opt-style")).select_by_value("sketch")  # grey pencil: plainly not the camera
    browser.find_element(By.ID, "opt-compare").click()  # for videos only: the webcam leaves it out
    browser.find_element(By.ID, "tab-webcam").click()
    browser.find_element(By.ID, "cam-start").click()
    wait(browser, lambda d: int(d.find_element(By.ID, "cam-out").get_attribute("data-frames") or 0) >= 5)
    camera = browser.execute_script("const v = document.getElementById('cam-video'); return [v.videoWidth, v.videoHeight]")
    assert browser.find_element(By.ID, "cam-out").get_attribute("data-size") == f"{camera[0]}x{camera[1]}"
    stats = browser.find_element(By.ID, "cam-stats").text
    assert f"{camera[0]}x{camera[1]}" in stats and " fps" in stats and "latency" in stats
    # The camera's picture is colourful (mean channel spread); its sketch, drawn back from the page, nearly grey.
    spread = wait(browser, lambda d: d.execute_script(SPREAD))  # null while the shown frame is being swapped
    assert spread["camera"] > 60 and spread["cartoon"] < 30, spread  # measured: 147 and 12
    assert spread["width"] == camera[0] and spread["height"] == camera[1]
    assert browser.find_element(By.ID, "cam-error").text == ""


SPREAD = """
function spread(source, width, height) {
  const canvas = document.createElement('canvas');
  canvas.width = width; canvas.height = height;
  const context = canvas.getContext('2d');
  context.drawImage(source, 0, 0, width, height);
  const data = context.getImageData(0, 0, width, height).data;
  let total = 0;
  for (let i = 0; i < data.length; i += 4) {
    total += Math.max(data[i], data[i + 1], data[i + 2]) - Math.min(data[i], data[i + 1], data[i + 2]);
  }
  return total / (width * height);
}
const video = document.getElementById('cam-video'), out = document.getElementById('cam-out');
// The page swaps the shown frame's src as each answer comes: between two, the image has no
// size yet. One script runs whole on the page's thread, so a frame checked here is the one drawn.
if (!out.complete || !out.naturalWidth || !video.videoWidth) return null;
return {camera: spread(video, video.videoWidth, video.videoHeight), cartoon: spread(out, out.naturalWidth, out.naturalHeight),
        width: out.naturalWidth, height: out.naturalHeight};
"""


def test_the_batch_tab_shows_the_report(browser, served):
    from selenium.webdriver.common.by import By

    browser.get(served.url)
    tab = wait(browser, lambda d: d.find_element(By.ID, "tab-batch").is_displayed() and d.find_element(By.ID, "tab-batch"))
    tab.click()
    frame = browser.find_element(By.ID, "batch-frame")
    browser.switch_to.frame(frame)
    link = wait(browser, lambda d: d.find_elements(By.LINK_TEXT, "a.mp4"))[0]
    assert link.get_attribute("href") == served.url + "batch/a.mp4"
