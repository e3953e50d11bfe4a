"""Run a built image the way a kubelet would, without an engine: umoci unpacks it into an OCI
bundle, runc or crun runs the bundle (as root on this machine).

Used by tests/image and ``python -m image.measure``; standard library only.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import struct
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = [
    "Container",
    "ContainerError",
    "ElfFile",
    "elf_files",
    "prepare_bundle",
    "runtime_argv",
    "unpack",
    "wait_http",
]

ELF_MAGIC = b"\x7fELF"


class ContainerError(Exception):
    """umoci or the OCI runtime failed."""


def unpack(layout: Path, ref: str, bundle: Path) -> Path:
    """``umoci unpack`` the image ``layout:ref`` into a fresh ``bundle`` directory."""
    shutil.rmtree(bundle, ignore_errors=True)
    proc = subprocess.run(
        ["umoci", "unpack", "--image", f"{layout}:{ref}", str(bundle)], capture_output=True, text=True
    )
    if proc.returncode != 0:
        raise ContainerError(f"umoci unpack {layout}:{ref} failed: {proc.stderr[-2000:]}")
    return bundle


def prepare_bundle(
    bundle: Path,
    *,
    args: list[str] | None = None,
    binds: dict[str, Path] | None = None,
    tmpfs: tuple[str, ...] = ("/tmp",),
    host_network: bool = True,
) -> dict[str, Any]:
    """Make the bundle run like the chart's pod: read-only root, image user, config mounted read-only.

    ``args`` replace the image's Cmd (the Entrypoint stays); ``binds`` maps container paths to host
    directories (mounted read-only); ``tmpfs`` are the writable directories; ``host_network`` drops
    the network namespace so the container shares this machine's loopback.
    """
    path = bundle / "config.json"
    config: dict[str, Any] = json.loads(path.read_text())
    process = config["process"]
    process["terminal"] = False
    if args is not None:
        process["args"] = process["args"][:1] + args
    config["root"]["readonly"] = True
    for dest, src in (binds or {}).items():
        config["mounts"].append(
            {"destination": dest, "type": "bind", "source": str(src), "options": ["rbind", "ro"]}
        )
    for dest in tmpfs:
        config["mounts"].append(
            {
                "destination": dest,
                "type": "tmpfs",
                "source": "tmpfs",
                "options": ["nosuid", "nodev", "mode=1777"],
            }
        )
    if host_network:
        config["linux"]["namespaces"] = [n for n in config["linux"]["namespaces"] if n["type"] != "network"]
    path.write_text(json.dumps(config, indent=2))
    return config


def _crun_on_hybrid_cgroups(runtime: str) -> bool:
    # crun (1.8) refuses hosts with cgroup v1 controllers plus a cgroup2 hierarchy that holds
    # controllers too ("cgroups in hybrid mode not supported"); runc takes them.
    controllers = Path("/sys/fs/cgroup/unified/cgroup.controllers")
    return Path(runtime).name == "crun" and controllers.exists() and bool(controllers.read_text().strip())


def runtime_argv(runtime: str, state_dir: Path, *, run: bool = False) -> list[str]:
    """The command line up to the runtime's subcommand: its state directory, and for crun on a
    hybrid-cgroup host no cgroup of its own (a smoke test needs no limits); its ``run`` then starts
    in a private mount namespace where the cgroup2 mount is hidden, so crun sees plain cgroup v1.
    """
    argv = [runtime, "--root", str(state_dir)]
    if not _crun_on_hybrid_cgroups(runtime):
        return argv
    argv.append("--cgroup-manager=disabled")
    if not run:
        return argv
    empty = state_dir / "no-cgroup2"
    empty.mkdir(parents=True, exist_ok=True)
    hide = f'mount --bind {empty} /sys/fs/cgroup/unified && exec "$0" "$@"'
    return ["unshare", "--mount", "--propagation", "private", "--", "sh", "-c", hide, *argv]


@dataclass
class Container:
    """One container run by ``runtime`` (runc or crun) in the foreground, its output in files."""

    runtime: str
    bundle: Path
    name: str
    state_dir: Path
    proc: subprocess.Popen[bytes] | None = None
    started_at: float = 0.0
    _logs: list[Any] = field(default_factory=list)

    def start(self) -> None:
        self.state_dir.mkdir(parents=True, exist_ok=True)
        out = (self.bundle / "stdout.log").open("wb")
        err = (self.bundle / "stderr.log").open("wb")
        self._logs = [out, err]
        self.started_at = time.monotonic()
        self.proc = subprocess.Popen(
            [
                *runtime_argv(self.runtime, self.state_dir, run=True),
                "run",
                "--bundle",
                str(self.bundle),
                self.name,
            ],
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=err,
        )

    def signal(self, sig: signal.Signals) -> None:
        subprocess.run(
            [*runtime_argv(self.runtime, self.state_dir), "kill", self.name, sig.name.removeprefix("SIG")],
            check=True,
            capture_output=True,
        )

    def wait(self, timeout: float) -> int:
        assert self.proc is not None
        return self.proc.wait(timeout)

    def logs(self) -> str:
        parts = []
        for name in ("stdout.log", "stderr.log"):
            path = self.bundle / name
            if path.exists():
                parts.append(path.read_text(errors="replace"))
        return "\n".join(parts)

    def pid(self) -> int:
        """The container's init process, as this machine's PID namespace sees it."""
        out = subprocess.run(
            [*runtime_argv(self.runtime, self.state_dir), "state", self.name],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        pid: int = json.loads(out)["pid"]
        return pid

    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def cleanup(self) -> None:
        if self.running():
            subprocess.run(
                [*runtime_argv(self.runtime, self.state_dir), "kill", self.name, "KILL"], capture_output=True
            )
            assert self.proc is not None
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        subprocess.run(
            [*runtime_argv(self.runtime, self.state_dir), "delete", "--force", self.name], capture_output=True
        )
        for log in self._logs:
            log.close()


def wait_http(url: str, timeout: float, container: Container | None = None) -> tuple[int, bytes]:
    """GET ``url`` until it answers 200 (or ``timeout``, or the container exits); the last answer."""
    deadline = time.monotonic() + timeout
    last: tuple[int, bytes] = (0, b"")
    while time.monotonic() < deadline:
        if container is not None and not container.running():
            raise ContainerError(f"the container exited early:\n{container.logs()[-3000:]}")
        try:
            with urllib.request.urlopen(url, timeout=2) as resp:  # noqa: S310 - loopback http only
                last = (resp.status, resp.read())
                if resp.status == 200:
                    return last
        except urllib.error.HTTPError as exc:
            last = (exc.code, exc.read())
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(0.02)
    return last


@dataclass(frozen=True)
class ElfFile:
    path: Path
    machine: int  # e_machine: 62 x86-64, 183 aarch64, 40 arm
    elf_class: int  # 1: 32-bit, 2: 64-bit


def elf_files(root: Path) -> Iterator[ElfFile]:
    """Every regular ELF file under ``root``, with its e_machine read from the ELF header."""
    for dirpath, _, filenames in os.walk(root):
        for name in filenames:
            path = Path(dirpath) / name
            if path.is_symlink() or not path.is_file():
                continue
            with path.open("rb") as f:
                header = f.read(20)
            if len(header) < 20 or header[:4] != ELF_MAGIC:
                continue
            # e_ident[EI_CLASS]=4, [EI_DATA]=5 (1 little, 2 big endian); e_machine: u16 at offset 18
            endian = "<" if header[5] == 1 else ">"
            (machine,) = struct.unpack_from(endian + "H", header, 18)
            yield ElfFile(path, machine, header[4])
