"""vidtoon batch on local worker processes: a real tree of clips, real outputs, resume after kill -9."""

import fcntl
import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, fields, replace

import psutil
import pytest
from batch_helpers import (
    CORRUPT,
    GOOD,
    batch_with_factory,
    cannot_load,
    check_output,
    crash_on_width_80,
    leftovers,
    make_flat,
    make_tree,
    report,
    stamps,
    statuses,
)
from clips import audio_packets, make_clip

from vidtoon import backends
from vidtoon.backends.classic import ClassicSettings
from vidtoon.backends.pix2pix import Pix2PixSettings
from vidtoon.batch.manifest import MANIFEST_NAME, Manifest, recipe_fingerprint
from vidtoon.batch.plan import clip_for, find_clips
from vidtoon.batch.run import BatchOptions, run_batch
from vidtoon.batch.watchdog import clip_limit
from vidtoon.cli import ExitStatus
from vidtoon.config import EncodeSettings, Recipe
from vidtoon.errors import BackendUnavailable, SettingsError

VIDTOON = [sys.executable, "-m", "vidtoon"]
CLASSIC = ["--backend", "classic"]  # auto would import torch just to find no GPU


def batch(*args, **kwargs):
    return subprocess.run([*VIDTOON, "batch", *map(str, args)], capture_output=True, text=True, timeout=180, **kwargs)


def recipe(**changes):
    return replace(Recipe(backend="classic"), **changes)


def test_tree_outputs_report_exit_code_and_resume(tmp_path):
    tree = make_tree(tmp_path / "in")
    before = tree.digest()
    out = tmp_path / "out"
    proc = batch(tree.root, "-o", out, "-r", "-q", "-j", "2", *CLASSIC)
    assert proc.returncode == ExitStatus.SOME_FAILED, proc.stderr
    # -q: exactly one line, for the one bad clip, naming it; never a traceback
    assert proc.stderr.splitlines() == [proc.stderr.splitlines()[0]]
    assert proc.stderr.startswith(f"error: {CORRUPT}: not a readable video")
    assert "Traceback" not in proc.stderr and proc.stdout == ""
    for rel in GOOD:
        check_output(tree.root / rel, out / rel)
    assert audio_packets(out / "silent.mp4") == []
    made = sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file())
    assert made == sorted([*GOOD, "report.json", MANIFEST_NAME])  # nothing for the bad clip, the text or the hidden file
    assert tree.digest() == before  # inputs untouched

    data = report(out)
    assert data["counts"] == {"done": 4, "skipped": 0, "failed": 1, "interrupted": 0}
    assert data["ignored_files"] == 1 and data["backend"] == "classic"
    clips = {c["clip"]: c for c in data["clips"]}
    assert list(clips) == sorted(clips, key=lambda rel: rel.split("/"))
    for rel in GOOD:
        c = clips[rel]
        assert c["status"] == "done" and c["frames"] == tree.frames[rel] and c["error"] is None
        assert c["seconds"] > 0 and c["fps"] == pytest.approx(c["frames"] / c["seconds"], rel=0.05)
    assert clips[CORRUPT]["status"] == "failed" and "not a readable video" in clips[CORRUPT]["error"]

    # A rerun skips the finished clips (the output files are not even rewritten) and retries the bad one.
    kept = stamps(out, GOOD)
    again = batch(tree.root, "-o", out, "-r", *CLASSIC)
    assert again.returncode == ExitStatus.SOME_FAILED, again.stderr
    assert "4 of 5 clips are up to date" in again.stderr and f"failed {CORRUPT}" in again.stderr
    assert "0 done, 4 up to date, 1 failed" in again.stderr and "Traceback" not in again.stderr
    assert stamps(out, GOOD) == kept
    assert statuses(out) == {**{rel: "skipped" for rel in GOOD}, CORRUPT: "failed"}
    assert {c["clip"]: c["frames"] for c in report(out)["clips"] if c["status"] == "skipped"} == tree.frames
    assert leftovers(out) == []


def test_settings_change_and_force_redo(tmp_path):
    root = tmp_path / "in"
    names = make_flat(root, 3, frames=6)
    out = tmp_path / "out"
    assert batch(root, "-o", out, "-q", *CLASSIC).returncode == 0
    first = stamps(out, names)
    assert batch(root, "-o", out, "-q", *CLASSIC, "--levels", "4").returncode == 0
    second = stamps(out, names)
    assert all(second[n] != first[n] for n in names)  # every clip redone
    assert set(statuses(out).values()) == {"done"}
    assert batch(root, "-o", out, "-q", *CLASSIC, "--levels", "4").returncode == 0
    assert stamps(out, names) == second and set(statuses(out).values()) == {"skipped"}
    assert batch(root, "-o", out, "-q", *CLASSIC, "--levels", "4", "--force").returncode == 0
    assert all(stamps(out, names)[n] != second[n] for n in names)
    assert set(statuses(out).values()) == {"done"}


def test_input_and_output_changes_are_noticed(tmp_path):
    root = tmp_path / "in"
    names = make_flat(root, 4, frames=5)
    out = tmp_path / "out"
    options = BatchOptions(root, out, jobs=1)

    def run():
        result = run_batch(options, recipe())
        return {r.rel: r.status for r in result.results}

    assert set(run().values()) == {"done"}
    first = stamps(out, names)
    os.utime(root / names[0], ns=(1, 1))  # new mtime, same bytes: the hash says unchanged
    make_clip(root / names[1], frames=7)  # new content
    (out / names[2]).write_bytes(b"truncated")  # a damaged output
    (out / names[3]).unlink()  # a deleted output
    assert run() == {names[0]: "skipped", names[1]: "done", names[2]: "done", names[3]: "done"}
    assert stamps(out, names)[names[0]] == first[names[0]]
    check_output(root / names[1], out / names[1])
    assert Manifest.load(out).clips[names[0]]["input"]["mtime_ns"] == 1  # remembered: no hashing next time
    assert set(run().values()) == {"skipped"}


def test_fingerprint_covers_every_field_of_the_recipe_but_no_paths():
    base = recipe()
    fp = recipe_fingerprint(base)
    assert not {"input", "output", "overwrite"} & {f.name for f in fields(Recipe)}  # where, not how: the Job's
    for changed in (
        base.with_backend("classic", ClassicSettings(levels=4)),
        replace(base, encode=EncodeSettings(crf=30)),
        replace(base, compare=True),
        replace(base, stabilize=True),
        replace(base, batch_size=4),
        replace(base, backend="pix2pix"),
    ):
        assert recipe_fingerprint(changed) != fp


def test_fingerprint_ignores_the_settings_of_backends_that_do_not_run():
    """Regression: changing --levels redid every pix2pix clip."""
    p2p = recipe(backend="pix2pix")
    assert recipe_fingerprint(p2p.with_backend("pix2pix", Pix2PixSettings(steps=5))) != recipe_fingerprint(p2p)
    other_levels = replace(p2p, settings={**p2p.settings, "classic": ClassicSettings(levels=4)})
    assert recipe_fingerprint(other_levels) == recipe_fingerprint(p2p)
    classic = recipe()
    assert recipe_fingerprint(replace(classic, settings={"pix2pix": Pix2PixSettings(steps=5)})) == recipe_fingerprint(classic)

    # A field another part of vidtoon adds later counts without any change here.
    @dataclass(frozen=True)
    class Later:
        seed: int = 0

    @dataclass(frozen=True)
    class Extended(Recipe):
        later: Later = Later()

    one = Extended(backend="classic")
    assert recipe_fingerprint(one) != recipe_fingerprint(replace(one, later=Later(seed=1)))


def test_kill_9_mid_batch_then_resume_does_each_clip_once(tmp_path):
    root = tmp_path / "in"
    names = make_flat(root, 8, frames=48, width=160, height=120)
    out = tmp_path / "out"
    proc = subprocess.Popen([*VIDTOON, "batch", str(root), "-o", str(out), "-q", "-j", "2", *CLASSIC], stderr=subprocess.PIPE)
    manifest = out / MANIFEST_NAME
    deadline = time.monotonic() + 120
    done: list[str] = []
    while not done:  # kill as soon as one clip is recorded
        assert time.monotonic() < deadline and proc.poll() is None, "the batch ended before a kill could land"
        try:
            done = [k for k, v in json.loads(manifest.read_text())["clips"].items() if v["state"] == "done"]
        except (OSError, ValueError):
            pass
        time.sleep(0.005)
    workers = psutil.Process(proc.pid).children(recursive=True)
    proc.kill()
    proc.wait(30)
    _, alive = psutil.wait_procs(workers, timeout=15)
    assert alive == [], "worker processes outlived their parent"

    landed = stamps(out, names)  # complete outputs only: the writer renames a file into place when done
    assert set(done) <= set(landed) and len(landed) < len(names), (done, landed)
    for name in landed:
        check_output(root / name, out / name)

    proc = subprocess.run([*VIDTOON, "batch", str(root), "-o", str(out), "-q", "-j", "2", *CLASSIC], capture_output=True, text=True, timeout=180)
    assert proc.returncode == 0, proc.stderr
    for name in names:
        check_output(root / name, out / name)
    # Nothing twice: every output that had landed before the kill is the same file now...
    assert {n: s for n, s in stamps(out, names).items() if n in landed} == landed
    # ...and the rerun did exactly the others.
    assert statuses(out) == {n: "skipped" if n in landed else "done" for n in names}
    assert leftovers(out) == []


def test_ctrl_c_stops_workers_and_leaves_a_consistent_manifest(tmp_path):
    root = tmp_path / "in"
    names = make_flat(root, 6, frames=60, width=160, height=120)
    out = tmp_path / "out"
    proc = subprocess.Popen(
        [*VIDTOON, "batch", str(root), "-o", str(out), "-j", "2", *CLASSIC],
        stderr=subprocess.PIPE, text=True, start_new_session=True,  # its own group, as a terminal's Ctrl-C hits it
    )
    deadline = time.monotonic() + 120
    while not any(p.name.endswith(".part") for p in out.glob(".*")):
        assert time.monotonic() < deadline and proc.poll() is None, "never started writing"
        time.sleep(0.01)
    time.sleep(0.2)
    workers = psutil.Process(proc.pid).children(recursive=True)
    os.killpg(proc.pid, signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == ExitStatus.INTERRUPTED, err
    assert "interrupted" in err and "run the same command again" in err and "Traceback" not in err
    _, alive = psutil.wait_procs(workers, timeout=15)
    assert alive == []
    assert leftovers(out) == []
    clips = Manifest.load(out).clips
    for name, entry in clips.items():
        if entry["state"] == "done":
            assert (out / name).stat().st_size == entry["output_size"]
            check_output(root / name, out / name)
    assert report(out)["interrupted"] is True
    assert batch(root, "-o", out, "-q", "-j", "2", *CLASSIC).returncode == 0
    assert set(statuses(out).values()) <= {"done", "skipped"}
    for name in names:
        check_output(root / name, out / name)


def test_a_crashing_worker_is_replaced_and_its_clip_retried_once(tmp_path):
    root = tmp_path / "in"
    make_flat(root, 2, frames=4)
    make_clip(root / "crash.mp4", width=80, frames=4)
    out = tmp_path / "out"
    result = run_batch(BatchOptions(root, out, jobs=2), recipe(), factory=crash_on_width_80)
    by_clip = {r.rel: r for r in result.results}
    assert by_clip["crash.mp4"].status == "failed" and by_clip["crash.mp4"].attempts == 2
    assert "worker process died (killed by SIGKILL), 2 times" in by_clip["crash.mp4"].error
    assert by_clip["clip00.mp4"].status == by_clip["clip01.mp4"].status == "done"
    assert not (out / "crash.mp4").exists() and leftovers(out) == []


def test_a_backend_that_cannot_load_stops_the_batch_before_any_clip(tmp_path):
    root = tmp_path / "in"
    make_flat(root, 2, frames=3)
    with pytest.raises(BackendUnavailable, match="no weights"):
        run_batch(BatchOptions(root, tmp_path / "out", jobs=2), recipe(), factory=cannot_load)
    workers = [p for p in psutil.Process().children(recursive=True) if "resource_tracker" not in " ".join(p.cmdline())]
    assert workers == []
    assert list((tmp_path / "out").glob("*.mp4")) == []


@pytest.mark.parametrize(
    ("make_args", "message"),
    [
        (lambda t: [t / "missing", "-o", t / "out"], "no such directory"),
        (lambda t: [t / "in", "-o", t / "in"], "must not be the input folder"),
        (lambda t: [t / "in" / "sub", "-o", t / "in"], "must not be the input folder or contain it"),
        (lambda t: [t / "in" / "a.mp4", "-o", t / "out"], "batch takes a directory"),
        (lambda t: [t / "in" / "sub" / "deep" / "empty", "-o", t / "out"], "no clips found"),
        (lambda t: [t / "in", "-o", t / "out", "--codec", "libvpx-vp9", "--suffix", "avi"], "cannot be written into .avi"),
        (lambda t: [t / "in", "-o", t / "out", "-r", "--codec", "mpeg4", "--glob", "*.webm"], "or choose the output container"),
        (lambda t: [t / "in", "-o", t / "out", "--suffix", ".txt"], "--suffix '.txt' is not a container"),
        (lambda t: [t / "in", "-o", t / "out", "--jobs", "0"], "--jobs must be at least 1"),
        (lambda t: [t / "in", "-o", t / "out", "--levels", "99"], "--levels must be between"),
    ],
)
def test_a_batch_that_cannot_start_exits_2_in_one_line(tmp_path, make_args, message):
    (tmp_path / "in" / "sub" / "deep" / "empty").mkdir(parents=True)
    make_clip(tmp_path / "in" / "a.mp4", frames=2)
    make_clip(tmp_path / "in" / "sub" / "w.webm", frames=2)
    proc = batch(*make_args(tmp_path), *CLASSIC)
    assert proc.returncode == ExitStatus.BAD_INPUT, proc.stderr
    assert message in proc.stderr and proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr
    assert not (tmp_path / "out").exists() or list((tmp_path / "out").iterdir()) == []


def test_one_batch_per_out_dir(tmp_path):
    make_flat(tmp_path / "in", 1, frames=2)
    out = tmp_path / "out"
    out.mkdir()
    fd = os.open(out, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)  # as a running batch holds it
        proc = batch(tmp_path / "in", "-o", out, *CLASSIC)
    finally:
        os.close(fd)
    assert proc.returncode == ExitStatus.BAD_INPUT and "another vidtoon batch is writing into it" in proc.stderr


def test_outputs_vidtoon_did_not_make_are_kept_unless_forced(tmp_path):
    root = tmp_path / "in"
    names = make_flat(root, 2, frames=3)
    out = tmp_path / "out"
    out.mkdir()
    (out / names[0]).write_bytes(b"keep me")
    proc = batch(root, "-o", out, "-q", *CLASSIC)
    assert proc.returncode == ExitStatus.SOME_FAILED
    assert f"error: {names[0]}: {names[0]} already exists and no earlier batch made it" in proc.stderr
    assert (out / names[0]).read_bytes() == b"keep me"
    assert statuses(out) == {names[0]: "failed", names[1]: "done"}
    assert batch(root, "-o", out, "-q", "--force", *CLASSIC).returncode == 0
    check_output(root / names[0], out / names[0])


def test_discovery_globs_suffixes_and_an_out_dir_inside_the_in_dir(tmp_path):
    tree = make_tree(tmp_path / "in")
    out = tree.root / "cartoons"
    out.mkdir()
    make_clip(out / "old.mp4", frames=2)  # an earlier batch's output inside IN_DIR is not input
    found, ignored = find_clips(tree.root, out, recursive=True)
    assert [p.relative_to(tree.root).as_posix() for p in found] == ["a.mp4", "silent.mp4", "sub/b.mkv", CORRUPT, "sub/deep/c.mov"]
    assert ignored == 1
    top, _ = find_clips(tree.root, out, recursive=False)
    assert [p.name for p in top] == ["a.mp4", "silent.mp4"]
    mkv, _ = find_clips(tree.root, out, recursive=True, globs=("*.MKV",))
    assert [p.name for p in mkv] == ["b.mkv"]
    assert clip_for(tree.root, out, tree.root / "sub/b.mkv", None).output == out / "sub/b.mkv"
    assert clip_for(tree.root, out, tree.root / "sub/b.mkv", ".mp4").output_rel == "sub/b.mp4"
    assert clip_for(tree.root, out, tree.root / "x.flv", None).output_rel == "x.mp4"  # vidtoon writes no .flv


def test_a_clip_finished_by_a_run_that_died_unrecorded_is_adopted(tmp_path):
    """kill -9 can land after a clip's output was renamed into place and before the
    manifest said so; the next run must take that output, not make it again."""
    root = tmp_path / "in"
    names = make_flat(root, 2, frames=4)
    out = tmp_path / "out"
    run_batch(BatchOptions(root, out, jobs=1), recipe())
    manifest = Manifest.load(out)
    fp = recipe_fingerprint(recipe())
    landed = (out / names[0]).stat().st_mtime_ns
    for name, started in ((names[0], landed - 10**9), (names[1], landed + 10**9)):  # before / after its output landed
        stamp = {k: manifest.clips[name]["input"][k] for k in ("size", "mtime_ns")}
        manifest.mark_running(name, stamp, name, fp, started)
    manifest.save()
    kept = stamps(out, names)
    result = run_batch(BatchOptions(root, out, jobs=1), recipe())
    by_clip = {r.rel: r for r in result.results}
    assert by_clip[names[0]].status == "skipped" and "interrupted run" in by_clip[names[0]].notes[0]
    assert by_clip[names[0]].frames == 4 and stamps(out, names)[names[0]] == kept[names[0]]
    assert by_clip[names[1]].status == "done" and stamps(out, names)[names[1]] != kept[names[1]]
    assert Manifest.load(out).clips[names[0]]["state"] == "done"


def test_report_html_has_pictures_and_a_link_per_clip(tmp_path):
    import base64
    import re
    import urllib.parse

    import cv2
    import numpy as np

    tree = make_tree(tmp_path / "in")
    out = tmp_path / "out"
    proc = batch(tree.root, "-o", out, "-r", "--report-html", *CLASSIC)
    assert proc.returncode == ExitStatus.SOME_FAILED
    assert "report: " in proc.stderr and "report.html" in proc.stderr
    page = (out / "report.html").read_text()
    assert page.count('<img src="data:image/jpeg;base64,') == 3 * len(GOOD)  # pair + strip
    assert page.count('alt="source"') == page.count('alt="cartoon"') == page.count('alt="frames of the cartoon"') == len(GOOD)
    assert CORRUPT in page and "not a readable video" in page
    assert "http" not in page.replace("<!doctype html>", "")  # self-contained: nothing to fetch
    for rel in GOOD:
        assert f'<a href="{urllib.parse.quote(rel)}">' in page and (out / rel).is_file()  # relative to OUT_DIR
    pictures = [cv2.imdecode(np.frombuffer(base64.b64decode(b), np.uint8), cv2.IMREAD_COLOR)
                for b in re.findall(r'base64,([^"]+)"', page)]
    widths = sorted({p.shape[1] for p in pictures})
    assert widths == [480, 960]  # the pair at 480 px each, the strip of six 160 px frames
    assert page.count("made by this run") == len(GOOD)


def test_a_no_op_rerun_keeps_each_clips_last_real_result(tmp_path):
    from faults import faststart, truncate

    root = tmp_path / "in"
    root.mkdir()
    make_clip(root / "whole.mp4", frames=6)
    streamed = faststart(make_clip(tmp_path / "full.mp4", frames=30).path, tmp_path / "streamed.mp4")
    truncate(streamed, root / "cut.mp4", 0.5)  # a salvaged clip: it has a warning to keep
    out = tmp_path / "out"
    assert batch(root, "-o", out, *CLASSIC, "-q", "--report-html").returncode == 0
    first = {c["clip"]: c for c in report(out)["clips"]}
    assert all(c["status"] == "done" and c["made_by_this_run"] and c["made"] for c in first.values())
    again = batch(root, "-o", out, *CLASSIC, "-q", "--report-html")
    assert again.returncode == 0, again.stderr
    data = report(out)
    assert data["counts"] == {"done": 0, "skipped": 2, "failed": 0, "interrupted": 0}  # what this run did
    for clip in data["clips"]:
        before = first[clip["clip"]]
        assert clip["status"] == "skipped" and clip["made_by_this_run"] is False
        for key in ("frames", "seconds", "fps", "backend", "worker", "warnings", "made"):
            assert clip[key] == before[key], key  # the run that made the output
    assert "the file is cut short" in data["clips"][0]["warnings"][0]
    page = (out / "report.html").read_text()
    assert page.count("by an earlier run") == 2 and page.count("up to date") >= 2
    assert page.count('alt="cartoon"') == 2 and "the file is cut short" in page


def test_batch_imports_nothing_heavy():
    code = "import sys, vidtoon.batch, vidtoon.cli; print(sorted(m for m in ('ray', 'torch', 'av', 'cv2') if m in sys.modules))"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True).stdout.strip() == "[]"


@pytest.mark.parametrize(
    ("backend", "jobs", "cpus", "gpus", "clips", "count"),
    [
        ("classic", None, 8, 0, 100, 8),  # one per CPU
        ("classic", None, 8, 0, 3, 3),  # never more than the clips
        ("classic", 2, 8, 0, 100, 2),  # as asked
        ("pix2pix", None, 8, 4, 100, 4),  # one per GPU
        ("pix2pix", None, 8, 0, 100, 1),  # no GPU: one, on the CPU
    ],
)
def test_worker_count(backend, jobs, cpus, gpus, clips, count):
    from vidtoon.batch.local import worker_count

    assert worker_count(backends.spec(backend).gpu, jobs, cpus, gpus, clips) == count


def test_diffusion_workers_get_one_gpu_each(tmp_path, monkeypatch):
    """One worker per GPU, each seeing only its own through CUDA_VISIBLE_DEVICES (the
    worker's backend here names itself after it; no GPU is needed to check the wiring)."""
    from batch_helpers import named_by_device

    import vidtoon.batch.local

    monkeypatch.setattr(vidtoon.batch.local, "local_gpus", lambda: ["3", "5"])
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    root = tmp_path / "in"
    make_flat(root, 6, frames=3)
    result = run_batch(BatchOptions(root, tmp_path / "out"), recipe(backend="pix2pix"), factory=named_by_device)
    assert result.workers == "2 local worker processes on GPU 3, 5"
    seen = {r.worker: r.backend for r in result.results}  # (a worker that loaded late may get no clip)
    assert seen and seen.items() <= {"w1": "cuda3", "w2": "cuda5"}.items()
    assert "CUDA_VISIBLE_DEVICES" not in os.environ


class ScriptedPool:
    """A pool without processes: each clip it is given gets the events `script(job, attempt)` returns."""

    def __init__(self, script):
        self.script, self.queued, self.attempts = script, [], {}

    def resolve(self, settings):
        return settings, "as asked"

    def start(self, template, clips):
        pass

    def describe(self):
        return "a scripted pool"

    def idle(self):
        return [] if self.queued else ["f1"]

    def submit(self, worker, job):
        self.attempts[job.rel] = self.attempts.get(job.rel, 0) + 1
        self.queued.extend(self.script(job, self.attempts[job.rel]))

    def poll(self, timeout):
        events, self.queued = self.queued, []
        return events

    def close(self, graceful):
        pass


def test_scheduler_retries_lost_clips_and_checks_outputs_are_visible(tmp_path, monkeypatch):
    import vidtoon.batch.run
    from vidtoon.batch.workers import ClipResult, Finished, Lost

    def script(job, attempt):
        if job.rel == names[0]:  # the worker dies every time
            return [Lost(job.rel, "its worker process died (killed by SIGKILL)")]
        if job.rel == names[1] and attempt == 1:  # dies once; its late result is ignored, the retry counts
            return [Lost(job.rel, "its worker process died (killed by SIGKILL)"), Finished(ClipResult(job.rel, job.output_rel, "failed", error="late"))]
        # "done", but nothing appeared in OUT_DIR: as when an actor's node does not share it
        return [Finished(ClipResult(job.rel, job.output_rel, "done", frames=3, seconds=0.1, output_size=99, input={}))]

    root = tmp_path / "in"
    names = make_flat(root, 3, frames=2)
    monkeypatch.setattr(vidtoon.batch.run, "_make_pool", lambda options, factory: ScriptedPool(script))
    notes = []

    class Notes(vidtoon.batch.run.NoBatchObserver):
        def note(self, message):
            notes.append(message)

    result = run_batch(BatchOptions(root, tmp_path / "out"), recipe(), Notes())
    by_clip = {r.rel: r for r in result.results}
    assert by_clip[names[0]].status == "failed" and by_clip[names[0]].attempts == 2
    assert by_clip[names[0]].error == "its worker process died (killed by SIGKILL), 2 times"
    assert f"{names[0]}: its worker process died (killed by SIGKILL); trying again" in notes
    for name in names[1:]:
        assert by_clip[name].status == "failed" and "OUT_DIR must be on a filesystem that every node shares" in by_clip[name].error
    assert by_clip[names[1]].attempts == 2
    assert {e["state"] for e in Manifest.load(tmp_path / "out").clips.values()} == {"failed"}


@pytest.mark.parametrize("quiet", [False, True])
def test_a_salvaged_clip_is_done_with_its_warning_said_and_reported(tmp_path, quiet):
    from faults import faststart, truncate

    root = tmp_path / "in"
    root.mkdir()
    make_clip(root / "whole.mp4", frames=6)
    streamed = faststart(make_clip(tmp_path / "full.mp4", frames=30).path, tmp_path / "streamed.mp4")
    truncate(streamed, root / "cut.mp4", 0.5)
    out = tmp_path / "out"
    proc = batch(root, "-o", out, *CLASSIC, *(["-q"] if quiet else []))
    assert proc.returncode == 0, proc.stderr
    assert statuses(out) == {"whole.mp4": "done", "cut.mp4": "done"}
    clips = {c["clip"]: c for c in report(out)["clips"]}
    assert clips["whole.mp4"]["warnings"] == []
    [warning] = clips["cut.mp4"]["warnings"]
    assert "the file is cut short: salvaged" in warning
    assert f"warning: cut.mp4: {warning}" in " ".join(proc.stderr.split())


@pytest.mark.parametrize("quiet", [False, True])
def test_non_utf8_clip_names_are_processed_and_shown_escaped(tmp_path, quiet):
    root = tmp_path / "in"
    root.mkdir()
    good, bad = os.fsdecode(b"caf\xe9.mp4"), os.fsdecode(b"bro\xefken.mp4")
    make_clip(root / good, frames=4)
    (root / bad).write_bytes(b"not a video")
    out = tmp_path / "out"
    proc = subprocess.run([*VIDTOON, "batch", root, "-o", out, *CLASSIC, "--report-html", *(["-q"] if quiet else [])],
                          capture_output=True, timeout=180)
    err = proc.stderr.decode("utf-8")
    assert proc.returncode == ExitStatus.SOME_FAILED, err
    assert "Traceback" not in err and "bro\\xefken.mp4" in err
    check_output(root / good, out / good)
    assert (out / "report.html").is_file() and statuses(out)[good] == "done"
    assert '<a href="caf%E9.mp4">' in (out / "report.html").read_text()  # the link is the file's own bytes


def test_auto_checks_the_model_the_batch_was_given(tmp_path, tiny_model):
    """Regression: batch --backend auto --model DIR checked the default model, not DIR
    (the workers called choose() without the model), unlike cartoonize."""
    torch = pytest.importorskip("torch")

    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU, so auto may pick pix2pix")
    root = tmp_path / "in"
    make_flat(root, 1, frames=2)
    notes = []

    class Notes:
        def __getattr__(self, name):
            return lambda *args: notes.append(args[0]) if name == "note" else None

    given = Recipe(settings={"pix2pix": Pix2PixSettings(model=str(tiny_model))})
    result = run_batch(BatchOptions(root, tmp_path / "out"), given, Notes())
    assert result.backend == "classic"
    # The folder is there, so what auto found missing is the GPU, not the weights.
    assert "backend: classic (auto: pix2pix cannot run here, no CUDA GPU found)" in notes
    proc = batch(root, "-o", tmp_path / "out2", "--model", tiny_model)
    assert proc.returncode == 0 and "auto: pix2pix cannot run here, no CUDA GPU found" in proc.stderr, proc.stderr


def wait_for_a_done_clip(proc, out, what="the batch ended before its first clip was done"):
    """Return once the manifest records a finished clip (polled: the event itself, not a delay)."""
    deadline = time.monotonic() + 120  # a safety net only
    while True:
        assert time.monotonic() < deadline and proc.poll() is None, what
        try:
            if any(v["state"] == "done" for v in json.loads((out / MANIFEST_NAME).read_text())["clips"].values()):
                return
        except (OSError, ValueError):
            pass
        time.sleep(0.005)


EXIT_FOR_SIGNAL = {"SIGINT": ExitStatus.INTERRUPTED, "SIGTERM": ExitStatus.TERMINATED, "SIGHUP": ExitStatus.HANGUP}


@pytest.mark.parametrize(
    "burst",
    [("SIGINT", "SIGINT"), ("SIGINT", "SIGINT", "SIGINT"), ("SIGINT", "SIGTERM"), ("SIGTERM", "SIGHUP"), ("SIGHUP", "SIGINT", "SIGTERM")],
)
def test_a_burst_of_stop_signals_ends_the_batch_with_its_report_and_no_worker_left(tmp_path, burst):
    root = tmp_path / "in"
    root.mkdir()
    make_clip(root / "a-hangs.mp4", width=80, frames=4)  # never finishes: the batch is still running when the burst lands
    make_flat(root, 3, frames=4)
    out = tmp_path / "out"
    proc = subprocess.Popen(
        batch_with_factory("hang_on_width_80", root, "-o", out, "-j", "2", *CLASSIC),
        stderr=subprocess.PIPE, text=True, start_new_session=True,  # its own group, as a terminal's Ctrl-C hits it
    )
    try:
        wait_for_a_done_clip(proc, out)
        workers = psutil.Process(proc.pid).children(recursive=True)
        for name in burst:  # 10 ms apart, to the whole group, as fast key presses are
            os.killpg(proc.pid, getattr(signal, name))
            time.sleep(0.01)
        _, err = proc.communicate(timeout=60)  # a hang fails here
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    # The kernel may merge signals that arrive together, and then hands them over lowest
    # number first: the code is that of one of the burst's signals.
    assert proc.returncode in {EXIT_FOR_SIGNAL[name] for name in burst}, err
    assert "Traceback" not in err and "Exception ignored" not in err, err
    assert report(out)["interrupted"] is True
    assert statuses(out)["a-hangs.mp4"] == "interrupted"
    _, alive = psutil.wait_procs(workers, timeout=15)
    assert alive == [], "worker processes outlived the batch"
    assert leftovers(out) == []


def test_a_clip_over_its_time_limit_is_stopped_and_the_batch_goes_on(tmp_path):
    root = tmp_path / "in"
    root.mkdir()
    make_clip(root / "a-stuck.mp4", width=80, frames=4)  # first, so that the clips after it show the batch goes on
    names = make_flat(root, 2, frames=4)
    out = tmp_path / "out"
    # One worker, stuck where SIGTERM cannot reach it (as in an encoder library): only SIGKILL ends it.
    argv = batch_with_factory("stuck_on_width_80", root, "-o", out, "-j", "1", "-q", "--clip-timeout", "5", *CLASSIC)
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=180)
    assert proc.returncode == ExitStatus.SOME_FAILED, proc.stderr
    line = "error: a-stuck.mp4: stopped after 5 s, its time limit (--clip-timeout); its worker was replaced"
    assert proc.stderr.splitlines() == [line]
    assert statuses(out) == {"a-stuck.mp4": "failed", **dict.fromkeys(names, "done")}
    assert not (out / "a-stuck.mp4").exists() and leftovers(out) == []
    for name in names:
        check_output(root / name, out / name)


def test_the_clip_time_limit_grows_with_the_frames_and_can_be_set_or_lifted():
    assert clip_limit(None, gpu=False, asked=None) == 600  # frames not known yet
    assert clip_limit(1000, gpu=False, asked=None) == 600 + 10 * 1000
    assert clip_limit(1000, gpu=True, asked=None) == 600 + 300 * 1000
    assert clip_limit(1000, gpu=True, asked=5) == 5
    assert clip_limit(1000, gpu=False, asked=0) is None
    with pytest.raises(SettingsError, match="--clip-timeout must be 0"):
        BatchOptions("in", "out", clip_timeout=-1)


def _fsize_limit(size):
    """preexec_fn: writes past `size` bytes fail with EFBIG, as on a full disk (SIGXFSZ is ignored by Python)."""
    import resource

    return lambda: resource.setrlimit(resource.RLIMIT_FSIZE, (size, size))


def test_a_disk_that_fills_mid_batch_fails_the_clips_that_do_not_fit(tmp_path):
    root = tmp_path / "in"
    root.mkdir()
    make_clip(root / "a-small.mp4", width=16, height=16, frames=1)  # its cartoon fits in the 5000 bytes left
    names = make_flat(root, 2, frames=4)  # theirs (about 8 KB) do not; the manifest and report (about 2 KB) do
    out = tmp_path / "out"
    proc = batch(root, "-o", out, "-q", "-j", "1", *CLASSIC, preexec_fn=_fsize_limit(5000))
    assert proc.returncode == ExitStatus.SOME_FAILED, proc.stderr
    assert proc.stderr.splitlines() == [f"error: {n}: {out / n}: writing failed (File too large)" for n in names]
    assert statuses(out) == {"a-small.mp4": "done", **dict.fromkeys(names, "failed")}
    assert leftovers(out) == []


@pytest.mark.parametrize("report_fits", [True, False])
def test_a_manifest_that_cannot_be_saved_mid_batch_stops_it_with_exit_3_and_its_report(tmp_path, monkeypatch, report_fits):
    import vidtoon.batch.manifest
    from vidtoon.errors import OutputError

    real = vidtoon.batch.manifest.write_atomic
    full = False

    def fill_after_a_done_clip(target, data, sync=False):
        nonlocal full
        full = full or (target.name == MANIFEST_NAME and b'"state": "done"' in data)
        if full and (target.name == MANIFEST_NAME or not report_fits):
            raise OutputError(f"{target}: cannot be written (No space left on device)")
        real(target, data, sync)

    monkeypatch.setattr(vidtoon.batch.manifest, "write_atomic", fill_after_a_done_clip)
    root = tmp_path / "in"
    make_flat(root, 3, frames=4)
    out = tmp_path / "out"
    with pytest.raises(OutputError, match=f"{MANIFEST_NAME}: cannot be written .No space left on device"):
        run_batch(BatchOptions(root, out, jobs=1), recipe())  # the first error is the one told
    if report_fits:
        assert report(out)["interrupted"] is True
        assert statuses(out)["clip00.mp4"] == "done" and statuses(out)["clip02.mp4"] == "interrupted"
    else:
        assert not (out / "report.json").exists()
    workers = [p for p in psutil.Process().children(recursive=True) if "resource_tracker" not in " ".join(p.cmdline())]
    assert workers == [] and leftovers(out) == []


def test_input_folders_named_like_the_batchs_own_files_fail_alone(tmp_path):
    root = tmp_path / "in"
    for folder in ("report.json", "report.html", MANIFEST_NAME):
        (root / folder).mkdir(parents=True)
        make_clip(root / folder / "x.mp4", frames=2)
    make_clip(root / "ok.mp4", frames=2)
    out = tmp_path / "out"
    proc = batch(root, "-o", out, "-r", "-q", *CLASSIC)
    assert proc.returncode == ExitStatus.SOME_FAILED, proc.stderr
    reserved = {f"{f}/x.mp4": "failed" for f in ("report.html", "report.json", MANIFEST_NAME)}
    assert statuses(out) == {**reserved, "ok.mp4": "done"}  # report.json is the report
    for folder in ("report.json", "report.html", MANIFEST_NAME):
        assert f"error: {folder}/x.mp4: its output would go into {folder}, a name the batch keeps" in proc.stderr
    assert sorted(p.name for p in out.iterdir()) == ["ok.mp4", "report.json", MANIFEST_NAME]
    assert batch(root, "-o", out, "-r", "-q", *CLASSIC).returncode == ExitStatus.SOME_FAILED  # and the rerun reads its manifest
    assert statuses(out)["ok.mp4"] == "skipped"


def test_a_symlinked_folder_in_out_dir_is_not_followed(tmp_path):
    root = tmp_path / "in"
    (root / "sub").mkdir(parents=True)
    make_clip(root / "sub" / "a.mp4", frames=2)
    make_clip(root / "b.mp4", frames=2)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    out = tmp_path / "out"
    out.mkdir()
    (out / "sub").symlink_to(elsewhere)
    proc = batch(root, "-o", out, "-r", "-q", *CLASSIC)
    assert proc.returncode == ExitStatus.SOME_FAILED, proc.stderr
    assert proc.stderr.splitlines() == [
        f"error: sub/a.mp4: {out / 'sub'} is a symbolic link; the batch writes only inside OUT_DIR, so remove it or make it a folder"
    ]
    assert statuses(out) == {"sub/a.mp4": "failed", "b.mp4": "done"}
    assert list(elsewhere.iterdir()) == []


def _tgkill(pid, tid, signum):
    """Signal one thread of another process (Linux): as the kernel may choose to deliver a process's signal."""
    import ctypes
    import platform

    number = {"x86_64": 234, "aarch64": 131}[platform.machine()]  # SYS_tgkill
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.syscall(number, pid, tid, signum) != 0:
        raise OSError(ctypes.get_errno(), "tgkill")


def _blocks(pid, tid, signum):
    """Does this thread block the signal? (The kernel never hands such a thread a process's signal.)"""
    with open(f"/proc/{pid}/task/{tid}/status") as f:
        mask = next(int(line.split()[1], 16) for line in f if line.startswith("SigBlk:"))
    return bool(mask >> (signum - 1) & 1)


def test_an_idle_worker_stops_on_a_sigterm_that_reaches_another_of_its_threads(tmp_path):
    """A Python signal handler runs on the main thread only: a worker blocked for good in
    inbox.get() never ran it when the kernel handed SIGTERM to its queue's feeder thread."""
    from vidtoon.batch.local import LocalPool
    from vidtoon.batch.workers import Ready, default_factory

    pool = LocalPool(1, default_factory)
    pool.start(recipe(), clips=1)
    try:
        deadline = time.monotonic() + 120  # a safety net only
        while not any(isinstance(e, Ready) for e in pool.poll(0.1)):
            assert time.monotonic() < deadline, "the worker never loaded"
        worker = next(p for p in psutil.Process().children() if "resource_tracker" not in " ".join(p.cmdline()))
        others = [t.id for t in worker.threads() if t.id != worker.pid and not _blocks(worker.pid, t.id, signal.SIGTERM)]
        assert others, "the idle worker has a thread (its queue's feeder) that the kernel may give SIGTERM to"
        _tgkill(worker.pid, others[0], signal.SIGTERM)
        assert worker.wait(timeout=60) == 0  # unwound and ended (a blocked worker fails here, on the timeout)
    finally:
        pool.close(graceful=False)
