"""A real Debian root for the chroot tests: debootstrap once, cache as a zstd tarball, restore fast.

The mirror comes from this machine's own apt sources (deb822 ``*.sources`` or ``sources.list``),
never from a hard-coded host. A ``policy-rc.d`` that exits 101 keeps package scripts from
starting services inside the chroot.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

SUITE = "bookworm"
CACHE_DIR = Path(__file__).resolve().parents[2] / ".cache" / "nodeprep"
POLICY_RC_D = "#!/bin/sh\n# kubevc tests: never start services inside the chroot\nexit 101\n"


def _deb822_blocks(text: str) -> Iterator[dict[str, str]]:
    for block in re.split(r"\n\s*\n", text):
        fields: dict[str, str] = {}
        key = ""
        for line in block.splitlines():
            if line.startswith("#") or not line.strip():
                continue
            if line[0].isspace() and key:
                fields[key] += " " + line.strip()
                continue
            key, _, value = line.partition(":")
            key = key.strip().lower()
            fields[key] = value.strip()
        if fields:
            yield fields


def apt_mirrors(etc_apt: Path = Path("/etc/apt")) -> list[tuple[str, list[str]]]:
    """(URI, suites) pairs of the 'deb' entries of this machine's apt sources, in file order."""
    found: list[tuple[str, list[str]]] = []
    sources_d = etc_apt / "sources.list.d"
    for path in sorted(sources_d.glob("*.sources")) if sources_d.is_dir() else []:
        for fields in _deb822_blocks(path.read_text()):
            if "deb" not in fields.get("types", "").split() or fields.get("enabled", "yes") == "no":
                continue
            for uri in fields.get("uris", "").split():
                found.append((uri, fields.get("suites", "").split()))
    lists = [etc_apt / "sources.list"]
    lists += sorted(sources_d.glob("*.list")) if sources_d.is_dir() else []
    for path in lists:
        if not path.is_file():
            continue
        for line in path.read_text().splitlines():
            line = re.sub(r"\[[^\]]*\]", "", line.split("#", 1)[0]).split()
            if len(line) >= 3 and line[0] == "deb":
                found.append((line[1], [line[2]]))
    return found


def debian_mirror(suite: str = SUITE, etc_apt: Path = Path("/etc/apt")) -> str | None:
    for uri, suites in apt_mirrors(etc_apt):
        if suite in suites:
            return uri
    return None


def why_not_available() -> str | None:
    """A reason the chroot tests cannot run here, or None."""
    if os.geteuid() != 0:
        return "chroot tests need root (debootstrap and chroot)"
    for tool in ("debootstrap", "chroot", "zstd", "tar"):
        if shutil.which(tool) is None:
            return f"{tool} is not installed (apt-get install debootstrap zstd; `make system-deps`)"
    if debian_mirror() is None:
        return f"no '{SUITE}' mirror in this machine's apt sources (/etc/apt/sources.list*)"
    return None


def base_tarball() -> Path:
    """The cached minbase root (built on first use; concurrent sessions wait on a lock)."""
    arch = subprocess.run(
        ["dpkg", "--print-architecture"], check=True, capture_output=True, text=True
    ).stdout.strip()
    CACHE_DIR.mkdir(parents=True, exist_ok=True)
    tarball = CACHE_DIR / f"debian-{SUITE}-minbase-{arch}.tar.zst"
    with open(CACHE_DIR / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if tarball.is_file():
            return tarball
        mirror = debian_mirror()
        assert mirror is not None
        build = CACHE_DIR / "build-root"
        shutil.rmtree(build, ignore_errors=True)
        log = CACHE_DIR / "debootstrap.log"
        with open(log, "w") as out:
            result = subprocess.run(
                ["debootstrap", "--variant=minbase", SUITE, str(build), mirror],
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        if result.returncode != 0:
            shutil.rmtree(build, ignore_errors=True)
            tail = log.read_text().splitlines()[-5:]
            raise RuntimeError(f"debootstrap {SUITE} from {mirror} failed: {' | '.join(tail)}")
        policy = build / "usr/sbin/policy-rc.d"
        policy.write_text(POLICY_RC_D)
        policy.chmod(0o755)
        shutil.rmtree(build / "var/cache/apt/archives", ignore_errors=True)
        (build / "var/cache/apt/archives/partial").mkdir(parents=True)
        pack(build, tarball)
        shutil.rmtree(build, ignore_errors=True)
        return tarball


def pack(root: Path, tarball: Path) -> None:
    partial = tarball.with_suffix(".partial")
    subprocess.run(
        [
            "tar",
            "-C",
            str(root),
            "--numeric-owner",
            "--xattrs",
            "-I",
            "zstd -T0 -3",
            "-cf",
            str(partial),
            ".",
        ],
        check=True,
    )
    partial.rename(tarball)


def restore(tarball: Path, dest: Path) -> Path:
    dest.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        ["tar", "-C", str(dest), "--numeric-owner", "--xattrs", "-I", "zstd -T0", "-xpf", str(tarball)],
        check=True,
    )
    return dest


def tree_digest(root: Path) -> str:
    """A digest of every path's type, mode, owner, size, mtime and content (symlink targets)."""
    digest = hashlib.sha256()
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        for name in sorted(dirnames + filenames):
            path = os.path.join(dirpath, name)
            st = os.lstat(path)
            rel = os.path.relpath(path, root)
            digest.update(f"{rel}\0{st.st_mode}\0{st.st_uid}\0{st.st_gid}\0{st.st_mtime_ns}\0".encode())
            if os.path.islink(path):
                digest.update(os.readlink(path).encode())
            elif os.path.isfile(path):
                digest.update(f"{st.st_size}\0".encode())
                with open(path, "rb") as handle:
                    digest.update(hashlib.sha256(handle.read()).digest())
    return digest.hexdigest()
