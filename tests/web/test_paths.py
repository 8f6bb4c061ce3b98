"""Nothing outside the upload, output and batch folders is ever read or written,
whatever path a request tries: '..', absolute paths, encoded slashes, symbolic links."""

import pytest
from web_helpers import upload

SECRET = "top secret"


@pytest.fixture
def secret(tmp_path):
    path = tmp_path / "secret.txt"
    path.write_text(SECRET)
    return path


UPLOAD_TRIES = [
    "/api/uploads/..%2f..%2fsecret.txt",
    "/api/uploads/%2e%2e%2f%2e%2e%2fsecret.txt",
    "/api/uploads/..%5c..%5csecret.txt",
    "/api/uploads/%2Fetc%2Fpasswd",
    "/api/uploads/0123456789abcdef%2f..%2f..%2fsecret.txt",
    "/api/uploads/../../secret.txt",
    "/static/..%2f..%2f..%2fpyproject.toml",
    "/static/%2e%2e/app.py",
]

BATCH_TRIES = [
    "/batch/../secret.txt",
    "/batch/..%2fsecret.txt",
    "/batch/%2e%2e%2fsecret.txt",
    "/batch/%2e%2e/secret.txt",
    "/batch/sub/..%2f..%2fsecret.txt",
    "/batch/%2Fetc%2Fpasswd",
    "/batch//etc/passwd",
    "/batch/..%5csecret.txt",
    "/batch/C:%5cWindows",
    "/batch/report.html%00.txt",
    "/batch/out",  # the link to a folder outside
    "/batch/out/secret.txt",
    "/batch/leak.txt",  # a link to a file outside
]


@pytest.mark.parametrize("url", UPLOAD_TRIES + BATCH_TRIES)
def test_no_url_reads_outside_the_folders(serve, secret, url):
    response = serve().get(url)
    assert response.status_code in (404, 400), (url, response.status_code)
    assert SECRET not in response.text and "root:" not in response.text


@pytest.fixture(autouse=True)
def links_out(store, secret):
    """Symbolic links planted in the batch folder and the uploads folder, pointing outside."""
    (store.batch_dir / "leak.txt").symlink_to(secret)
    (store.batch_dir / "out").symlink_to(secret.parent, target_is_directory=True)
    (store.batch_dir / "sub").mkdir()
    (store.uploads / "0123456789abcdef.mp4").symlink_to(secret)


def test_a_symbolic_link_in_the_uploads_is_not_followed(serve):
    client = serve()
    response = client.get("/api/uploads/0123456789abcdef")
    assert response.status_code == 404 and SECRET not in response.text
    assert client.post("/api/preview", json={"upload": "0123456789abcdef", "frame": 0}).status_code == 404
    assert client.post("/api/jobs", json={"upload": "0123456789abcdef"}).status_code == 404


def test_a_link_inside_the_batch_folder_to_inside_it_is_served(serve, store):
    (store.batch_dir / "sub" / "index.html").write_text("inside")
    (store.batch_dir / "again.html").symlink_to(store.batch_dir / "sub" / "index.html")
    client = serve()
    assert client.get("/batch/sub/index.html").text == "inside"
    assert client.get("/batch/again.html").text == "inside"


@pytest.mark.parametrize("name", ["../../evil.mp4", "/tmp/evil.mp4", "..%2F..%2Fevil.mp4", "..\\..\\evil.mp4", "a/../../evil.mp4"])
def test_an_upload_name_never_becomes_a_path(serve, store, clip, tmp_path, name):
    source = clip("in.mp4", frames=4)
    answer = upload(serve(), source.path, name=name).json()
    assert answer["id"] + ".mp4" in [p.name for p in store.uploads.iterdir() if not p.is_symlink()]
    assert not list(tmp_path.rglob("evil.mp4")) and not list(store.root.parent.glob("evil.mp4"))
    assert not list(tmp_path.parent.glob("evil.mp4"))


@pytest.mark.parametrize("job_id", ["..", "../../secret", "%2e%2e", "0123456789ABCDEF", "0123456789abcdef0"])
def test_job_ids_that_are_not_ids_find_nothing(serve, job_id):
    client = serve()
    assert client.get(f"/api/jobs/{job_id}/result").status_code == 404
    assert client.post(f"/api/jobs/{job_id}/cancel").status_code == 404
