"""`vidtoon serve` as a command: the URL on start, the real server, Ctrl-C, the temporary
folder removed, the web extra missing, bad options."""

import signal
import urllib.error
import urllib.request

import pytest
from web_helpers import Served

from vidtoon.cli import ExitStatus, main


@pytest.mark.parametrize(("sig", "code", "said"), [(signal.SIGINT, ExitStatus.INTERRUPTED, "interrupted"),
                                                   (signal.SIGTERM, ExitStatus.TERMINATED, ""),
                                                   (signal.SIGHUP, ExitStatus.HANGUP, "")])
def test_serve_prints_the_url_serves_and_removes_its_folder_when_stopped(tmp_path, clip, sig, code, said):
    temp = tmp_path / "temp"
    temp.mkdir()
    source = clip(frames=4)
    served = Served(env={"TMPDIR": str(temp)})
    try:
        assert served.url.startswith("http://127.0.0.1:") and "this machine only" in served.first
        with urllib.request.urlopen(served.url, timeout=30) as page:
            assert b"<title>vidtoon</title>" in page.read()
        request = urllib.request.Request(served.url + "api/uploads?name=in.mp4", data=source.path.read_bytes(), method="POST")
        with urllib.request.urlopen(request, timeout=30) as answer:
            assert answer.status == 200
        assert [p.name for p in temp.iterdir()][0].startswith("vidtoon-serve-")  # the upload is in there
    finally:
        returned, err = served.stop(sig=sig)
    assert returned == code, err
    assert "Traceback" not in err and said in err
    assert list(temp.iterdir()) == []


def test_serve_keeps_outputs_in_out_dir(tmp_path):
    out = tmp_path / "kept"
    with Served("--out-dir", out, env={"TMPDIR": str(tmp_path)}) as served:
        code, err = served.stop()
    assert code == ExitStatus.INTERRUPTED and out.is_dir()


def test_serve_without_the_web_extra_says_how_to_install_it(monkeypatch, capsys):
    import importlib.util

    from vidtoon.cli import serve

    real = importlib.util.find_spec
    monkeypatch.setattr(serve.importlib.util, "find_spec", lambda name, *a: None if name == "starlette" else real(name, *a))
    assert main(["serve"]) == ExitStatus.BACKEND_UNAVAILABLE
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "install the web extra: pip install -e '.[web]'" in err


@pytest.mark.parametrize(("args", "message"), [
    (["--max-upload", "lots"], "--max-upload must be a size such as 2G"),
    (["--port", "70000"], "--port must be between 0 and 65535"),
    (["--batch-dir", "."], "holds no report.html"),
])
def test_serve_refuses_bad_options_in_one_line(capsys, args, message):
    assert main(["serve", *args]) == ExitStatus.BAD_INPUT
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("error: ") and message in err


def test_the_web_package_is_not_imported_by_other_commands():
    import subprocess
    import sys

    code = "import sys, vidtoon.cli; vidtoon.cli.build_parser(); print(sorted(m for m in sys.modules if m.split('.')[0] in ('starlette', 'uvicorn') or m.startswith('vidtoon.web')))"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip() == "[]"


def test_serve_shows_a_real_batch_report_read_only(tmp_path, clip):
    import subprocess
    import sys

    clips, out = tmp_path / "clips", tmp_path / "cartoons"
    clips.mkdir()
    clip("clips/a.mp4", frames=6)
    subprocess.run([sys.executable, "-m", "vidtoon", "batch", str(clips), "-o", str(out), "--report-html", "-q"], check=True, timeout=300)
    before = {p: p.stat().st_mtime_ns for p in out.rglob("*")}
    with Served("--batch-dir", out, env={"TMPDIR": str(tmp_path)}) as served:
        with urllib.request.urlopen(served.url + "batch/", timeout=30) as page:
            report = page.read().decode()
        assert 'href="a.mp4"' in report
        with urllib.request.urlopen(served.url + "batch/a.mp4", timeout=30) as video:
            assert video.read() == (out / "a.mp4").read_bytes()
        request = urllib.request.Request(served.url + "batch/a.mp4", data=b"x", method="PUT")
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(request, timeout=30)
        assert refused.value.code == 405
    assert {p: p.stat().st_mtime_ns for p in out.rglob("*")} == before


@pytest.mark.parametrize("wanted", [True, False])
def test_serve_opens_a_browser_only_with_open(monkeypatch, capsys, tmp_path, wanted):
    import webbrowser

    from vidtoon.web import server

    opened = []
    monkeypatch.setattr(webbrowser, "open", opened.append)
    monkeypatch.setattr(server, "serve", lambda sock, store, ready: ready(server.url_of(sock)))
    assert main(["serve", "--port", "0", "--out-dir", str(tmp_path / "o"), *(["--open"] if wanted else [])]) == ExitStatus.SUCCESS
    url = capsys.readouterr().err.split("serving on ", 1)[1].split(" ", 1)[0]
    assert url.startswith("http://127.0.0.1:") and opened == ([url] if wanted else [])
