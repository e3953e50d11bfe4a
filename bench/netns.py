"""Two network namespaces joined by a veth pair, optionally rate-limited with ``tc ... tbf``.

Needs root (``ip netns add``). Names are unique per run (pid + random suffix); addresses come from
a private /30 that exists only inside the two namespaces. :class:`Link` is a context manager that
always deletes both namespaces (and with them the veth pair and its qdiscs), also on errors.
"""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass, field
from types import TracebackType

SUBNET = "10.213.37.0/30"
SERVER_IP = "10.213.37.1"
CLIENT_IP = "10.213.37.2"


@dataclass(frozen=True)
class Shape:
    """A tbf setting; ``rate`` None means the bare veth (no qdisc)."""

    name: str
    rate: str | None = None
    burst: str = ""
    latency: str = "50ms"

    @property
    def bits_per_second(self) -> float | None:
        if self.rate is None:
            return None
        units = {"gbit": 1e9, "mbit": 1e6, "kbit": 1e3}
        for suffix, mult in units.items():
            if self.rate.endswith(suffix):
                return float(self.rate[: -len(suffix)]) * mult
        raise ValueError(f"unknown rate unit in {self.rate!r}")


# burst about 1 ms of the rate (and well above the MTU), as tbf needs at least rate/HZ
UNSHAPED = Shape("veth, no shaping")
GBIT = Shape("1 Gbit/s", "1gbit", "128kb")
MBIT100 = Shape("100 Mbit/s", "100mbit", "16kb")


def _run(args: Sequence[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(args), check=True, capture_output=True, text=True, timeout=30)


def unavailable_reason() -> str | None:
    """Why namespaces cannot be used here, or None when they can."""
    if os.geteuid() != 0:
        return "network namespaces need root (ip netns add); run `make bench` as root"
    for tool in ("ip", "tc"):
        if shutil.which(tool) is None:
            return f"`{tool}` not found (Debian package iproute2)"
    probe = f"kvbprobe{os.getpid() % 100000}"
    try:
        _run(["ip", "netns", "add", probe])
    except (subprocess.CalledProcessError, OSError, subprocess.TimeoutExpired) as exc:
        detail = getattr(exc, "stderr", "") or str(exc)
        return f"`ip netns add` is not permitted here: {detail.strip()}"
    finally:
        subprocess.run(["ip", "netns", "del", probe], capture_output=True, check=False)
    return None


@dataclass
class Link:
    """server namespace <-veth-> client namespace."""

    tag: str = field(default_factory=lambda: f"{os.getpid() % 10000:04d}{secrets.token_hex(2)}")
    server_ip: str = SERVER_IP
    client_ip: str = CLIENT_IP
    _created: list[str] = field(default_factory=list)

    @property
    def server_ns(self) -> str:
        return f"kvb-{self.tag}-s"

    @property
    def client_ns(self) -> str:
        return f"kvb-{self.tag}-c"

    @property
    def server_dev(self) -> str:
        return f"kvb{self.tag}s"  # <= 15 characters (IFNAMSIZ)

    @property
    def client_dev(self) -> str:
        return f"kvb{self.tag}c"

    def exec_prefix(self, ns: str) -> list[str]:
        return ["ip", "netns", "exec", ns]

    def up(self) -> None:
        for ns in (self.server_ns, self.client_ns):
            _run(["ip", "netns", "add", ns])
            self._created.append(ns)
            _run(["ip", "-n", ns, "link", "set", "lo", "up"])
        _run(["ip", "link", "add", self.server_dev, "type", "veth", "peer", "name", self.client_dev])
        try:
            _run(["ip", "link", "set", self.server_dev, "netns", self.server_ns])
            _run(["ip", "link", "set", self.client_dev, "netns", self.client_ns])
        except subprocess.CalledProcessError:
            subprocess.run(["ip", "link", "del", self.server_dev], capture_output=True, check=False)
            raise
        for ns, dev, ip in (
            (self.server_ns, self.server_dev, self.server_ip),
            (self.client_ns, self.client_dev, self.client_ip),
        ):
            _run(["ip", "-n", ns, "addr", "add", f"{ip}/30", "dev", dev])
            _run(["ip", "-n", ns, "link", "set", dev, "up"])

    def shape(self, shape: Shape) -> None:
        """Apply the same tbf on both ends' egress (or remove it for the bare veth)."""
        for ns, dev in ((self.server_ns, self.server_dev), (self.client_ns, self.client_dev)):
            subprocess.run(
                ["tc", "-n", ns, "qdisc", "del", "dev", dev, "root"], capture_output=True, check=False
            )
            if shape.rate is not None:
                _run(
                    [
                        "tc",
                        "-n",
                        ns,
                        "qdisc",
                        "add",
                        "dev",
                        dev,
                        "root",
                        "tbf",
                        "rate",
                        shape.rate,
                        "burst",
                        shape.burst,
                        "latency",
                        shape.latency,
                    ]
                )

    def qdisc(self) -> str:
        return _run(["tc", "-n", self.server_ns, "qdisc", "show", "dev", self.server_dev]).stdout.strip()

    def down(self) -> None:
        for ns in reversed(self._created):
            subprocess.run(["ip", "netns", "del", ns], capture_output=True, check=False)
        self._created.clear()

    def __enter__(self) -> Link:
        try:
            self.up()
        except BaseException:
            self.down()
            raise
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.down()
