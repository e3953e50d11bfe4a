"""Test and benchmark support: a real Debian root for pyinfra's ``@chroot`` connector.

Not used by ``kubevc-gen`` itself. The nodeprep chroot tests and the deploy benchmark
(``bench/suites/deploy.py``) debootstrap a ``minbase`` root once, cache it as a zstd tarball and
restore it fast for every run of ``node prepare``.

The mirror comes from this machine's own apt sources (deb822 ``*.sources`` or ``sources.list``),
never from a hard-coded host. A ``policy-rc.d`` that exits 101 keeps package scripts from
starting services inside the chroot.

The cache is ``.cache/nodeprep/`` of the source checkout when kubevc is installed in editable
mode from it, else ``$XDG_CACHE_HOME/kubevc/nodeprep`` (default ``~/.cache/kubevc/nodeprep``).
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import re
import shutil
import subprocess
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

from kubevc.nodeprep.runner import Target

__all__ = [
    "CACHE_DIR",
    "FSTAB_EXTRA",
    "POLICY_RC_D",
    "RPI_CMDLINE",
    "SUITE",
    "apt_mirrors",
    "base_tarball",
    "cache_dir",
    "chroot_target",
    "debian_mirror",
    "is_cached",
    "make_fake_pi",
    "mirror_unreachable",
    "pack",
    "restore",
    "tree_digest",
    "why_not_available",
]

SUITE = "bookworm"
POLICY_RC_D = "#!/bin/sh\n# kubevc tests: never start services inside the chroot\nexit 101\n"
RPI_CMDLINE = (
    "console=serial0,115200 console=tty1 root=PARTUUID=4e639091-02 rootfstype=ext4 fsck.repair=yes rootwait\n"
)
FSTAB_EXTRA = "/var/swap  none  swap  sw  0  0\n"


def cache_dir() -> Path:
    """``<checkout>/.cache/nodeprep`` for an editable install, else the user's cache folder."""
    here = Path(__file__).resolve()
    checkout = here.parents[1]
    if here.parent.name == "nodeprep" and (checkout / "pyproject.toml").is_file():
        return checkout / ".cache" / "nodeprep"
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg) if xdg and Path(xdg).is_absolute() else Path.home() / ".cache"
    return base / "kubevc" / "nodeprep"


CACHE_DIR = cache_dir()


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
            words = re.sub(r"\[[^\]]*\]", "", line.split("#", 1)[0]).split()
            if len(words) >= 3 and words[0] == "deb":
                found.append((words[1], [words[2]]))
    return found


def debian_mirror(suite: str = SUITE, etc_apt: Path = Path("/etc/apt")) -> str | None:
    """The first mirror URI of this machine's apt sources that serves ``suite``, or None."""
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


def mirror_unreachable(suite: str = SUITE, timeout: float = 15.0) -> str | None:
    """A reason the mirror cannot be reached now (its ``dists/<suite>/InRelease``), or None."""
    mirror = debian_mirror(suite)
    if mirror is None:
        return f"no '{suite}' mirror in this machine's apt sources (/etc/apt/sources.list*)"
    url = f"{mirror.rstrip('/')}/dists/{suite}/InRelease"
    if not url.startswith(("http://", "https://")):
        return None  # file:, cdrom: and the like: nothing to probe over the network
    request = urllib.request.Request(url, method="HEAD")  # noqa: S310 (scheme checked above)
    try:
        with urllib.request.urlopen(request, timeout=timeout):  # noqa: S310
            return None
    except (urllib.error.URLError, OSError) as error:
        return f"the Debian mirror is unreachable ({url}: {error})"


def _architecture() -> str:
    return subprocess.run(
        ["dpkg", "--print-architecture"], check=True, capture_output=True, text=True
    ).stdout.strip()


def _tarball_path() -> Path:
    return CACHE_DIR / f"debian-{SUITE}-minbase-{_architecture()}.tar.zst"


def is_cached() -> bool:
    """Whether the minbase tarball is already built (restoring it needs no network)."""
    return _tarball_path().is_file()


def base_tarball() -> Path:
    """The cached minbase root (built on first use; concurrent sessions wait on a lock).

    Raises :class:`RuntimeError` when debootstrap fails (typically: the mirror is unreachable).
    """
    CACHE_DIR.mkdir(parents=True, exist_ok=True)
    tarball = _tarball_path()
    with open(CACHE_DIR / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if tarball.is_file():
            return tarball
        mirror = debian_mirror()
        if mirror is None:
            raise RuntimeError(f"no '{SUITE}' mirror in this machine's apt sources")
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
    """Pack ``root`` into a zstd tarball (numeric owners, xattrs), written atomically."""
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
    """Unpack ``tarball`` into ``dest`` (created if missing) and return ``dest``."""
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


def chroot_target(root: Path) -> Target:
    """The pyinfra ``@chroot`` target for a restored root."""
    return Target(f"@chroot{root}")


def make_fake_pi(root: Path) -> None:
    """What a Raspberry Pi OS image has that a debootstrap'd root lacks: cmdline.txt, swap, zram."""
    firmware = root / "boot/firmware"
    firmware.mkdir(parents=True, exist_ok=True)
    (firmware / "cmdline.txt").write_text(RPI_CMDLINE)
    with open(root / "etc/fstab", "a") as fstab:
        fstab.write(FSTAB_EXTRA)
    generator = root / "usr/lib/systemd/system-generators/zram-generator"
    generator.parent.mkdir(parents=True, exist_ok=True)
    generator.write_text("#!/bin/sh\n# stand-in for systemd-zram-generator\n")
    generator.chmod(0o755)
