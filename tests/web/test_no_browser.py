"""Without Chromium the browser tests fail (CI must not pass by skipping them); only
VIDTOON_NO_BROWSER=1 skips them."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

BROWSER_TESTS = Path(__file__).with_name("test_browser.py")


@pytest.mark.parametrize(("no_browser", "code", "said"), [(None, 1, "need Debian's chromium"), ("1", 0, "1 skipped")])
def test_browser_tests_fail_without_chromium_unless_told_to_skip(tmp_path, no_browser, code, said):
    env = {k: v for k, v in os.environ.items() if k != "VIDTOON_NO_BROWSER"}
    env["PATH"] = str(tmp_path)  # no chromium, no chromedriver
    if no_browser:
        env["VIDTOON_NO_BROWSER"] = no_browser
    proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-k", "bad_file", str(BROWSER_TESTS)],
                          capture_output=True, text=True, env=env, timeout=300, cwd=BROWSER_TESTS.parents[2])
    assert proc.returncode == code, proc.stdout + proc.stderr
    assert said in proc.stdout
