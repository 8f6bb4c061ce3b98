"""vidtoon batch on a real local Ray cluster: the same results as local workers, retries when an actor dies."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import psutil
import pytest
from batch_helpers import (
    CORRUPT,
    GOOD,
    check_output,
    crash_on_width_80,
    leftovers,
    make_flat,
    make_tree,
    report,
    statuses,
    stuck_on_width_80,
)
from clips import audio_packets, make_clip, read_video

from vidtoon.batch import BatchOptions, run_batch
from vidtoon.cli import ExitStatus
from vidtoon.config import Recipe

pytestmark = pytest.mark.slow  # a Ray start is ~5 s

VIDTOON = [sys.executable, "-m", "vidtoon"]
# Lossless H.264, so that equal outputs mean equal cartoon frames: x264's lossy
# choices differ now and then between two runs of the same frames on a busy
# machine (seen here), which would make a pixel comparison flaky.
LOSSLESS = ["--crf", "0"]
QUIET_RAY = {"RAY_USAGE_STATS_ENABLED": "0"}


def ray_daemons() -> set[int]:
    names = ("raylet", "gcs_server")
    return {p.pid for p in psutil.process_iter(["name"]) if p.info["name"] and p.info["name"].startswith(names)}


def test_ray_cli_gives_the_same_results_as_local_workers(tmp_path):
    tree = make_tree(tmp_path / "in")
    env = {**os.environ, **QUIET_RAY}
    daemons_before = ray_daemons()
    runs = {}
    for name, extra in (("local", ["-j", "2"]), ("ray", ["--ray"])):
        out = tmp_path / name
        runs[name] = subprocess.run(
            [*VIDTOON, "batch", str(tree.root), "-o", str(out), "-r", "-q", "--backend", "classic", *LOSSLESS, *extra],
            capture_output=True, text=True, timeout=300, env=env,
        )
    for proc in runs.values():
        assert proc.returncode == ExitStatus.SOME_FAILED, proc.stderr
        assert proc.stderr.startswith(f"error: {CORRUPT}: not a readable video") and proc.stderr.count("\n") == 1
    local, ray = tmp_path / "local", tmp_path / "ray"
    assert statuses(ray) == statuses(local) == {**{rel: "done" for rel in GOOD}, CORRUPT: "failed"}
    ray_report = report(ray)
    assert "Ray actor" in ray_report["workers"]
    assert all("@" in c["worker"] for c in ray_report["clips"] if c["status"] == "done")  # actor@node
    for rel in GOOD:
        check_output(tree.root / rel, ray / rel)
        # The same pixels, frame for frame, and the same audio bytes.
        local_frames, ray_frames = read_video(local / rel)[2], read_video(ray / rel)[2]
        assert len(local_frames) == len(ray_frames)
        assert all((a == b).all() for a, b in zip(local_frames, ray_frames, strict=True))
        assert audio_packets(local / rel) == audio_packets(ray / rel)
    assert leftovers(ray) == []
    # The CLI's private Ray instance went with it.
    started = [psutil.Process(pid) for pid in ray_daemons() - daemons_before if psutil.pid_exists(pid)]
    _, alive = psutil.wait_procs(started, timeout=15)
    assert alive == []


@pytest.fixture(scope="module")
def ray_cluster():
    """One local Ray cluster for the in-process tests; tests/helpers on the actors' path, for the test backends."""
    ray = pytest.importorskip("ray")
    os.environ.update(QUIET_RAY)
    tests = str(Path(__file__).resolve().parents[1] / "helpers")
    ray.init(
        num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False,
        runtime_env={"env_vars": {"PYTHONPATH": os.pathsep.join([tests, os.environ.get("PYTHONPATH", "")])}},
    )
    yield ray
    ray.shutdown()


def test_a_dead_actor_is_replaced_and_its_clip_retried_once(ray_cluster, tmp_path):
    root = tmp_path / "in"
    names = make_flat(root, 3, frames=4)
    make_clip(root / "crash.mp4", width=80, frames=4)
    out = tmp_path / "out"
    result = run_batch(BatchOptions(root, out, ray="auto", jobs=2), Recipe(backend="classic"), factory=crash_on_width_80)
    by_clip = {r.rel: r for r in result.results}
    crash = by_clip["crash.mp4"]
    assert crash.status == "failed" and crash.attempts == 2 and "its Ray worker failed" in crash.error, crash
    for name in names:
        assert by_clip[name].status == "done"
        check_output(root / name, out / name)
    assert not (out / "crash.mp4").exists() and leftovers(out) == []
    assert ray_cluster.is_initialized()  # a connection the caller made is left to the caller


def test_a_clip_over_its_time_limit_is_stopped_on_ray_too(ray_cluster, tmp_path):
    root = tmp_path / "in"
    root.mkdir()
    make_clip(root / "a-stuck.mp4", width=80, frames=4)  # first: the clips after it show the batch goes on
    names = make_flat(root, 2, frames=4)
    out = tmp_path / "out"
    options = BatchOptions(root, out, ray="auto", jobs=1, clip_timeout=5)
    result = run_batch(options, Recipe(backend="classic"), factory=stuck_on_width_80)
    by_clip = {r.rel: r for r in result.results}
    assert by_clip["a-stuck.mp4"].status == "failed" and "its time limit (--clip-timeout)" in by_clip["a-stuck.mp4"].error
    for name in names:
        assert by_clip[name].status == "done"
    assert not (out / "a-stuck.mp4").exists() and leftovers(out) == []


def test_cli_joins_a_running_cluster_and_leaves_it_running(ray_cluster, tmp_path):
    """What `--ray auto` does on a real cluster: connect to it, use it, disconnect."""
    root = tmp_path / "in"
    names = make_flat(root, 4, frames=6)
    out = tmp_path / "out"
    address = ray_cluster.get_runtime_context().gcs_address
    proc = subprocess.run(
        [*VIDTOON, "batch", str(root), "-o", str(out), "--backend", "classic", "--ray", address, "-j", "2"],
        capture_output=True, text=True, timeout=300, env={**os.environ, **QUIET_RAY},
    )
    assert proc.returncode == 0, proc.stderr
    assert "running on 2 Ray actors on a Ray cluster of 1 node, 2 CPUs" in proc.stderr
    assert "4 done, 0 up to date, 0 failed" in proc.stderr
    for name in names:
        check_output(root / name, out / name)
    assert ray_cluster.cluster_resources()["CPU"] == 2  # still up


def test_ray_runs_the_tiny_diffusion_model_like_a_local_worker(ray_cluster, tiny_model, tmp_path):
    """The pix2pix backend on a Ray actor: one model load per actor, the same frames as a local worker."""
    root = tmp_path / "in"
    names = make_flat(root, 2, frames=3)
    env = {**os.environ, **QUIET_RAY, "OMP_NUM_THREADS": "1"}
    address = ray_cluster.get_runtime_context().gcs_address
    pix2pix = ["--backend", "pix2pix", "--model", str(tiny_model), "--steps", "2", "-j", "1", "-q", *LOSSLESS]
    for name, extra in (("local", []), ("ray", ["--ray", address])):
        proc = subprocess.run(
            [*VIDTOON, "batch", str(root), "-o", str(tmp_path / name), *pix2pix, *extra],
            capture_output=True, text=True, timeout=300, env=env,
        )
        assert proc.returncode == 0, proc.stderr
    assert statuses(tmp_path / "ray") == statuses(tmp_path / "local") == {name: "done" for name in names}
    for name in names:
        check_output(root / name, tmp_path / "ray" / name)
        local_frames, ray_frames = read_video(tmp_path / "local" / name)[2], read_video(tmp_path / "ray" / name)[2]
        assert len(local_frames) == len(ray_frames) == 3
        # Exact: the same shapes (3 frames, one batch) and one torch thread on both sides (OMP_NUM_THREADS=1
        # here, Ray's default of the actor's 1 CPU there), so the same kernels (tests/helpers/rounding.py).
        assert all((a == b).all() for a, b in zip(local_frames, ray_frames, strict=True))
        # A real cartoon, not the source passed through.
        source = read_video(root / name)[2]
        assert any((a != b).any() for a, b in zip(source, ray_frames, strict=True))


def test_a_vidtoon_folder_in_the_current_folder_does_not_shadow_vidtoon_on_the_workers(ray_cluster, tmp_path):
    """Ray puts the driver's current folder on the workers' path: run from the parent of a
    checkout, its `vidtoon/` folder (no __init__.py there) would import as an empty package."""
    (tmp_path / "vidtoon" / "vidtoon").mkdir(parents=True)
    root = tmp_path / "in"
    names = make_flat(root, 2, frames=3)
    address = ray_cluster.get_runtime_context().gcs_address
    # The installed command: `python -m vidtoon` would put the current folder on the driver's own path too.
    command = shutil.which("vidtoon", path=str(Path(sys.executable).parent))
    proc = subprocess.run(
        [command, "batch", "in", "-o", "out", "--backend", "classic", "--ray", address, "-j", "1", "-q", *LOSSLESS],
        capture_output=True, text=True, timeout=300, env={**os.environ, **QUIET_RAY}, cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr
    assert statuses(tmp_path / "out") == {name: "done" for name in names}
    for name in names:
        check_output(root / name, tmp_path / "out" / name)


def test_a_ray_error_is_shown_as_its_last_meaningful_line_without_colours():
    from vidtoon.batch.cluster import _short

    # As Ray 2 raises it when an actor's class cannot be imported (cut down).
    raw = RuntimeError(
        "The actor died because of an error raised in its creation task, \x1b[36mray::Inbox.__init__()\x1b[39m "
        "(pid=28572, ip=192.0.2.2)\n           ^^^^^^^^^^^^^^^^^^^^\nRuntimeError: The actor with name Inbox failed "
        "to import on the worker.\n\n\x1b[36mray::Inbox.__init__()\x1b[39m (pid=28572)\n  File \"/x/manifest.py\", "
        "line 25, in <module>\n    from .. import __version__\nImportError: cannot import name '__version__' from "
        "'vidtoon' (unknown location)\n   ~~~^^^\n\n"
    )
    assert _short(raw) == "ImportError: cannot import name '__version__' from 'vidtoon' (unknown location)"
    assert _short(RuntimeError("\x1b[31m\x1b[0m\n ^^ \n")) == "RuntimeError"
