"""Helpers for the web app's tests (tests/web): upload, wait for a job, a backend that blocks."""

import threading
import time

import numpy as np

TERMINAL = ("done", "failed", "cancelled")


def upload(client, path, name=None):
    return client.post("/api/uploads", params={"name": name or path.name}, content=path.read_bytes())


def wait_for_job(client, job_id, states=TERMINAL, timeout=60.0):
    """Poll the queue until the job is in one of `states` (the timeout is a safety net only)."""
    deadline = time.monotonic() + timeout
    while True:
        job = next(j for j in client.get("/api/jobs").json()["jobs"] if j["id"] == job_id)
        if job["state"] in states:
            return job
        assert time.monotonic() < deadline, f"job still {job['state']} after {timeout} s"
        time.sleep(0.02)


class BlockingBackend:
    """Returns frames unchanged, but its first call waits until released: the test can
    act (cancel) while a job is certainly in its frame loop."""

    name, summary, batch_size = "blocking", "test backend", 4

    def __init__(self):
        self.entered, self.release = threading.Event(), threading.Event()
        self.calls = 0
        self._counted = threading.Condition()

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        with self._counted:
            self.calls += 1
            self._counted.notify_all()
        self.entered.set()
        assert self.release.wait(60), "never released"
        return batch.copy()

    def wait_for_calls(self, count: int, timeout: float = 60.0) -> bool:
        """True once `count` calls have begun (they may all be waiting to be released)."""
        with self._counted:
            return self._counted.wait_for(lambda: self.calls >= count, timeout)

    def reset(self):
        pass


class Served:
    """`vidtoon serve --port 0 ARGS` in a subprocess: the URL from its "serving on" line;
    stop() sends Ctrl-C and returns (exit code, the rest of stderr)."""

    def __init__(self, *args, env=None, timeout=60.0):
        import os
        import queue
        import re
        import subprocess
        import sys

        self.proc = subprocess.Popen([sys.executable, "-m", "vidtoon", "serve", "--port", "0", *map(str, args)],
                                     stderr=subprocess.PIPE, text=True, env={**os.environ, **(env or {})})
        self._lines: queue.Queue = queue.Queue()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        said = []
        while (line := self._lines.get(timeout=timeout)) is not None:  # the line, or the end of stderr
            said.append(line)
            if match := re.search(r"serving on (http://\S+)", line):
                self.first, self.url = line, match[1]
                return
        self.proc.kill()
        raise AssertionError(f"vidtoon serve ended saying {''.join(said)!r}")

    def _read(self):
        for line in self.proc.stderr:
            self._lines.put(line)
        self._lines.put(None)

    def stop(self, timeout=60.0, sig=None):
        import signal

        if self.proc.poll() is None:
            self.proc.send_signal(sig or signal.SIGINT)
        code = self.proc.wait(timeout=timeout)
        self._reader.join(timeout)
        rest = []
        while not self._lines.empty():
            line = self._lines.get()
            if line is not None:
                rest.append(line)
        return code, "".join(rest)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        if self.proc.poll() is None:
            self.stop()
