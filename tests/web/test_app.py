"""The web app over HTTP (Starlette's TestClient): every endpoint, the one-line errors,
the upload limit, cancel leaving nothing behind."""

import re
import threading

import av
import cv2
import numpy as np
from web_helpers import BlockingBackend, upload, wait_for_job

from vidtoon.backends.classic import STYLES
from vidtoon.web.app import STATIC
from vidtoon.web.store import parse_bytes, size_text


def files_in(folder):
    return sorted(p.name for p in folder.rglob("*") if p.is_file())


def one_line_error(response, status, pattern):
    assert response.status_code == status, response.text
    text = response.json()["error"]
    assert "\n" not in text and text.startswith("error: "), text
    assert re.search(pattern, text), text


def test_the_page_and_its_assets_are_served_and_fetch_nothing_from_elsewhere(serve):
    client = serve()
    page = client.get("/")
    assert page.status_code == 200 and "<title>vidtoon</title>" in page.text
    for name in ("app.js", "style.css"):
        assert client.get(f"/static/{name}").status_code == 200
    for path in STATIC.iterdir():
        assert not re.search(r"(https?:)?//[a-z0-9.-]+\.[a-z]{2,}/", path.read_text()), f"{path.name} links elsewhere"


def test_controls_list_the_backends_with_their_options_and_the_styles(serve):
    data = serve().get("/api/controls").json()
    backends = {b["name"]: b for b in data["backends"]}
    assert backends["classic"]["available"] is True
    fields = {f["name"]: f for f in backends["classic"]["fields"]}
    assert fields["style"]["choices"] == list(STYLES) and fields["style"]["default"] == "cel"
    assert fields["levels"]["type"] == "int" and fields["edges"]["type"] == "float"
    assert [f["name"] for f in data["recipe"]] == ["stabilize", "compare"]
    assert data["batch"] is True


def test_an_upload_is_stored_under_its_id_and_its_info_shown(serve, store, clip):
    source = clip("my clip.mp4", frames=12)
    answer = upload(serve(), source.path).json()
    assert answer["name"] == "my clip.mp4" and answer["info"]["path"] == "my clip.mp4"
    video = answer["info"]["video"][0]
    assert (video["width"], video["height"], video["frames"]["count"]) == (64, 48, 12)
    assert len(answer["info"]["audio"]) == 1
    assert files_in(store.uploads) == [answer["id"] + ".mp4"]
    assert serve().get(f"/api/uploads/{answer['id']}").content == source.path.read_bytes()
    part = serve().get(f"/api/uploads/{answer['id']}", headers={"Range": "bytes=10-19"})  # the player seeks
    assert part.status_code == 206 and part.content == source.path.read_bytes()[10:20]


def test_a_file_that_is_not_a_video_gets_the_cli_line_and_is_not_kept(serve, store, tmp_path):
    junk = tmp_path / "junk.mp4"
    junk.write_bytes(b"\x00not a video" * 100)
    one_line_error(upload(serve(), junk), 400, r"^error: junk\.mp4: not a readable video \(")
    empty = tmp_path / "empty.mov"
    empty.write_bytes(b"")
    one_line_error(upload(serve(), empty), 400, r"^error: empty\.mov: the file is empty$")
    assert files_in(store.uploads) == []


def test_uploads_over_the_limit_are_refused_whether_declared_or_streamed(serve, store):
    client = serve()
    store.limit = 1000
    assert parse_bytes("2G") == 2 * 2**30 and parse_bytes("500M") == 500 * 2**20 and parse_bytes("64KiB") == 65536
    assert size_text(2 * 2**30) == "2 GiB" and size_text(1536 * 2**10) == "1.5 MiB" and size_text(1000) == "1000 bytes"
    one_line_error(client.post("/api/uploads?name=big.mp4", content=b"x" * 1001), 413, r"big\.mp4: larger than the upload limit, 1000 bytes \(--max-upload\)$")

    def chunks():  # no Content-Length: the limit is counted as the bytes come
        for _ in range(20):
            yield b"x" * 100

    one_line_error(client.post("/api/uploads?name=big.mp4", content=chunks()), 413, r"larger than the upload limit")
    assert files_in(store.uploads) == []


def test_preview_gives_the_frame_before_and_after_at_preview_size(serve, clip):
    client = serve()
    upload_id = upload(client, clip(width=1280, height=720, frames=6).path).json()["id"]
    answer = client.post("/api/preview", json={"upload": upload_id, "frame": 3, "options": {"backend": "classic", "style": "comic"}}).json()
    import base64

    before, after = (cv2.imdecode(np.frombuffer(base64.b64decode(answer[k]), np.uint8), cv2.IMREAD_COLOR) for k in ("before", "after"))
    assert before.shape == after.shape == (360, 640, 3) and (answer["width"], answer["height"]) == (640, 360)
    assert np.abs(before.astype(int) - after.astype(int)).mean() > 5  # a cartoon, not the source again
    other = client.post("/api/preview", json={"upload": upload_id, "frame": 3, "options": {"style": "sketch"}}).json()
    assert other["after"] != answer["after"] and other["before"] == answer["before"]


def test_preview_errors_are_the_cli_lines(serve, clip):
    client = serve()
    upload_id = upload(client, clip(frames=6).path).json()["id"]
    one_line_error(client.post("/api/preview", json={"upload": upload_id, "frame": 0, "options": {"levels": 99}}), 400,
                   r"^error: --levels must be between 2 and 32, got 99$")
    one_line_error(client.post("/api/preview", json={"upload": upload_id, "frame": 9}), 400,
                   r"^error: in\.mp4: has 6 frames; --frame must be below that, got 9$")
    one_line_error(client.post("/api/preview", json={"upload": upload_id, "options": {"colour": 3}}), 400,
                   r"unknown option 'colour' for the classic backend")
    one_line_error(client.post("/api/preview", json={"upload": upload_id, "options": {"backend": "nope"}}), 400,
                   r"unknown backend 'nope'")
    one_line_error(client.post("/api/preview", content=b"{not json"), 400, r"must be a JSON object")
    one_line_error(client.post("/api/preview", json={"upload": "0123456789abcdef"}), 404, r"no such upload")


def test_a_job_runs_and_its_result_downloads_with_the_frames_and_audio(serve, store, clip):
    client = serve()
    upload_id = upload(client, clip("holiday.mp4", frames=12).path).json()["id"]
    job = client.post("/api/jobs", json={"upload": upload_id, "options": {"style": "anime", "stabilize": True}}).json()
    assert job["state"] in ("queued", "running")
    done = wait_for_job(client, job["id"])
    assert done["state"] == "done" and done["done"] == done["total"] == 12 and done["fps"] > 0, done
    assert any("temporal stage" in note for note in done["notes"])
    download = client.get(f"/api/jobs/{job['id']}/result?download=1")
    assert download.headers["content-disposition"] == 'attachment; filename="holiday-cartoon.mp4"'
    result = store.outputs / "result.mp4"
    result.write_bytes(download.content)
    with av.open(str(result)) as container:
        assert sum(1 for _ in container.decode(video=0)) == 12
        assert len(container.streams.audio) == 1
    assert client.get(f"/api/jobs/{job['id']}/result").content == download.content


def test_a_job_that_fails_says_why_in_one_line(serve, clip):
    client = serve()
    upload_id = upload(client, clip(frames=6).path).json()["id"]
    one_line_error(client.post("/api/jobs", json={"upload": upload_id, "options": {"steady": 2}}), 400,
                   r"^error: --steady must be between 0 and 0.95, got 2$")
    one_line_error(client.post("/api/jobs", json={"upload": "../../etc/passwd"}), 404, r"no such upload")
    one_line_error(client.post("/api/jobs/0123456789abcdef/cancel"), 404, r"no such job")
    one_line_error(client.get("/api/jobs/0123456789abcdef/result"), 404, r"no such result")


def test_cancel_stops_a_running_job_and_leaves_nothing_behind(serve, store, clip):
    backend = BlockingBackend()
    client = serve(backend)
    upload_id = upload(client, clip(frames=24).path).json()["id"]
    first = client.post("/api/jobs", json={"upload": upload_id, "options": {}}).json()
    second = client.post("/api/jobs", json={"upload": upload_id, "options": {}}).json()
    assert backend.entered.wait(60)
    queue = client.get("/api/jobs").json()["jobs"]
    assert [j["state"] for j in queue] == ["running", "queued"]  # one at a time
    assert client.post(f"/api/jobs/{second['id']}/cancel").json()["state"] == "cancelled"
    client.post(f"/api/jobs/{first['id']}/cancel")
    backend.release.set()
    assert wait_for_job(client, first["id"])["state"] == "cancelled"
    assert files_in(store.outputs) == []  # no output and no temporary file
    one_line_error(client.get(f"/api/jobs/{first['id']}/result"), 404, r"no such result")


def test_closing_the_app_cancels_the_running_job_and_removes_its_file(store, clip):
    from starlette.testclient import TestClient

    from vidtoon.web.app import create_app

    backend = BlockingBackend()
    app = create_app(store, backend)
    with TestClient(app) as client:
        upload_id = upload(client, clip(frames=24).path).json()["id"]
        job_id = client.post("/api/jobs", json={"upload": upload_id, "options": {}}).json()["id"]
        assert backend.entered.wait(60)
        job = app.state.queue.jobs[job_id]
        # The backend goes on only once the shutdown has cancelled the job, so the job is mid-run then.
        threading.Thread(target=lambda: job.cancel.wait(60) and backend.release.set(), daemon=True).start()
    assert job.state == "cancelled"
    assert files_in(store.outputs) == []
    store.close()
    assert not store.root.exists()


def test_webcam_frames_come_back_cartoonized_at_their_size(serve):
    client = serve()
    y, x = np.mgrid[0:240, 0:320]
    frame = np.dstack([x % 256, y % 256, (x + y) % 256]).astype(np.uint8)
    ok, data = cv2.imencode(".jpg", frame)
    answer = client.post('/api/live?options={"style":"comic"}', content=data.tobytes())
    assert answer.status_code == 200 and answer.headers["content-type"] == "image/jpeg"
    cartoon = cv2.imdecode(np.frombuffer(answer.content, np.uint8), cv2.IMREAD_COLOR)
    assert cartoon.shape == frame.shape
    assert np.abs(cartoon.astype(int) - frame.astype(int)).mean() > 5
    one_line_error(client.post("/api/live", content=b"not a picture"), 400, r"^error: the camera frame is not a readable")
    one_line_error(client.post("/api/live?options={bad", content=data.tobytes()), 400, r"options must be a JSON object")
    one_line_error(client.post('/api/live?options={"edges":9}', content=data.tobytes()), 400, r"--edges must be between 0 and 3")
    one_line_error(client.post('/api/live?options={"compare":true}', content=data.tobytes()), 400,
                   r"^error: --compare does not apply to the webcam$")


def test_the_batch_report_is_served_read_only(serve, store):
    client = serve()
    assert "<title>report</title>" in client.get("/batch/").text
    assert client.get("/batch/report.html").status_code == 200
    assert client.post("/batch/report.html").status_code == 405
    store.batch_dir = None
    one_line_error(client.get("/batch/"), 404, r"no such file in the batch folder")


def test_the_pix2pix_options_go_through_the_same_fields(serve, clip, tiny_model):
    """The page's controls are the backends' option fields, so pix2pix's work too (here asked
    for through the API: without a GPU the page lists it as not available, and says why)."""
    from vidtoon.backends import spec

    client = serve()
    listed = {b["name"]: b for b in client.get("/api/controls").json()["backends"]}
    pix2pix = spec("pix2pix")
    assert [listed["pix2pix"]["available"], listed["pix2pix"]["why"]] == list(pix2pix.available(pix2pix.settings()))
    upload_id = upload(client, clip(width=64, height=48, frames=3).path).json()["id"]
    options = {"backend": "pix2pix", "model": str(tiny_model), "steps": 2, "size": "32x24", "seed": 3}
    answer = client.post("/api/preview", json={"upload": upload_id, "frame": 1, "options": options})
    assert answer.status_code == 200, answer.text
    assert (answer.json()["width"], answer.json()["height"]) == (64, 48)
    one_line_error(client.post("/api/preview", json={"upload": upload_id, "options": {**options, "size": "big"}}), 400,
                   r"^error: .*big")


def test_a_bug_in_a_route_is_one_line_too(store, monkeypatch):
    from starlette.testclient import TestClient

    from vidtoon.web import app as web_app

    def boom():
        raise RuntimeError("no such thing\nsecond line")

    monkeypatch.setattr(web_app, "controls", boom)
    with TestClient(web_app.create_app(store), raise_server_exceptions=False) as client:
        answer = client.get("/api/controls")
    assert answer.status_code == 500
    assert answer.json()["error"] == "unexpected error: RuntimeError: no such thing\\nsecond line (a bug: see the server's log)"
