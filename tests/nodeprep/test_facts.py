"""The facts' parsing of recorded command output (what the node prints for each read-only command)."""

from __future__ import annotations

import base64
import hashlib
import shlex

from kubevc.nodeprep.facts import FileBytes, FileSha256, K3sVersion, SysctlValues


def test_file_bytes_fact_round_trip() -> None:
    fact = FileBytes()
    data = b"  leading space\ntrailing newline\n\n"
    assert fact.process(["present:" + base64.b64encode(data).decode()]) == data
    assert fact.process(["present:"]) == b""
    assert fact.process(["absent"]) is None
    assert "'/boot/it'\\''s.txt'" in fact.command(path="/boot/it's.txt")


def test_sysctl_fact_parses_proc_paths() -> None:
    values = SysctlValues().process(["net/ipv4/ip_forward=1", "net/bridge/bridge-nf-call-iptables=0"])
    assert values == {"net.ipv4.ip_forward": "1", "net.bridge.bridge-nf-call-iptables": "0"}


def test_k3s_version_fact_contract() -> None:
    fact = K3sVersion()
    assert fact.process(["k3s version v1.31.4+k3s1 (a562d090)"]) == "v1.31.4+k3s1"
    assert fact.process(["go version go1.22.9"]) is None


def test_file_sha256_fact() -> None:
    digest = hashlib.sha256(b"k3s").hexdigest()
    fact = FileSha256()
    assert fact.process([f"{digest}\n"]) == digest
    assert fact.process([]) is None and fact.process([""]) is None
    path = "/usr/local/bin/it's"
    assert f"sha256sum {shlex.quote(path)} |" in fact.command(path=path)
