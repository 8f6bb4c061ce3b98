"""Carry what benchmarks/gpu.py needs to the lent GPU machine, and run it there offline.

The lent machine (one H200) has torch 2.11, transformers 5.x, huggingface_hub 1.x and
safetensors, but no diffusers, no PyAV and no vidtoon; it cannot download anything and takes
at most 64 MiB of carried files (this working tree included). So:

    python benchmarks/gpu_wheelhouse.py build             # here, with the package index: .gpu-wheelhouse/
    python3 benchmarks/gpu_wheelhouse.py run [-- ARGS]    # there: install what is missing, offline; gpu.py ARGS
    python benchmarks/gpu_wheelhouse.py prove             # here: a venv like the machine's, network cut, run --smoke

build resolves diffusers' dependencies for every CPython the machine may have (3.10-3.14,
manylinux x86_64), drops what the machine's image already has (IMAGE), downloads the rest
(pure-Python wheels where there are any; Pillow has none, so one per CPython) and checks that
the wheelhouse and the working tree fit in 64 MiB together. run reads the wheelhouse's
plan.json, installs with `pip install --no-index --find-links .gpu-wheelhouse --no-deps --target
.gpu-deps` only what this interpreter lacks, and runs benchmarks/gpu.py with .gpu-deps and the
working tree (vidtoon itself) on PYTHONPATH. prove builds a venv holding torch plus the image's
other packages, then runs that same `run -- --smoke` command with the network cut (unshare -n).
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
WHEELHOUSE, DEPS = ROOT / ".gpu-wheelhouse", ROOT / ".gpu-deps"
# The newest diffusers whose floors every huggingface_hub 1.x image meets (huggingface-hub>=0.34,<2,
# safetensors>=0.3.1, httpx<1); later ones want huggingface_hub>=1.23 or >=1.32, safetensors>=0.8.
DIFFUSERS = "diffusers==0.37.1"
PYTHONS = ("3.10", "3.11", "3.12", "3.13", "3.14")  # torch 2.11's CPythons
PLATFORMS = ("manylinux_2_28_x86_64", "manylinux_2_27_x86_64", "manylinux_2_17_x86_64", "manylinux2014_x86_64")
CARRY_LIMIT = 64 * 2**20  # what one call may carry to the machine, working tree included
# What the machine's image has: torch 2.11, transformers 5.x, huggingface_hub 1.x, safetensors, and
# their own requirements (torch: filelock ... fsspec; transformers: numpy, regex, tokenizers, ...;
# huggingface_hub 1.x: httpx and its stack, hf-xet, click/typer).
IMAGE = frozenset({
    "torch", "triton", "filelock", "typing-extensions", "sympy", "mpmath", "networkx", "jinja2", "markupsafe",
    "fsspec", "setuptools", "transformers", "tokenizers", "numpy", "packaging", "pyyaml", "regex", "tqdm",
    "safetensors", "huggingface-hub", "hf-xet", "httpx", "httpcore", "anyio", "h11", "idna", "certifi",
    "sniffio", "exceptiongroup", "click", "typer", "typer-slim", "shellingham", "rich", "tomli",
})
PURE = ("--platform", "any", "--implementation", "py", "--abi", "none")


def normalize(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def pip(*args: str, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pip", *args], capture_output=True, text=True, **kwargs)


def resolve(python: str) -> dict[str, str]:
    """name -> version of diffusers and everything it needs, for CPython `python` on manylinux x86_64
    (pip's resolver, dry run: metadata only)."""
    with tempfile.TemporaryDirectory() as tmp:
        report = Path(tmp, "report.json")
        platforms = [a for p in PLATFORMS for a in ("--platform", p)]
        proc = pip("install", "--dry-run", "--ignore-installed", "--only-binary=:all:", "--python-version", python,
                   *platforms, "--target", str(Path(tmp, "unused")), "--report", str(report), "-q", DIFFUSERS)
        if proc.returncode:
            raise SystemExit(f"cannot resolve {DIFFUSERS} for Python {python}: {proc.stderr.strip().splitlines()[-1:]}")
        return {normalize(i["metadata"]["name"]): i["metadata"]["version"] for i in json.loads(report.read_text())["install"]}


def plan(pythons: tuple[str, ...] = PYTHONS) -> dict[str, dict[str, str]]:
    """For each CPython: name -> version of what the machine lacks (diffusers' closure less IMAGE)."""
    with ThreadPoolExecutor(len(pythons)) as pool:  # pip's calls wait on the network, not the CPU
        closures = dict(zip(pythons, pool.map(resolve, pythons), strict=True))
    return {py: {name: v for name, v in sorted(closure.items()) if name not in IMAGE} for py, closure in closures.items()}


def tree_bytes() -> int:
    """Bytes of the working tree that travels with every call (tracked and untracked, not ignored)."""
    proc = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=ROOT,
                          capture_output=True, check=True)
    return sum((ROOT / name).stat().st_size for name in proc.stdout.decode().split("\0") if name and (ROOT / name).is_file())


def build(out: Path = WHEELHOUSE, pythons: tuple[str, ...] = PYTHONS) -> dict:
    """Download the planned wheels into `out` (emptied first), write out/plan.json, check the size."""
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    wanted = plan(pythons)
    specs = sorted({(f"{name}=={version}", py) for py, packages in wanted.items() for name, version in packages.items()})
    pure = sorted({spec for spec, _ in specs})
    with ThreadPoolExecutor(8) as pool:
        is_pure = dict(zip(pure, pool.map(lambda spec: _download(out, spec, *PURE, "--python-version", "3"), pure), strict=True))
        binary = [(spec, py) for spec, py in specs if not is_pure[spec]]  # Pillow: no pure wheel, one per CPython
        platforms = [a for p in PLATFORMS for a in ("--platform", p)]
        done = pool.map(lambda job: _download(out / job[1], job[0], *platforms, "--python-version", job[1]), binary)
        for (spec, py), ok in zip(binary, done, strict=True):
            if not ok:
                raise SystemExit(f"cannot download {spec} for Python {py}")
    for wheel in out.glob("*/*.whl"):  # one folder per CPython while downloading (pip's -d can race), then one
        wheel.replace(out / wheel.name)
    for folder in [p for p in out.iterdir() if p.is_dir()]:
        folder.rmdir()
    files = sorted(p.name for p in out.glob("*.whl"))
    size = sum((out / f).stat().st_size for f in files)
    result = dict(diffusers=DIFFUSERS, pythons=wanted, files=files, bytes=size, tree_bytes=tree_bytes())
    (out / "plan.json").write_text(json.dumps(result, indent=1))
    if size + result["tree_bytes"] > CARRY_LIMIT:
        raise SystemExit(f"{out}: {size / 2**20:.1f} MiB of wheels + {result['tree_bytes'] / 2**20:.1f} MiB of working tree "
                         f"is over the {CARRY_LIMIT / 2**20:.0f} MiB a call may carry")
    return result


def _download(folder: Path, spec: str, *where: str) -> bool:
    """pip download one wheel of `spec` (no dependencies) for the platform `where` says; False if there is none."""
    return pip("download", "--no-deps", "--only-binary=:all:", "-d", str(folder), "-q", *where, spec).returncode == 0


def missing(wanted: dict[str, str], deps: Path = DEPS) -> list[str]:
    """The name==version of `wanted` that this interpreter does not have (looking in `deps` too)."""
    paths = [str(deps), *sys.path]
    have = {normalize(d.metadata["Name"]) for d in importlib.metadata.distributions(path=paths) if d.metadata["Name"]}
    return [f"{name}=={version}" for name, version in wanted.items() if normalize(name) not in have]


def run(args: list[str], wheelhouse: Path = WHEELHOUSE, deps: Path = DEPS, script: Path = ROOT / "benchmarks" / "gpu.py") -> int:
    """Install (offline, no dependency resolution) what this interpreter lacks, then run `script`."""
    python = f"{sys.version_info.major}.{sys.version_info.minor}"
    planned = json.loads((wheelhouse / "plan.json").read_text())["pythons"]
    if python not in planned:
        raise SystemExit(f"the wheelhouse has no plan for Python {python} (it has {', '.join(planned)})")
    todo = missing(planned[python], deps)
    if todo:
        print(f"installing {len(todo)} wheels offline into {deps}: {' '.join(todo)}", flush=True)
        proc = pip("install", "--no-index", "--find-links", str(wheelhouse), "--no-deps", "--target", str(deps), "-q", *todo)
        if proc.returncode:
            raise SystemExit(f"offline install failed: {proc.stderr.strip()}")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(deps), str(ROOT), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep)}
    return subprocess.run([sys.executable, str(script), *args], env=env).returncode


def prove(wheelhouse: Path = WHEELHOUSE) -> int:
    """A fresh venv holding torch and the machine image's other packages (from the index), then,
    with the network cut where unshare can cut it (else --no-index alone), the machine's command
    with --smoke."""
    venv = Path(tempfile.mkdtemp(prefix="gpu-image-")) / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    py = str(venv / "bin" / "python")
    image = ["torch==2.13.0", "transformers>=5,<6", "huggingface_hub>=1,<2", "safetensors"]  # torch: the CPU wheel here
    subprocess.run([py, "-m", "pip", "install", "-q", *image], check=True)
    command = [py, str(Path(__file__).resolve()), "run", "--wheelhouse", str(wheelhouse), "--deps", str(venv.parent / "deps"),
               "--", "--smoke"]
    cut = shutil.which("unshare") and subprocess.run(["unshare", "-n", "true"], capture_output=True).returncode == 0
    print(f"image venv {venv}: {' '.join(image)}; network {'cut (unshare -n)' if cut else 'NOT cut: --no-index only'}", flush=True)
    return subprocess.run((["unshare", "-n"] if cut else []) + command).returncode


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    for name in ("plan", "build", "run", "prove"):
        p = sub.add_parser(name)
        p.add_argument("--wheelhouse", type=Path, default=WHEELHOUSE)
        if name == "run":
            p.add_argument("--deps", type=Path, default=DEPS)
            p.add_argument("args", nargs=argparse.REMAINDER, help="-- then benchmarks/gpu.py's options")
    args = parser.parse_args()
    if args.command == "plan":
        print(json.dumps(plan(), indent=1))
    elif args.command == "build":
        result = build(args.wheelhouse)
        print(f"{args.wheelhouse}: {len(result['files'])} wheels, {result['bytes'] / 2**20:.1f} MiB (+ working tree "
              f"{result['tree_bytes'] / 2**20:.1f} MiB, limit {CARRY_LIMIT / 2**20:.0f} MiB)")
        for f in result["files"]:
            print(f"  {f}")
    elif args.command == "run":
        sys.exit(run(args.args[1:] if args.args[:1] == ["--"] else args.args, args.wheelhouse, args.deps))
    else:
        sys.exit(prove(args.wheelhouse))


if __name__ == "__main__":
    main()
