"""The gateway image that `make image` builds: its config, its files, and the image really running
under a real OCI runtime (runc, and crun when installed) the way the chart runs it: as the image's
numeric user, read-only root, /tmp a tmpfs, the config mounted read-only, no shell.

The image is built once (or reused from an up-to-date ``build/`` of ``make image``: same wheel
content, constraints and build script) and unpacked with umoci.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import tempfile
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import simplejpeg
import yaml
from skimage import data

from image import build as image_build
from image.oci_runtime import Container, elf_files, prepare_bundle, unpack, wait_http
from kubevc.gateway.testing import (
    TestBackend,
    backend_doc,
    config_doc,
    free_port,
    run_test_backend,
    yolo_profile,
)

# The first test may build both platforms (a few minutes with cold caches) inside its fixture.
pytestmark = [pytest.mark.slow, pytest.mark.timeout(1800)]

REPO = Path(__file__).resolve().parents[2]
OUTPUT = REPO / "build"
PLATFORMS = ("linux/amd64", "linux/arm64")
TOOLS = ("mmdebstrap", "umoci", "runc")
RUNTIMES = ("runc", "crun")
SHELLS = ("bin/sh", "bin/bash", "bin/dash", "bin/busybox", "usr/bin/sh", "usr/bin/bash", "usr/bin/dash")


def _missing_prerequisite() -> str | None:
    if os.geteuid() != 0:
        return "needs root (mmdebstrap --mode=root, umoci unpack, runc)"
    missing = [tool for tool in TOOLS if shutil.which(tool) is None]
    if missing:
        return f"needs Debian packages {' '.join(missing)} (make test installs them)"
    return None


@pytest.fixture(scope="module")
def built() -> dict[str, Any]:
    """build/image-digests.json of an image built from this tree (built now when stale)."""
    reason = _missing_prerequisite()
    if reason:
        pytest.skip(reason)
    constraints = REPO / "constraints/gateway.txt"
    with tempfile.TemporaryDirectory() as tmp:
        wheel = image_build.build_project_wheel(Path(tmp), image_build.read_project())
        key = image_build.build_inputs_key(wheel, constraints)
    report_path = OUTPUT / "image-digests.json"
    report: dict[str, Any] = json.loads(report_path.read_text()) if report_path.exists() else {}
    up_to_date = (
        report.get("inputs") == key
        and set(PLATFORMS) <= set(report.get("platforms", {}))
        and (OUTPUT / "oci/index.json").exists()
    )
    if not up_to_date:
        platforms = [image_build.PLATFORMS[p] for p in PLATFORMS]
        report = image_build.build(platforms, OUTPUT, constraints)
    return report


@pytest.fixture(scope="module")
def layout(built: dict[str, Any]) -> Path:
    return OUTPUT / "oci"


def _blob(layout: Path, digest: str) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads((layout / "blobs/sha256" / digest.removeprefix("sha256:")).read_text())
    return doc


def _image_config(layout: Path, built: dict[str, Any], platform: str) -> dict[str, Any]:
    manifest = _blob(layout, built["platforms"][platform]["manifest"])
    return _blob(layout, manifest["config"]["digest"])


@pytest.fixture(scope="module")
def bundles(built: dict[str, Any], layout: Path) -> Iterator[dict[str, Path]]:
    """umoci-unpacked bundles, one per platform, unpacked on first use."""
    tmp = Path(tempfile.mkdtemp(prefix="kubevc-bundles-"))
    cache: dict[str, Path] = {}

    class Lazy(dict[str, Path]):
        def __missing__(self, platform: str) -> Path:
            tag = built["platforms"][platform]["tag"]
            cache[platform] = unpack(layout, tag, tmp / platform.replace("/", "-"))
            self[platform] = cache[platform]
            return cache[platform]

    yield Lazy()
    shutil.rmtree(tmp, ignore_errors=True)


@pytest.fixture(scope="module")
def backend() -> Iterator[TestBackend]:
    with run_test_backend() as b:
        yield b


@pytest.fixture(scope="module")
def astronaut_jpeg() -> bytes:
    return bytes(simplejpeg.encode_jpeg(np.ascontiguousarray(data.astronaut()), quality=90, colorspace="RGB"))


# --- the image's metadata and files -------------------------------------------------------------


def test_index_carries_every_platform_and_the_digests_are_recorded(
    built: dict[str, Any], layout: Path
) -> None:
    index_json = json.loads((layout / "index.json").read_text())
    refs = {m["annotations"]["org.opencontainers.image.ref.name"]: m for m in index_json["manifests"]}
    version = image_build.read_project().version
    assert refs[version]["digest"] == built["index"]
    index = _blob(layout, built["index"])
    platforms = {
        f"{m['platform']['os']}/{m['platform']['architecture']}": m["digest"] for m in index["manifests"]
    }
    for platform in PLATFORMS:
        assert platforms[platform] == built["platforms"][platform]["manifest"]
        assert (OUTPUT / built["platforms"][platform]["archive"]).stat().st_size > 10_000_000
    assert index["annotations"]["org.opencontainers.image.version"] == version


@pytest.mark.parametrize("platform", PLATFORMS)
def test_config_has_numeric_non_root_user_entrypoint_env_and_labels(
    built: dict[str, Any], layout: Path, platform: str
) -> None:
    image = _image_config(layout, built, platform)
    config = image["config"]
    uid, _, gid = config["User"].partition(":")
    assert uid.isdigit() and gid.isdigit() and int(uid) != 0 and int(gid) != 0
    assert config["Entrypoint"] == ["/usr/local/bin/kubevc-gateway"]
    assert config["Cmd"] == ["--config", "/etc/kubevc-gateway/gateway.yaml"]
    assert "PYTHONDONTWRITEBYTECODE=1" in config["Env"]
    labels = config["Labels"]
    project = image_build.read_project()
    assert labels["org.opencontainers.image.version"] == project.version
    assert labels["org.opencontainers.image.licenses"] == "Apache-2.0"
    assert labels["org.opencontainers.image.source"].startswith("https://")
    # the commit the image was built from: this tree's HEAD when built now; an earlier commit of this
    # repository when the build was reused (its inputs, the wheel and the constraints, are the same)
    revision = labels["org.opencontainers.image.revision"].split("-")[0]
    assert revision == str(built["revision"]).split("-")[0]
    known = subprocess.run(
        ["git", "merge-base", "--is-ancestor", revision, "HEAD"], cwd=REPO, capture_output=True, check=False
    )
    assert known.returncode == 0 or revision == project.revision.split("-")[0], revision
    assert labels["org.opencontainers.image.created"].endswith("Z")
    assert image["architecture"] == platform.split("/")[1]


@pytest.mark.parametrize("platform", PLATFORMS)
def test_package_list_and_sbom_name_debian_packages_and_python_distributions(
    built: dict[str, Any], platform: str
) -> None:
    stem = f"kubevc-gateway-{built['version']}-{platform.replace('/', '-')}"
    listing = (OUTPUT / f"{stem}.packages.txt").read_text().splitlines()
    assert any(line.startswith("deb python3.11-minimal 3.11") for line in listing)
    assert any(line.startswith("deb libturbojpeg0 ") for line in listing)
    assert any(line.startswith("pypi kubevc ") for line in listing)
    assert any(line.startswith("pypi numpy ") for line in listing)
    sbom = json.loads((OUTPUT / f"{stem}.spdx.json").read_text())
    purls = {ref["referenceLocator"].split("@")[0] for p in sbom["packages"] for ref in p["externalRefs"]}
    assert {"pkg:deb/debian/libc6", "pkg:pypi/litestar", "pkg:pypi/grpcio"} <= purls


def test_amd64_root_has_no_shell_and_every_library_resolves(bundles: dict[str, Path]) -> None:
    rootfs = bundles["linux/amd64"] / "rootfs"
    assert not [s for s in SHELLS if (rootfs / s).exists()]
    assert image_build.unresolved_libraries([("/", rootfs)], "x86_64-linux-gnu") == []


def test_arm64_every_elf_file_is_aarch64_and_every_library_resolves(bundles: dict[str, Path]) -> None:
    rootfs = bundles["linux/arm64"] / "rootfs"
    elves = list(elf_files(rootfs))
    assert len(elves) > 100  # python3.11, libc, the wheels' extensions and bundled libraries
    wrong = [f"{e.path.relative_to(rootfs)} (e_machine {e.machine})" for e in elves if e.machine != 183]
    assert wrong == [], f"non-aarch64 ELF files in the arm64 image: {wrong[:10]}"
    assert all(e.elf_class == 2 for e in elves)
    assert not [s for s in SHELLS if (rootfs / s).exists()]
    assert image_build.unresolved_libraries([("/", rootfs)], "aarch64-linux-gnu") == []


# --- the image running ---------------------------------------------------------------------------


def _gateway_config(directory: Path, backend: TestBackend, port: int) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    config = config_doc([backend_doc("tf", backend.address)], [yolo_profile()], log_level=None)
    config["server"] = {"host": "127.0.0.1", "port": port, "drainSeconds": 2}
    (directory / "gateway.yaml").write_text(yaml.safe_dump(config))
    # The container user (not root) reads the bind-mounted directory.
    directory.chmod(0o755)
    (directory / "gateway.yaml").chmod(0o644)
    return directory


def smoke_test(
    runtime: str, bundle: Path, backend: TestBackend, jpeg: bytes, work: Path, timeout: float
) -> None:
    """Serve /healthz, /readyz and a real JPEG /infer from the container, then stop it with SIGTERM."""
    port = free_port()
    config_dir = _gateway_config(work / "config", backend, port)
    prepare_bundle(bundle, binds={"/etc/kubevc-gateway": config_dir}, tmpfs=("/tmp",), host_network=True)
    container = Container(runtime, bundle, f"kubevc-test-{os.getpid()}-{port}", work / "state")
    container.start()
    url = f"http://127.0.0.1:{port}"
    try:
        status, body = wait_http(url + "/readyz", timeout, container)
        assert status == 200, f"/readyz {status} {body!r}\n{container.logs()[-3000:]}"
        assert json.loads(body) == {"ready": True, "models": {"yolov5": True}}
        with urllib.request.urlopen(url + "/healthz", timeout=10) as resp:
            assert resp.status == 200

        # The process runs as the image's user, on a read-only root.
        pid = container.pid()
        status_lines = Path(f"/proc/{pid}/status").read_text().splitlines()
        uid_line = next(line for line in status_lines if line.startswith("Uid:"))
        assert uid_line.split()[1:] == ["10001"] * 4
        root_mount = next(
            line.split()
            for line in Path(f"/proc/{pid}/mountinfo").read_text().splitlines()
            if line.split()[4] == "/"
        )
        assert "ro" in root_mount[5].split(",")

        request = urllib.request.Request(
            url + "/v1/models/yolov5/infer", data=jpeg, headers={"content-type": "image/jpeg"}, method="POST"
        )
        with urllib.request.urlopen(request, timeout=60) as resp:
            answer = json.loads(resp.read())
        assert answer["model"] == "yolov5"
        (result,) = answer["results"]
        assert (result["width"], result["height"]) == (512, 512)
        assert result["detections"], answer
        # the JPEG was letterboxed by the decoder's DCT scaling: the gateway loaded libturbojpeg
        assert "libturbojpeg.so" in Path(f"/proc/{pid}/maps").read_text()

        # SIGTERM: uvicorn drains and returns; as PID 1 the re-raised default SIGTERM is ignored by
        # the kernel, so the gateway exits 0 (docs/deployment.md).
        container.signal(signal.SIGTERM)
        assert container.wait(timeout=30) == 0, container.logs()[-3000:]
        assert "Application shutdown complete" in container.logs()
    finally:
        container.cleanup()


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_amd64_image_serves_and_stops_cleanly_under_a_real_oci_runtime(
    runtime: str, bundles: dict[str, Path], backend: TestBackend, astronaut_jpeg: bytes, tmp_path: Path
) -> None:
    if shutil.which(runtime) is None:
        pytest.skip(f"{runtime} is not installed (apt-get install {runtime})")
    smoke_test(runtime, bundles["linux/amd64"], backend, astronaut_jpeg, tmp_path, timeout=30)


def test_arm64_image_serves_under_qemu_emulation(
    bundles: dict[str, Path], backend: TestBackend, astronaut_jpeg: bytes, tmp_path: Path
) -> None:
    binfmt = Path("/proc/sys/fs/binfmt_misc/qemu-aarch64")
    if not binfmt.exists():
        mounted = Path("/proc/sys/fs/binfmt_misc/status").exists()
        why = "no qemu-aarch64 entry registered" if mounted else "binfmt_misc is not mounted"
        pytest.skip(
            f"qemu-user binfmt for aarch64 does not work here ({binfmt} missing: {why}); "
            "the arm64 image is checked statically (ELF machines, library resolution) only"
        )
    if "enabled" not in binfmt.read_text():
        pytest.skip(f"qemu-user binfmt for aarch64 is registered but disabled ({binfmt})")
    smoke_test("runc", bundles["linux/arm64"], backend, astronaut_jpeg, tmp_path, timeout=180)
