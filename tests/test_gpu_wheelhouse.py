"""benchmarks/gpu_wheelhouse.py and benchmarks/gpu.py, as the lent GPU machine will run them:
the plan (diffusers and what the machine's image lacks, nothing it has), the size cap, the
offline install of only what is missing, gpu.py without PyAV/OpenCV, and its hard per-row limit.
The full proof (a venv like the machine's, network cut, `run -- --smoke`) takes about two
minutes: `python benchmarks/gpu_wheelhouse.py prove` (docs/benchmarks.md)."""

import json
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

import gpu_wheelhouse as wh  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation doesn't accept a copy keyword")

# What diffusers 0.37.1 needs that torch + transformers 5.x + huggingface_hub 1.x + safetensors lack.
MISSING = {"diffusers", "pillow", "requests", "urllib3", "charset-normalizer", "importlib-metadata", "zipp"}


def index_reachable() -> bool:
    return wh.pip("index", "versions", "diffusers", timeout=60).returncode == 0


@pytest.mark.slow
def test_the_plan_is_diffusers_and_what_the_image_lacks():
    if not index_reachable():
        pytest.skip("the package index cannot be reached")
    (packages,) = wh.plan(("3.11",)).values()
    assert packages["diffusers"] == wh.DIFFUSERS.split("==")[1]
    assert MISSING <= set(packages) and not set(packages) & wh.IMAGE
    assert set(packages) - MISSING <= {"lazy-importer"}, packages  # importlib-metadata's own needs, if any
    for heavy in ("torch", "transformers", "huggingface-hub", "numpy", "safetensors", "av", "opencv-python"):
        assert heavy not in packages


def make_wheel(folder: Path, name: str, version: str) -> Path:
    """A minimal pure-Python wheel whose module prints nothing and has VALUE = version."""
    module, dist = name.replace("-", "_"), f"{name.replace('-', '_')}-{version}.dist-info"
    path = folder / f"{name.replace('-', '_')}-{version}-py3-none-any.whl"
    files = {f"{module}/__init__.py": f"VALUE = {version!r}\n",
             f"{dist}/METADATA": f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n",
             f"{dist}/WHEEL": "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n"}
    files[f"{dist}/RECORD"] = "".join(f"{f},,\n" for f in files) + f"{dist}/RECORD,,\n"
    with zipfile.ZipFile(path, "w") as z:
        for f, text in files.items():
            z.writestr(f, text)
    return path


def test_run_installs_offline_only_what_is_missing(tmp_path, capfd):
    """On the machine: plan.json names a wheel this interpreter lacks and one it has (numpy);
    only the first is installed (--no-index, --no-deps, into the deps folder), and the
    benchmark then imports it and vidtoon from PYTHONPATH. A second call installs nothing."""
    house, deps = tmp_path / "house", tmp_path / "deps"
    house.mkdir()
    make_wheel(house, "vidtoon-fake-dep", "1.0")
    python = f"{sys.version_info.major}.{sys.version_info.minor}"
    (house / "plan.json").write_text(json.dumps({"pythons": {python: {"vidtoon-fake-dep": "1.0", "numpy": "0.0"}}}))
    script = tmp_path / "bench.py"
    script.write_text("import sys, vidtoon, vidtoon_fake_dep\nprint('ran', vidtoon_fake_dep.VALUE, sys.argv[1:])\n")
    assert wh.run(["--smoke"], house, deps, script) == 0
    out = capfd.readouterr().out
    assert "installing 1 wheels offline" in out and "vidtoon-fake-dep==1.0" in out and "numpy" not in out
    assert "ran 1.0 ['--smoke']" in out
    assert sorted(p.name for p in deps.iterdir()) == ["vidtoon_fake_dep", "vidtoon_fake_dep-1.0.dist-info"]
    assert wh.run([], house, deps, script) == 0
    out = capfd.readouterr().out
    assert "installing" not in out and "ran 1.0 []" in out


def test_the_carry_limit_is_checked(tmp_path, monkeypatch):
    """build refuses a wheelhouse that, with the working tree, is over what a call may carry."""
    monkeypatch.setattr(wh, "plan", lambda pythons: {"3.11": {}})
    monkeypatch.setattr(wh, "tree_bytes", lambda: 2 * 2**20)
    result = wh.build(tmp_path / "house", ("3.11",))
    assert result["files"] == [] and json.loads((tmp_path / "house" / "plan.json").read_text())["pythons"] == {"3.11": {}}
    monkeypatch.setattr(wh, "CARRY_LIMIT", 2**20)
    with pytest.raises(SystemExit, match=r"over the 1 MiB a call may carry"):
        wh.build(tmp_path / "house", ("3.11",))


def test_the_working_tree_leaves_room_for_the_wheelhouse():
    """The tree travels with every call; the wheelhouse measured here was 40.1 MiB (docs/benchmarks.md)."""
    assert wh.tree_bytes() < 64 * 2**20 - 41 * 2**20


def test_gpu_py_imports_without_pyav_opencv_or_rich():
    pytest.importorskip("diffusers")
    code = ("import sys\nfor m in ('av', 'cv2', 'rich'): sys.modules[m] = None\n"
            f"sys.path.insert(0, {str(ROOT / 'benchmarks')!r})\nimport gpu\nprint('ok')\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert proc.returncode == 0 and "ok" in proc.stdout, proc.stderr


def test_a_row_over_its_limit_is_stopped_and_the_table_goes_on():
    pytest.importorskip("diffusers")
    proc = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "gpu.py"), "--smoke", "--row-limit", "1", "--min-row", "0.5",
                           "--batch-sizes", "1"], capture_output=True, text=True, timeout=240, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr
    rows = [line for line in proc.stdout.splitlines() if line.startswith("| naive") or line.startswith("| vidtoon")]
    assert len(rows) == 5 and all("stopped: ran over its 1 s limit (killed)" in row for row in rows), proc.stdout
    assert "ran on nothing (no row finished)" in proc.stdout


def test_one_smoke_row_in_process():
    import argparse

    pytest.importorskip("diffusers")
    import gpu

    args = argparse.Namespace(smoke=True, frames=2, runs=1, naive_frames=1, side=64, steps=2)
    result = gpu.run_row(args, dict(label="x", batch=2))
    assert result["fps"] > 0 and result["peak"] is None and result["frames"] == 2 and result["device"].startswith("CPU")
