#!/usr/bin/env python3
"""Build the kubevc-gateway OCI image for several platforms, without a container engine.

What goes in, for each platform (no container registry is contacted, no foreign code runs here):

1. a Debian bookworm root holding only what ``python3.11`` needs: ``mmdebstrap --variant=extract``
   downloads and unpacks the packages (maintainer scripts never run, so a foreign architecture
   needs no emulation); documentation, apt state and the host's resolv.conf/hostname are dropped;
2. the gateway's dependencies: wheels for the target platform pinned by ``constraints/gateway.txt``
   (``pip download --platform ... --only-binary=:all:``), unpacked with ``pip install --target``;
3. the project's own wheel, built from this checkout.

Every ``.py`` is compiled here by a Python 3.11 (bytecode does not depend on the CPU) in
``unchecked-hash`` mode, so the read-only image never compiles and never checks source mtimes.
The three parts become three reproducible gzip layers (sorted entries, one timestamp, owner 0
unless the package says otherwise); then the image config, one manifest per platform, an image
index over all of them, an ``oci-archive`` per platform, an SPDX SBOM + plain package list per
platform and ``image-digests.json``.

Usage (``make image`` runs the first)::

    python image/build.py build [--platform linux/amd64 --platform linux/arm64] [--output build]
    python image/build.py lock          # re-resolve constraints/gateway.txt for every platform
    python image/build.py check-wheels --platform linux/arm/v7   # which wheels PyPI lacks

Downloads are cached in ``build/cache`` (.deb files, apt lists, wheels) and reused offline.
"""

from __future__ import annotations

import argparse
import datetime as dt
import email.parser
import gzip
import hashlib
import json
import os
import re
import shutil
import struct
import subprocess
import sys
import tarfile
import tempfile
import time
import tomllib
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

REPO = Path(__file__).resolve().parent.parent
IMAGE_NAME = "kubevc-gateway"
PYTHON = "python3.11"
SITE_PACKAGES = "usr/local/lib/python3.11/dist-packages"
ENTRYPOINT = "/usr/local/bin/kubevc-gateway"
CONFIG_DIR = "/etc/kubevc-gateway"
# The chart's securityContext (runAsUser/runAsGroup) uses the same ids.
UID = GID = 10001
USER_NAME = "kubevc"
DEBIAN_SUITE = "bookworm"
# The Debian mirrors are this machine's own apt sources, never a host named here.
APT_SOURCES = Path("/etc/apt")
# python3.11-minimal + the full standard library; libstdc++6, which manylinux wheels expect from
# the system (grpcio, numpy); install-info satisfies readline-common's "dpkg | install-info" so
# that dpkg (and tar, zstd, selinux) stay out; libturbojpeg0, the TurboJPEG API the gateway decodes
# JPEGs at any DCT scale with (kubevc.gateway._turbojpeg; without it, a slower resize).
DEBIAN_PACKAGES = (
    "python3.11-minimal",
    "libpython3.11-stdlib",
    "libstdc++6",
    "install-info",
    "libturbojpeg0",
)
# Paths (prefixes) of the Debian root that a Python service never reads.
DROPPED_PREFIXES = (
    "etc/apt/",
    "var/lib/apt/",
    "var/cache/apt/",
    "var/cache/debconf/",
    "var/log/",
    "usr/share/man/",
    "usr/share/info/",
    "usr/share/locale/",
    "usr/share/lintian/",
    "usr/share/bug/",
    "usr/share/doc-base/",
    "usr/share/readline/",
    "usr/share/gdb/",
    "usr/bin/install-info",
    "usr/sbin/",
    "etc/cron.daily/",
    "etc/logrotate.d/",
)
# The host's files that mmdebstrap copies in; the runtime mounts its own.
DROPPED_FILES = ("etc/resolv.conf", "etc/hostname", "etc/machine-id", "etc/fstab")
# Test suites inside third-party wheels: never imported by the gateway.
DROPPED_SITE_DIRS = ("tests",)
# Parts of the dependencies the gateway never loads, each with why (bundled libraries that only
# they needed go too, see prune_site). The runtime test sends real requests through the rest.
DROPPED_SITE_PATHS = {
    # numpy: the build-time helpers and the C extensions that exist only for numpy's own tests
    "numpy/distutils": "build-time only",
    "numpy/f2py": "Fortran wrapper generator",
    "numpy/_core/include": "C headers",
    "numpy/_pyinstaller": "PyInstaller hooks",
    "numpy/_core/_multiarray_tests.*": "numpy test extension",
    "numpy/_core/_umath_tests.*": "numpy test extension",
    "numpy/_core/_rational_tests.*": "numpy test extension",
    "numpy/_core/_struct_ufunc_tests.*": "numpy test extension",
    "numpy/_core/_operand_flag_tests.*": "numpy test extension",
    "numpy/_core/_simd.*": "SIMD test extension",
    # Pillow: optional codecs it skips when absent (AVIF, TrueType fonts, ICC colour management, Tk)
    "PIL/_avif.*": "AVIF codec (the gateway decodes JPEG/PNG)",
    "PIL/_imagingft.*": "FreeType text rendering",
    "PIL/_imagingcms.*": "ICC colour management",
    "PIL/_imagingtk.*": "Tk bindings",
}
# Base requirements of kubevc that the gateway imports (the rest of the base is kubevc-gen's).
GATEWAY_BASE_REQUIREMENTS = ("pydantic", "pyyaml")
# faker (litestar -> polyfactory -> faker, for test-data factories the gateway never builds):
# only its default locale (en_US, which builds on en) stays; the other 60+ locales are ~20 MB.
FAKER_LOCALES = ("en", "en_US")
# Where manylinux wheels' system libraries live in a Debian root, per Debian architecture.

ENV = (
    "PATH=/usr/local/bin:/usr/bin:/bin",
    "LANG=C.UTF-8",
    "PYTHONDONTWRITEBYTECODE=1",
    "PYTHONUNBUFFERED=1",
    "PYTHONFAULTHANDLER=1",
)

MEDIA_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
MEDIA_INDEX = "application/vnd.oci.image.index.v1+json"
MEDIA_CONFIG = "application/vnd.oci.image.config.v1+json"
MEDIA_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"


class BuildError(Exception):
    """A step of the image build failed; the message says which and why."""


@dataclass(frozen=True)
class Platform:
    """An OCI platform and the names Debian and the wheel tags use for it."""

    oci: str  # linux/amd64
    architecture: str  # OCI architecture
    variant: str | None
    debian_arch: str
    wheel_machine: str  # manylinux tag suffix
    elf_machine: int  # ELF e_machine
    triplet: str  # Debian multiarch directory

    @property
    def slug(self) -> str:
        return self.oci.replace("/", "-")

    def wheel_platform_args(self) -> list[str]:
        # Debian bookworm has glibc 2.36: every manylinux tag up to 2.36, newest first.
        tags = [f"manylinux_2_{minor}_{self.wheel_machine}" for minor in range(36, 16, -1)]
        legacy = {"x86_64": ["manylinux2014", "manylinux2010", "manylinux1"], "aarch64": ["manylinux2014"]}
        tags += [f"{name}_{self.wheel_machine}" for name in legacy.get(self.wheel_machine, [])]
        if self.wheel_machine == "armv7l":
            tags.append("linux_armv7l")  # what the few armv7 wheels on PyPI carry
        args: list[str] = []
        for tag in tags:
            args += ["--platform", tag]
        return [*args, "--only-binary=:all:", "--python-version", "3.11", "--implementation", "cp"]


PLATFORMS = {
    p.oci: p
    for p in (
        Platform("linux/amd64", "amd64", None, "amd64", "x86_64", 62, "x86_64-linux-gnu"),
        Platform("linux/arm64", "arm64", "v8", "arm64", "aarch64", 183, "aarch64-linux-gnu"),
        Platform("linux/arm/v7", "arm", "v7", "armhf", "armv7l", 40, "arm-linux-gnueabihf"),
    )
}
DEFAULT_PLATFORMS = ("linux/amd64", "linux/arm64")


PIP = (sys.executable, "-m", "pip", "--disable-pip-version-check")


def host_apt_sources(etc_apt: Path = APT_SOURCES) -> list[str]:
    """This machine's apt source files, which mmdebstrap takes as its mirror arguments."""
    sources_d = etc_apt / "sources.list.d"
    files = sorted(sources_d.glob("*.sources")) + sorted(sources_d.glob("*.list"))
    main_list = etc_apt / "sources.list"
    if main_list.is_file() and main_list.read_text().strip():
        files.insert(0, main_list)
    if not files:
        raise SystemExit(f"no apt sources in {etc_apt}: the image's Debian root needs this machine's mirror")
    return [str(f) for f in files]


def progress(message: str) -> None:
    print(f"[image {time.strftime('%H:%M:%S')}] {message}", flush=True)


def run(argv: Sequence[str | Path], *, cwd: Path | None = None, quiet: bool = True) -> str:
    """Run a command; on failure raise BuildError with the end of its output."""
    proc = subprocess.run([str(a) for a in argv], cwd=cwd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        tail = (proc.stdout + proc.stderr)[-4000:]
        raise BuildError(f"{Path(str(argv[0])).name} {' '.join(map(str, argv[1:4]))} ... failed:\n{tail}")
    if not quiet:
        print(proc.stdout, end="")
    return proc.stdout


# --- project metadata -------------------------------------------------------------------------


@dataclass(frozen=True)
class Project:
    version: str
    license: str
    description: str
    source_url: str
    revision: str
    created: dt.datetime

    @property
    def epoch(self) -> int:
        return int(self.created.timestamp())


def read_project() -> Project:
    meta = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    urls: dict[str, str] = meta.get("urls", {})
    source = urls.get("Source", "https://github.com/kubevc/kubevc")
    revision = _git("rev-parse", "HEAD") or "unknown"
    if _git("status", "--porcelain", "--untracked-files=no"):
        revision += "-dirty"
    # Reproducible builds: SOURCE_DATE_EPOCH if given, else the commit's time, never "now".
    epoch = os.environ.get("SOURCE_DATE_EPOCH") or _git("log", "-1", "--format=%ct") or "0"
    created = dt.datetime.fromtimestamp(int(epoch), dt.UTC)
    license_ = meta.get("license", "NOASSERTION")
    return Project(meta["version"], str(license_), meta.get("description", ""), source, revision, created)


def _git(*args: str) -> str:
    proc = subprocess.run(["git", *args], cwd=REPO, capture_output=True, text=True, check=False)
    return proc.stdout.strip() if proc.returncode == 0 else ""


# --- the project's wheel -------------------------------------------------------------------------


def _tree_files() -> list[str]:
    # What a clean clone holds: tracked files plus new ones git does not ignore (never build/).
    out = _git("ls-files", "--cached", "--others", "--exclude-standard", "-z")
    return [f for f in out.split("\0") if f and (REPO / f).is_file()]


def build_project_wheel(dest: Path, project: Project) -> Path:
    """The kubevc wheel, built without isolation from a copy of the tree (no stale build/lib)."""
    dest.mkdir(parents=True, exist_ok=True)
    for old in dest.glob("kubevc-*.whl"):
        old.unlink()
    with tempfile.TemporaryDirectory(prefix="kubevc-src-") as tmp:
        src = Path(tmp)
        for rel in _tree_files():
            (src / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / rel, src / rel)
        env_epoch = {"SOURCE_DATE_EPOCH": str(project.epoch)}
        proc = subprocess.run(
            [
                *PIP,
                "wheel",
                "--quiet",
                "--no-deps",
                "--no-build-isolation",
                "--wheel-dir",
                str(dest),
                str(src),
            ],
            capture_output=True,
            text=True,
            env={**os.environ, **env_epoch},
            check=False,
        )
        if proc.returncode != 0:
            raise BuildError(f"building the kubevc wheel failed:\n{proc.stderr[-3000:]}")
    (wheel,) = dest.glob("kubevc-*.whl")
    return wheel


def wheel_content_digest(wheel: Path) -> str:
    """sha256 over the wheel's member names and bytes: equal for equal content, whatever the zip."""
    digest = hashlib.sha256()
    with zipfile.ZipFile(wheel) as zf:
        for name in sorted(zf.namelist()):
            digest.update(name.encode() + b"\0")
            digest.update(hashlib.sha256(zf.read(name)).digest())
    return "sha256:" + digest.hexdigest()


def build_inputs_key(wheel: Path, constraints: Path) -> str:
    """What decides the image content besides Debian's archive: wheel, pins and this script."""
    digest = hashlib.sha256()
    digest.update(wheel_content_digest(wheel).encode())
    digest.update(constraints.read_bytes())
    digest.update(Path(__file__).read_bytes())
    return "sha256:" + digest.hexdigest()


# --- Debian root -------------------------------------------------------------------------------


@dataclass(frozen=True)
class DebianPackage:
    name: str
    version: str
    architecture: str
    source: str
    control: str  # the control paragraph, for /var/lib/dpkg/status


def debian_root(platform: Platform, root: Path, cache: Path) -> list[DebianPackage]:
    """Unpack python3.11's Debian packages into ``root``; return what was unpacked."""
    debs = cache / "debs" / platform.debian_arch
    lists = cache / "apt-lists" / platform.debian_arch
    for d in (debs, lists):
        d.mkdir(parents=True, exist_ok=True)
    shutil.rmtree(root, ignore_errors=True)
    root.parent.mkdir(parents=True, exist_ok=True)
    used = root.parent / "debs-used.txt"
    used.unlink(missing_ok=True)
    argv: list[str | Path] = [
        "mmdebstrap",
        "--quiet",
        "--mode=root",
        "--variant=extract",
        f"--architectures={platform.debian_arch}",
        "--aptopt=APT::Install-Recommends false",
        "--include=" + ",".join(DEBIAN_PACKAGES),
        # Reuse .debs and package lists from earlier builds; apt fetches only what changed.
        '--setup-hook=mkdir -p "$1"/var/cache/apt/archives "$1"/var/lib/apt/lists',
        f"--setup-hook=sync-in {debs} /var/cache/apt/archives",
        f"--setup-hook=sync-in {lists} /var/lib/apt/lists",
        f"--extract-hook=sync-out /var/cache/apt/archives {debs}",
        f"--extract-hook=sync-out /var/lib/apt/lists {lists}",
        # The exact .deb files extracted (mmdebstrap's list, whatever else the cache holds).
        f'--extract-hook=printf "%s\\n" $MMDEBSTRAP_ESSENTIAL > {used}',
        DEBIAN_SUITE,
        root,
        *host_apt_sources(),
    ]
    run(argv)
    packages = []
    for line in used.read_text().split():
        deb = debs / Path(line).name
        control = run(["dpkg-deb", "--field", deb]).strip()
        fields = _control_fields(control)
        source = fields.get("Source", fields["Package"]).split(" ")[0]
        packages.append(
            DebianPackage(fields["Package"], fields["Version"], fields["Architecture"], source, control)
        )
    packages.sort(key=lambda p: p.name)
    _trim_debian_root(root)
    _add_system_files(root, packages)
    return packages


def _control_fields(control: str) -> dict[str, str]:
    fields: dict[str, str] = {}
    for line in control.splitlines():
        if line and not line[0].isspace() and ":" in line:
            key, value = line.split(":", 1)
            fields[key] = value.strip()
    return fields


def _trim_debian_root(root: Path) -> None:
    for rel in DROPPED_FILES:
        (root / rel).unlink(missing_ok=True)
    for prefix in DROPPED_PREFIXES:
        path = root / prefix.rstrip("/")
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        elif path.exists() or path.is_symlink():
            path.unlink()
    # Documentation goes, the copyright (licence) files stay.
    doc = root / "usr/share/doc"
    if doc.is_dir():
        for path in sorted(doc.rglob("*"), reverse=True):
            if path.is_dir() and not path.is_symlink():
                if not any(path.iterdir()):
                    path.rmdir()
            elif path.name != "copyright":
                path.unlink()


def _add_system_files(root: Path, packages: list[DebianPackage]) -> None:
    etc = root / "etc"
    (etc / "passwd").write_text(
        f"root:x:0:0:root:/root:/usr/sbin/nologin\n"
        f"{USER_NAME}:x:{UID}:{GID}:kubevc gateway:/nonexistent:/usr/sbin/nologin\n"
        "nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n"
    )
    (etc / "group").write_text(f"root:x:0:\n{USER_NAME}:x:{GID}:\nnogroup:x:65534:\n")
    (etc / "nsswitch.conf").write_text("passwd: files\ngroup: files\nhosts: files dns\n")
    (etc / "hosts").write_text("127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n")
    for rel in ("etc/os-release",):
        path = root / rel
        if not path.exists():
            path.write_text('PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\nID=debian\nVERSION_ID="12"\n')
    (root / CONFIG_DIR.lstrip("/")).mkdir(parents=True, exist_ok=True)
    tmp = root / "tmp"
    tmp.mkdir(exist_ok=True)
    tmp.chmod(0o1777)
    (root / "usr/local/bin").mkdir(parents=True, exist_ok=True)
    python3 = root / "usr/bin/python3"
    if not python3.exists():
        python3.symlink_to(PYTHON)
    # A dpkg status file so that scanners (trivy, grype) see the Debian packages.
    dpkg = root / "var/lib/dpkg"
    dpkg.mkdir(parents=True, exist_ok=True)
    paragraphs = []
    for p in packages:
        lines = p.control.splitlines()
        lines.insert(1, "Status: install ok installed")
        paragraphs.append("\n".join(lines))
    (dpkg / "status").write_text("\n\n".join(paragraphs) + "\n")


# --- Python wheels -----------------------------------------------------------------------------


def pip(*args: str | Path) -> str:
    return run([*PIP, *args])


def download_wheels(platform: Platform, constraints: Path, cache: Path) -> Path:
    """Every pinned distribution's wheel for ``platform`` in the cache (offline when all are there)."""
    wheels = cache / "wheels" / platform.slug
    wheels.mkdir(parents=True, exist_ok=True)
    common: list[str | Path] = ["download", "--quiet", "--no-deps", "--dest", wheels]
    common += platform.wheel_platform_args()
    common += ["--abi", "cp311", "--abi", "abi3", "--abi", "none", "-r", constraints]
    try:
        pip(*common, "--no-index", "--find-links", wheels)
        progress(f"{platform.oci}: wheels from the cache")
    except BuildError:
        progress(f"{platform.oci}: downloading wheels from the package index")
        pip(*common)
    return wheels


def gateway_requirements() -> list[str]:
    """What the gateway needs at run time: the ``gateway`` extra plus the base requirements it
    imports (pydantic, PyYAML), read from pyproject.toml. Not ``kubevc[gateway]``: whatever else
    the base dependencies hold is for kubevc-gen and stays out of the image."""
    meta = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    base = [r for r in meta.get("dependencies", []) if _requirement_name(r) in GATEWAY_BASE_REQUIREMENTS]
    return [*base, *meta["optional-dependencies"]["gateway"]]


def _requirement_name(requirement: str) -> str:
    match = re.match(r"[A-Za-z0-9._-]+", requirement.strip())
    return re.sub(r"[-_.]+", "-", match.group(0)).lower() if match else ""


def install_wheels(
    platform: Platform, project_wheel: Path, wheels: Path, constraints: Path, site: Path, app_site: Path
) -> None:
    """Unpack the gateway's pinned dependencies for ``platform`` into ``site`` and the project's
    wheel (no dependencies) into ``app_site``; pip only unpacks wheels, no code of them runs."""
    shutil.rmtree(site, ignore_errors=True)
    platform_args = [*platform.wheel_platform_args(), "--abi", "cp311", "--abi", "abi3", "--abi", "none"]
    common = ["install", "--quiet", "--no-index", "--no-compile", "--no-warn-script-location"]
    # Resolved again from the cache under the pins: a dependency missing from the constraints fails here.
    pip(*common, "--find-links", wheels, "--target", site, *platform_args, "--constraint", constraints,
        *gateway_requirements())  # fmt: skip
    pip(*common, "--no-deps", "--target", app_site, *platform_args, project_wheel)
    # Console scripts pip wrote carry this host's interpreter in their #! line.
    for target in (site, app_site):
        shutil.rmtree(target / "bin", ignore_errors=True)


def prune_site(site: Path) -> int:
    """Drop what the gateway never loads from the dependencies; return the bytes saved."""
    before = _tree_bytes(site)
    doomed: list[Path] = []
    for name in DROPPED_SITE_DIRS:
        doomed += [p for p in site.glob(f"*/**/{name}") if p.is_dir() and (p / "__init__.py").exists()]
    for pattern in DROPPED_SITE_PATHS:
        doomed += site.glob(pattern)
    for providers in [p for p in site.glob("faker/providers/*") if p.is_dir()]:
        doomed += [
            p
            for p in providers.iterdir()
            if p.is_dir() and re.fullmatch(r"[a-z]{2,3}(_[A-Z]{2})?", p.name) and p.name not in FAKER_LOCALES
        ]
    # Type stubs and Cython/C sources are for developers, not for the interpreter.
    doomed += [p for p in site.rglob("*") if p.suffix in {".pyi", ".pxd", ".pyx", ".c", ".h"} and p.is_file()]
    for path in doomed:
        if path.is_relative_to(site / "kubevc"):
            continue
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)
    # Libraries bundled by auditwheel (*.libs/) that no remaining ELF file needs any more.
    while True:
        needed = {name for f in _walk_files(site) if (elf := read_elf(f)) for name in elf.needed}
        orphans = [lib for lib in site.glob("*.libs/*") if lib.name not in needed]
        if not orphans:
            break
        for lib in orphans:
            lib.unlink()
    return before - _tree_bytes(site)


def _walk_files(tree: Path) -> list[Path]:
    return [p for p in tree.rglob("*") if p.is_file() and not p.is_symlink()]


def _tree_bytes(tree: Path) -> int:
    return sum(p.stat().st_size for p in _walk_files(tree))


@dataclass(frozen=True)
class Elf:
    """What an ELF file's headers say: its machine, DT_NEEDED names and RPATH/RUNPATH entries."""

    machine: int
    needed: tuple[str, ...]
    runpath: tuple[str, ...]


def read_elf(path: Path) -> Elf | None:
    """Parse the ELF header and dynamic section of ``path`` (None when it is no ELF file)."""
    with path.open("rb") as f:
        data = f.read()
    if data[:4] != b"\x7fELF" or len(data) < 52:
        return None
    is64 = data[4] == 2
    end = "<" if data[5] == 1 else ">"
    (machine,) = struct.unpack_from(end + "H", data, 18)
    if is64:
        phoff, phentsize, phnum = (
            struct.unpack_from(end + "Q", data, 32)[0],
            *struct.unpack_from(end + "HH", data, 54),
        )
    else:
        phoff, phentsize, phnum = (
            struct.unpack_from(end + "I", data, 28)[0],
            *struct.unpack_from(end + "HH", data, 42),
        )
    loads: list[tuple[int, int, int]] = []  # (vaddr, offset, filesz)
    dynamic: tuple[int, int] | None = None
    for i in range(phnum):
        off = phoff + i * phentsize
        if is64:
            p_type, _, p_offset, p_vaddr, _, p_filesz = struct.unpack_from(end + "IIQQQQ", data, off)
        else:
            p_type, p_offset, p_vaddr, _, p_filesz = struct.unpack_from(end + "IIIII", data, off)
        if p_type == 1:
            loads.append((p_vaddr, p_offset, p_filesz))
        elif p_type == 2:
            dynamic = (p_offset, p_filesz)
    if dynamic is None:
        return Elf(machine, (), ())
    entry = struct.Struct(end + ("qQ" if is64 else "iI"))
    tags: list[tuple[int, int]] = []
    for off in range(dynamic[0], dynamic[0] + dynamic[1], entry.size):
        tag, value = entry.unpack_from(data, off)
        if tag == 0:
            break
        tags.append((tag, value))
    strtab = next((v for t, v in tags if t == 5), None)
    if strtab is None:
        return Elf(machine, (), ())
    base = next((o + strtab - va for va, o, sz in loads if va <= strtab < va + sz), strtab)

    def string(offset: int) -> str:
        start = base + offset
        return data[start : data.index(b"\0", start)].decode()

    needed = tuple(string(v) for t, v in tags if t == 1)
    runpath = tuple(d for t, v in tags if t in (15, 29) for d in string(v).split(":") if d)
    return Elf(machine, needed, runpath)


def unresolved_libraries(trees: Sequence[tuple[str, Path]], triplet: str) -> list[str]:
    """``file: name`` for every DT_NEEDED that the image's loader would not find.

    ``trees`` are (path in the image, directory here) pairs that make up the image's files.
    """

    def exists(image_path: str) -> bool:
        for prefix, host in trees:
            rel = os.path.relpath(image_path, prefix)
            if not rel.startswith("..") and os.path.lexists(host / rel):
                return True
        return False

    system_dirs = [f"/usr/lib/{triplet}", "/usr/lib", f"/lib/{triplet}", "/lib"]
    problems = []
    for prefix, host in trees:
        for path in _walk_files(host):
            elf = read_elf(path)
            if elf is None:
                continue
            image_path = os.path.normpath(os.path.join(prefix, path.relative_to(host).as_posix()))
            origin = os.path.dirname(image_path)
            dirs = [os.path.normpath(d.replace("$ORIGIN", origin)) for d in elf.runpath] + system_dirs
            for name in elf.needed:
                if not any(exists(f"{d}/{name}") for d in dirs):
                    problems.append(f"{image_path}: {name}")
    return problems


@dataclass(frozen=True)
class PythonDistribution:
    name: str
    version: str
    license: str


def python_distributions(site: Path) -> list[PythonDistribution]:
    dists = []
    for meta_file in sorted(site.glob("*.dist-info/METADATA")):
        meta = email.parser.Parser().parsestr(meta_file.read_text(errors="replace"), headersonly=True)
        license_ = meta.get("License-Expression") or ""
        if not license_:
            classifiers = [c for c in meta.get_all("Classifier") or [] if c.startswith("License ::")]
            license_ = "; ".join(c.split(" :: ")[-1] for c in classifiers) or (meta.get("License") or "")
        dists.append(
            PythonDistribution(meta["Name"], meta["Version"], license_.splitlines()[0] if license_ else "")
        )
    return dists


def compile_bytecode(tree: Path, image_path: str) -> None:
    """Compile every .py under ``tree``, which the image holds at ``image_path``.

    ``unchecked-hash`` pycs are never compared with their source: the layers' single timestamp
    would make timestamp pycs look stale, and a read-only root could not rewrite them anyway.
    """
    # Failures are files a 3.11 cannot parse (Python 2 examples in some wheels): skipped, like pip does.
    subprocess.run(
        [
            sys.executable,
            "-m",
            "compileall",
            "-q",
            "-q",
            "-j",
            "0",
            "--invalidation-mode",
            "unchecked-hash",
            "-s",
            str(tree),
            "-p",
            image_path,
            str(tree),
        ],
        check=False,
    )


def write_entrypoint(root: Path) -> None:
    script = root / ENTRYPOINT.lstrip("/")
    script.parent.mkdir(parents=True, exist_ok=True)
    script.write_text(
        f"#!/usr/bin/{PYTHON}\n"
        "import sys\n\n"
        "from kubevc.gateway.cli import main\n\n"
        'if __name__ == "__main__":\n'
        "    sys.exit(main())\n"
    )
    script.chmod(0o755)


# --- layers and the OCI layout -----------------------------------------------------------------


class _HashingWriter:
    """A write-only file object that hashes and counts what passes through to ``sink``."""

    def __init__(self, sink: IO[bytes] | None) -> None:
        self.sink = sink
        self.sha256 = hashlib.sha256()
        self.size = 0

    def write(self, data: bytes) -> int:
        self.sha256.update(data)
        self.size += len(data)
        if self.sink is not None:
            self.sink.write(data)
        return len(data)

    def flush(self) -> None:
        if self.sink is not None:
            self.sink.flush()


@dataclass(frozen=True)
class Blob:
    digest: str
    size: int
    media_type: str

    def descriptor(self, **extra: Any) -> dict[str, Any]:
        return {"mediaType": self.media_type, "digest": self.digest, "size": self.size, **extra}


@dataclass
class Layer:
    blob: Blob
    diff_id: str
    unpacked_bytes: int
    comment: str


@dataclass
class OciLayout:
    """An OCI image layout directory: content-addressed blobs plus index.json."""

    path: Path
    manifests: list[dict[str, Any]] = field(default_factory=list)

    def __post_init__(self) -> None:
        shutil.rmtree(self.path, ignore_errors=True)
        (self.path / "blobs/sha256").mkdir(parents=True)
        (self.path / "oci-layout").write_text('{"imageLayoutVersion":"1.0.0"}')

    def blob_path(self, digest: str) -> Path:
        return self.path / "blobs/sha256" / digest.removeprefix("sha256:")

    def add_json(self, doc: dict[str, Any], media_type: str) -> Blob:
        data = json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()
        digest = "sha256:" + hashlib.sha256(data).hexdigest()
        self.blob_path(digest).write_bytes(data)
        return Blob(digest, len(data), media_type)

    def add_layer(
        self, entries: list[tuple[str, Path | None]], epoch: int, comment: str, *, owner_root: bool
    ) -> Layer:
        """A gzip tar layer of (name in image, file on disk) pairs; None makes a directory.

        ``owner_root``: files pip unpacked belong to whoever ran it; in the image, to root.
        """
        tmp = self.path / "blobs/.layer.tmp"
        unpacked = 0
        with tmp.open("wb") as out:
            compressed = _HashingWriter(out)
            with gzip.GzipFile(fileobj=compressed, mode="wb", compresslevel=6, mtime=0, filename="") as gz:
                raw = _HashingWriter(gz)  # type: ignore[arg-type]
                with tarfile.open(fileobj=raw, mode="w|", format=tarfile.PAX_FORMAT) as tar:  # type: ignore[call-overload]
                    for name, path in entries:
                        info = _tar_info(tar, name, path, epoch, owner_root)
                        if info.isreg() and path is not None:
                            unpacked += info.size
                            with path.open("rb") as f:
                                tar.addfile(info, f)
                        else:
                            tar.addfile(info)
        digest = "sha256:" + compressed.sha256.hexdigest()
        tmp.rename(self.blob_path(digest))
        return Layer(
            Blob(digest, compressed.size, MEDIA_LAYER), "sha256:" + raw.sha256.hexdigest(), unpacked, comment
        )

    def tag(self, blob: Blob, ref: str, platform: dict[str, str] | None = None) -> None:
        extra: dict[str, Any] = {"annotations": {"org.opencontainers.image.ref.name": ref}}
        if platform:
            extra["platform"] = platform
        self.manifests.append(blob.descriptor(**extra))
        index = {"schemaVersion": 2, "mediaType": MEDIA_INDEX, "manifests": self.manifests}
        (self.path / "index.json").write_text(json.dumps(index, indent=2) + "\n")


def _tar_info(
    tar: tarfile.TarFile, name: str, path: Path | None, epoch: int, owner_root: bool
) -> tarfile.TarInfo:
    if path is None:
        info = tarfile.TarInfo(name)
        info.type, info.mode = tarfile.DIRTYPE, 0o755
    else:
        info = tar.gettarinfo(str(path), name)
        if not info.mode & 0o1000:  # sticky /tmp keeps its 1777
            info.mode &= ~0o022
        if owner_root:
            info.uid = info.gid = 0
    info.mtime = epoch
    info.uname = info.gname = ""
    return info


def tree_entries(src: Path, prefix: str = "") -> list[tuple[str, Path | None]]:
    """Every path under ``src`` as (``prefix``/relative name, path), parents first, sorted."""
    entries: list[tuple[str, Path | None]] = []
    parts = [p for p in prefix.strip("/").split("/") if p]
    for depth in range(1, len(parts) + 1):
        entries.append(("/".join(parts[:depth]), None))
    for dirpath, dirnames, filenames in os.walk(src):
        dirnames.sort()
        base = Path(dirpath)
        for name in sorted([*dirnames, *filenames]):
            path = base / name
            rel = path.relative_to(src).as_posix()
            entries.append(("/".join([*parts, rel]) if parts else rel, path))
    entries.sort(key=lambda e: e[0])
    return entries


# --- SBOM --------------------------------------------------------------------------------------


def write_sbom(
    out: Path,
    platform: Platform,
    project: Project,
    debian: list[DebianPackage],
    python: list[PythonDistribution],
) -> None:
    """An SPDX 2.3 JSON document (with purls) and a plain ``name version`` list."""
    name = f"{IMAGE_NAME}-{project.version}-{platform.slug}"
    packages: list[dict[str, Any]] = []
    lines = [f"# {IMAGE_NAME} {project.version} {platform.oci} (revision {project.revision})", "# debian"]
    for p in debian:
        lines.append(f"deb {p.name} {p.version} {p.architecture}")
        purl = f"pkg:deb/debian/{p.name}@{p.version}?arch={p.architecture}&distro=debian-12"
        packages.append(_spdx_package(f"deb-{p.name}", p.name, p.version, purl, "NOASSERTION"))
    lines.append("# python")
    for d in python:
        lines.append(f"pypi {d.name} {d.version}")
        purl = f"pkg:pypi/{d.name.lower().replace('_', '-')}@{d.version}"
        packages.append(_spdx_package(f"pypi-{d.name}", d.name, d.version, purl, d.license or "NOASSERTION"))
    doc = {
        "spdxVersion": "SPDX-2.3",
        "dataLicense": "CC0-1.0",
        "SPDXID": "SPDXRef-DOCUMENT",
        "name": name,
        "documentNamespace": f"{project.source_url}/spdx/{name}-{project.revision}",
        "creationInfo": {
            "created": project.created.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "creators": ["Tool: kubevc image/build.py"],
        },
        "packages": packages,
    }
    (out / f"{name}.spdx.json").write_text(json.dumps(doc, indent=2) + "\n")
    (out / f"{name}.packages.txt").write_text("\n".join(lines) + "\n")


def _spdx_package(ident: str, name: str, version: str, purl: str, license_: str) -> dict[str, Any]:
    declared = license_ if re.fullmatch(r"[A-Za-z0-9.+\- ()]+", license_) else "NOASSERTION"
    return {
        "SPDXID": "SPDXRef-" + re.sub(r"[^A-Za-z0-9.-]", "-", ident),
        "name": name,
        "versionInfo": version,
        "downloadLocation": "NOASSERTION",
        "licenseDeclared": declared,
        "externalRefs": [
            {"referenceCategory": "PACKAGE-MANAGER", "referenceType": "purl", "referenceLocator": purl}
        ],
    }


# --- the build ---------------------------------------------------------------------------------


@dataclass
class PlatformImage:
    platform: Platform
    manifest: Blob
    config: Blob
    layers: list[Layer]

    @property
    def oci_platform(self) -> dict[str, str]:
        doc = {"architecture": self.platform.architecture, "os": "linux"}
        if self.platform.variant:
            doc["variant"] = self.platform.variant
        return doc


def labels(project: Project) -> dict[str, str]:
    return {
        "org.opencontainers.image.title": IMAGE_NAME,
        "org.opencontainers.image.description": "kubevc edge inference gateway: " + project.description,
        "org.opencontainers.image.source": project.source_url,
        "org.opencontainers.image.url": project.source_url,
        "org.opencontainers.image.revision": project.revision,
        "org.opencontainers.image.version": project.version,
        "org.opencontainers.image.licenses": project.license,
        "org.opencontainers.image.created": project.created.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "org.opencontainers.image.base.name": f"debian:{DEBIAN_SUITE} (python3.11 packages only)",
    }


def build_platform(
    platform: Platform,
    project: Project,
    layout: OciLayout,
    wheel: Path,
    constraints: Path,
    work: Path,
    cache: Path,
) -> PlatformImage:
    start = time.monotonic()
    pwork = work / platform.slug
    root, site, app = pwork / "rootfs", pwork / "site", pwork / "app"
    progress(f"{platform.oci}: Debian root ({', '.join(DEBIAN_PACKAGES)}) with mmdebstrap")
    debian = debian_root(platform, root, cache)
    progress(f"{platform.oci}: {len(debian)} Debian packages; compiling the standard library")
    compile_bytecode(root / "usr/lib/python3.11", "/usr/lib/python3.11")
    wheels = download_wheels(platform, constraints, cache)
    progress(f"{platform.oci}: unpacking the gateway's wheels and kubevc's")
    # The project's own files go in a layer of their own: a new revision re-ships only that.
    shutil.rmtree(app, ignore_errors=True)
    install_wheels(platform, wheel, wheels, constraints, site, app / SITE_PACKAGES)
    dists = python_distributions(site) + python_distributions(app / SITE_PACKAGES)
    saved = prune_site(site)
    progress(f"{platform.oci}: dropped {saved / 1e6:.0f} MB the gateway never loads")
    write_entrypoint(app)
    trees = [("/", root), ("/" + SITE_PACKAGES, site), ("/", app)]
    missing = unresolved_libraries(trees, platform.triplet)
    if missing:
        raise BuildError(f"{platform.oci}: shared libraries the image lacks:\n  " + "\n  ".join(missing[:20]))
    progress(f"{platform.oci}: compiling {len(dists)} distributions")
    compile_bytecode(site, "/" + SITE_PACKAGES)
    compile_bytecode(app / SITE_PACKAGES, "/" + SITE_PACKAGES)
    progress(f"{platform.oci}: writing layers")
    layers = [
        layout.add_layer(tree_entries(root), project.epoch, "debian bookworm python3.11", owner_root=False),
        layout.add_layer(
            tree_entries(site, SITE_PACKAGES), project.epoch, "gateway dependencies", owner_root=True
        ),
        layout.add_layer(tree_entries(app), project.epoch, f"kubevc {project.version}", owner_root=True),
    ]
    created = project.created.strftime("%Y-%m-%dT%H:%M:%SZ")
    config_doc: dict[str, Any] = {
        "created": created,
        "architecture": platform.architecture,
        "os": "linux",
        "config": {
            "User": f"{UID}:{GID}",
            "Entrypoint": [ENTRYPOINT],
            "Cmd": ["--config", f"{CONFIG_DIR}/gateway.yaml"],
            "Env": list(ENV),
            "WorkingDir": "/",
            "ExposedPorts": {"8080/tcp": {}},
            "StopSignal": "SIGTERM",
            "Labels": labels(project),
        },
        "rootfs": {"type": "layers", "diff_ids": [layer.diff_id for layer in layers]},
        "history": [
            {"created": created, "created_by": f"image/build.py: {layer.comment}"} for layer in layers
        ],
    }
    if platform.variant:
        config_doc["variant"] = platform.variant
    config = layout.add_json(config_doc, MEDIA_CONFIG)
    manifest_doc = {
        "schemaVersion": 2,
        "mediaType": MEDIA_MANIFEST,
        "config": config.descriptor(),
        "layers": [layer.blob.descriptor() for layer in layers],
        "annotations": {
            k: v for k, v in labels(project).items() if k != "org.opencontainers.image.description"
        },
    }
    manifest = layout.add_json(manifest_doc, MEDIA_MANIFEST)
    image = PlatformImage(platform, manifest, config, layers)
    layout.tag(
        manifest, f"{project.version}-{platform.architecture}{platform.variant or ''}", image.oci_platform
    )
    write_sbom(layout.path.parent, platform, project, debian, dists)
    progress(
        f"{platform.oci}: {manifest.digest[:19]} {sum(x.unpacked_bytes for x in layers) / 1e6:.0f} MB"
        f" unpacked, {sum(x.blob.size for x in layers) / 1e6:.0f} MB compressed"
        f" ({time.monotonic() - start:.0f} s)"
    )
    return image


def write_oci_archive(layout: OciLayout, image: PlatformImage, ref: str, dest: Path, epoch: int) -> None:
    """One platform as an ``oci-archive`` (a tar of an OCI layout), e.g. for ``skopeo copy``/podman load."""
    index = {
        "schemaVersion": 2,
        "mediaType": MEDIA_INDEX,
        "manifests": [
            image.manifest.descriptor(
                platform=image.oci_platform, annotations={"org.opencontainers.image.ref.name": ref}
            )
        ],
    }
    blobs = [image.manifest, image.config, *(layer.blob for layer in image.layers)]
    with tarfile.open(dest, "w", format=tarfile.PAX_FORMAT) as tar:

        def add_bytes(name: str, data: bytes) -> None:
            info = tarfile.TarInfo(name)
            info.size, info.mtime, info.mode = len(data), epoch, 0o644
            tar.addfile(info, _BytesReader(data))

        add_bytes("oci-layout", b'{"imageLayoutVersion":"1.0.0"}')
        add_bytes("index.json", json.dumps(index, indent=2).encode() + b"\n")
        for blob in sorted(blobs, key=lambda b: b.digest):
            path = layout.blob_path(blob.digest)
            info = tar.gettarinfo(str(path), "blobs/sha256/" + path.name)
            info.mtime, info.uid, info.gid, info.uname, info.gname, info.mode = epoch, 0, 0, "", "", 0o644
            with path.open("rb") as f:
                tar.addfile(info, f)


class _BytesReader:
    def __init__(self, data: bytes) -> None:
        self.data, self.pos = data, 0

    def read(self, n: int = -1) -> bytes:
        end = len(self.data) if n < 0 else self.pos + n
        chunk = self.data[self.pos : end]
        self.pos += len(chunk)
        return chunk


def check_tools() -> None:
    missing = [tool for tool in ("mmdebstrap", "dpkg-deb") if shutil.which(tool) is None]
    if missing:
        raise BuildError(
            f"missing tools: {' '.join(missing)} (apt-get install mmdebstrap; `make image` does)"
        )
    if sys.version_info[:2] != (3, 11):
        raise BuildError(f"run with Python 3.11 (the image's); this is {sys.version.split()[0]}")
    if os.geteuid() != 0:
        raise BuildError("run as root: mmdebstrap --mode=root keeps the packages' file owners")


def build(platforms: Sequence[Platform], output: Path, constraints: Path) -> dict[str, Any]:
    check_tools()
    started = time.monotonic()
    project = read_project()
    cache, work = output / "cache", output / "work"
    progress(
        f"{IMAGE_NAME} {project.version} (revision {project.revision[:12]})"
        f" for {', '.join(p.oci for p in platforms)}"
    )
    wheel = build_project_wheel(cache / "project", project)
    progress(f"project wheel {wheel.name} ({wheel_content_digest(wheel)[:19]})")
    layout = OciLayout(output / "oci")
    images = [build_platform(p, project, layout, wheel, constraints, work, cache) for p in platforms]
    index_doc = {
        "schemaVersion": 2,
        "mediaType": MEDIA_INDEX,
        "manifests": [i.manifest.descriptor(platform=i.oci_platform) for i in images],
        "annotations": {
            k: v for k, v in labels(project).items() if k != "org.opencontainers.image.description"
        },
    }
    index = layout.add_json(index_doc, MEDIA_INDEX)
    layout.tag(index, project.version)
    for image in images:
        archive = output / f"{IMAGE_NAME}-{project.version}-{image.platform.slug}.oci.tar"
        write_oci_archive(layout, image, project.version, archive, project.epoch)
    report: dict[str, Any] = {
        "image": IMAGE_NAME,
        "version": project.version,
        "revision": project.revision,
        "created": project.created.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "index": index.digest,
        "inputs": build_inputs_key(wheel, constraints),
        "wheel": wheel_content_digest(wheel),
        "build_seconds": round(time.monotonic() - started, 1),
        "platforms": {
            i.platform.oci: {
                "manifest": i.manifest.digest,
                "config": i.config.digest,
                "tag": f"{project.version}-{i.platform.architecture}{i.platform.variant or ''}",
                "archive": f"{IMAGE_NAME}-{project.version}-{i.platform.slug}.oci.tar",
                "unpacked_bytes": sum(x.unpacked_bytes for x in i.layers),
                "compressed_bytes": sum(x.blob.size for x in i.layers),
            }
            for i in images
        },
    }
    (output / "image-digests.json").write_text(json.dumps(report, indent=2) + "\n")
    progress(
        f"done in {report['build_seconds']:.0f} s: {output / 'oci'}:{project.version} index {index.digest}"
    )
    return report


# --- constraints and wheel availability --------------------------------------------------------


def resolve(platform: Platform) -> dict[str, str]:
    """``{name: version}`` pip picks for the gateway's requirements on ``platform`` (newest allowed)."""
    with tempfile.TemporaryDirectory() as tmp:
        report = Path(tmp) / "report.json"
        pip(
            "install",
            "--quiet",
            "--dry-run",
            "--ignore-installed",
            "--target",
            Path(tmp) / "target",
            "--report",
            report,
            *platform.wheel_platform_args(),
            "--abi",
            "cp311",
            "--abi",
            "abi3",
            "--abi",
            "none",
            *gateway_requirements(),
        )
        doc = json.loads(report.read_text())
    return {
        _requirement_name(item["metadata"]["name"]): item["metadata"]["version"] for item in doc["install"]
    }


def lock(platforms: Sequence[Platform], constraints: Path, cache: Path) -> None:
    pins: dict[str, str] = {}
    for platform in platforms:
        progress(f"resolving the gateway's requirements for {platform.oci}")
        for name, version in resolve(platform).items():
            if pins.setdefault(name, version) != version:
                raise BuildError(f"{name}: {pins[name]} on one platform, {version} on {platform.oci}")
    header = [
        "# Pinned run-time dependencies of the gateway: pyproject's `gateway` extra plus pydantic and",
        "# PyYAML, with everything they pull in (the gateway image; `make venv` installs the same).",
        f"# Generated for {', '.join(p.oci for p in platforms)} by: python image/build.py lock",
        "# (`make constraints`); edit pyproject.toml, then regenerate, never by hand.",
    ]
    body = [f"{name}=={pins[name]}" for name in sorted(pins)]
    constraints.parent.mkdir(parents=True, exist_ok=True)
    constraints.write_text("\n".join(header + body) + "\n")
    progress(f"wrote {constraints} ({len(body)} pins)")


def check_wheels(platform: Platform, constraints: Path, cache: Path) -> list[str]:
    """The pinned distributions that have no wheel for ``platform`` on the package index."""
    missing = []
    dest = cache / "wheels" / platform.slug
    for line in constraints.read_text().splitlines():
        req = line.split("#")[0].strip()
        if not req:
            continue
        try:
            pip("download", "--quiet", "--no-deps", "--dest", dest, *platform.wheel_platform_args(), req)
            progress(f"{platform.oci}: {req}: wheel found")
        except BuildError:
            progress(f"{platform.oci}: {req}: NO WHEEL")
            missing.append(req)
    return missing


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="image/build.py", description=__doc__.split("\n\n")[0])
    parser.add_argument("command", nargs="?", default="build", choices=["build", "lock", "check-wheels"])
    parser.add_argument("--platform", action="append", choices=sorted(PLATFORMS), help="repeatable")
    parser.add_argument("--output", type=Path, default=REPO / "build")
    parser.add_argument("--constraints", type=Path, default=REPO / "constraints/gateway.txt")
    ns = parser.parse_args(argv)
    platforms = [PLATFORMS[p] for p in (ns.platform or DEFAULT_PLATFORMS)]
    try:
        if ns.command == "build":
            build(platforms, ns.output.resolve(), ns.constraints.resolve())
        elif ns.command == "lock":
            lock(platforms, ns.constraints.resolve(), ns.output.resolve() / "cache")
        else:
            missing = {
                p.oci: check_wheels(p, ns.constraints.resolve(), ns.output.resolve() / "cache")
                for p in platforms
            }
            for oci, names in missing.items():
                print(
                    f"{oci}: {'no wheel for ' + ', '.join(names) if names else 'every pinned wheel exists'}"
                )
            return 1 if any(missing.values()) else 0
    except BuildError as exc:
        print(f"image/build.py: error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
