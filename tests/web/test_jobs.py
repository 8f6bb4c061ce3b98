"""The queue's numbers (frames, fps, ETA) come from the pipeline's progress events,
as the CLI's bar does; errors inside a run are the CLI's one line."""

import re
import threading
from pathlib import Path

import pytest
from web_helpers import BlockingBackend, upload, wait_for_job

from vidtoon.config import Recipe
from vidtoon.errors import InputError
from vidtoon.web import jobs
from vidtoon.web.jobs import Cancelled, JobProgress, WebJob


def test_progress_events_give_frames_fps_and_eta(monkeypatch):
    now = [100.0]
    monkeypatch.setattr(jobs.time, "perf_counter", lambda: now[0])
    job = WebJob("0" * 16, "1" * 16, "a.mp4", Path("a.mp4"), Path("b.mp4"), Recipe(backend="classic"), state="running")
    progress = JobProgress(job)
    progress.note("backend: classic (as asked)")
    progress.start("a.mp4", 100)
    now[0] = 102.0
    progress.advance(25)
    data = job.as_json()
    assert (data["done"], data["total"]) == (25, 100)
    assert data["fps"] == pytest.approx(12.5) and data["eta"] == pytest.approx(6.0)  # 75 frames at 12.5 fps
    assert data["notes"] == ["backend: classic (as asked)"]
    job.cancel.set()
    with pytest.raises(Cancelled):
        progress.advance(8)
    now[0] = 104.0
    progress.stop()
    assert job.seconds == pytest.approx(4.0) and job.as_json()["fps"] == pytest.approx(33 / 4)


class FailingBackend:
    """Fails on its first batch with the InputError a damaged file would give, naming the stored path."""

    name, summary, batch_size = "failing", "test backend", 4

    def __init__(self, uploads: Path):
        self.uploads = uploads

    def __call__(self, batch):
        stored = next(self.uploads.iterdir())
        raise InputError(f"{stored}: decoding failed at frame 3 (Invalid data)")

    def reset(self):
        pass


def test_an_error_inside_the_run_is_the_cli_line_with_the_uploads_name(serve, store, clip):
    client = serve(FailingBackend(store.uploads))
    upload_id = upload(client, clip("beach day.mp4", frames=8).path).json()["id"]
    job = client.post("/api/jobs", json={"upload": upload_id, "options": {}}).json()
    failed = wait_for_job(client, job["id"])
    assert failed["state"] == "failed"
    assert failed["error"] == "error: beach day.mp4: decoding failed at frame 3 (Invalid data)"
    assert [p.name for p in store.outputs.iterdir()] == []


def test_a_salvaged_input_says_what_was_lost_as_the_cli_does(serve, clip, tmp_path):
    from faults import faststart, truncate

    whole = clip("whole.mp4", frames=30).path
    cut = truncate(faststart(whole, tmp_path / "fast.mp4"), tmp_path / "cut.mp4", 0.5)
    client = serve()
    upload_id = upload(client, cut, name="whole.mp4").json()["id"]
    job = client.post("/api/jobs", json={"upload": upload_id, "options": {}}).json()
    done = wait_for_job(client, job["id"])
    assert done["state"] == "done", done
    warnings = [n for n in done["notes"] if n.startswith("warning: ")]
    assert len(warnings) == 1 and re.fullmatch(r"warning: whole\.mp4: the file is cut short: salvaged \d+ of 30 frames", warnings[0]), warnings


def frame_jpeg():
    import cv2
    import numpy as np

    return cv2.imencode(".jpg", np.full((48, 64, 3), 128, np.uint8))[1].tobytes()


def test_a_gpu_job_holds_the_gpu_against_previews_and_the_webcam(serve, clip, monkeypatch):
    from vidtoon.web.gpu import Gpu

    monkeypatch.setattr(Gpu, "wanted", staticmethod(lambda recipe: True))  # as pix2pix's spec says
    backend = BlockingBackend()
    client = serve(backend)
    upload_id = upload(client, clip(frames=8).path).json()["id"]
    job = client.post("/api/jobs", json={"upload": upload_id, "options": {}}).json()
    assert backend.entered.wait(60)
    busy = client.post("/api/preview", json={"upload": upload_id, "frame": 0, "options": {}})
    assert busy.status_code == 409 and busy.json()["error"].startswith("error: a classic job is using the GPU;"), busy.text
    assert client.post("/api/live", content=frame_jpeg()).status_code == 409
    backend.release.set()
    assert wait_for_job(client, job["id"])["state"] == "done"
    assert client.post("/api/preview", json={"upload": upload_id, "frame": 0, "options": {}}).status_code == 200


def test_a_cpu_job_lets_previews_run_beside_it(serve, clip):
    backend = BlockingBackend()
    client = serve(backend)
    upload_id = upload(client, clip(frames=8).path).json()["id"]
    job = client.post("/api/jobs", json={"upload": upload_id, "options": {}}).json()
    assert backend.entered.wait(60)
    answers = []
    preview = threading.Thread(target=lambda: answers.append(
        client.post("/api/preview", json={"upload": upload_id, "frame": 0, "options": {}})))
    preview.start()
    assert backend.wait_for_calls(2)  # the preview is in the backend while the job is too
    backend.release.set()
    preview.join(60)
    assert answers[0].status_code == 200
    assert wait_for_job(client, job["id"])["state"] == "done"
