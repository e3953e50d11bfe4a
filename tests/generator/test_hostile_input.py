"""Hostile input (issue 19): bounded YAML, folder names, credentials in git URLs, node hosts.

Every case is one error line naming the file (and position), no traceback, and the repo exactly
as before.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from kubevc.generator.repo import MAX_BYTES, MAX_NODES

from .conftest import Gen, git, run_gen, snapshot

REGION = "regions/busan/region.yaml"
ALIAS_BOMB = "\n".join(
    ["a: &a [x, x, x, x, x, x, x, x, x]"]
    + [f"{chr(98 + i)}: &{chr(98 + i)} [{', '.join([f'*{chr(97 + i)}'] * 9)}]" for i in range(8)]
)


def error_lines(output: str) -> list[str]:
    return [line for line in output.splitlines() if line.startswith("error:")]


def assert_one_line_error(output: str, *needles: str) -> None:
    assert "Traceback" not in output and "RecursionError" not in output, output
    errors = error_lines(output)
    assert len(errors) == 1, output
    for needle in needles:
        assert needle in errors[0], errors[0]


def write_raw(fleet: Path, rel: str, data: bytes) -> None:
    (fleet / rel).write_bytes(data)


def test_alias_bomb_fails_fast_in_bounded_memory(fleet: Path) -> None:
    """The billion-laughs file, under a 1 GiB address-space limit: one line, well under a minute.

    (`render`, not `validate`: validate loads the Go Helm library, whose runtime reserves more
    address space than the limit before doing anything.)
    """
    path = fleet / REGION
    path.write_text(path.read_text() + ALIAS_BOMB + "\n")
    script = textwrap.dedent(
        f"""
        import resource, sys
        resource.setrlimit(resource.RLIMIT_AS, (1 << 30, 1 << 30))
        from kubevc.generator.cli import main
        sys.argv = ["kubevc-gen", "--fleet", {str(fleet)!r}, "render"]
        main()
        """
    )
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 5, proc.stdout + proc.stderr
    assert_one_line_error(proc.stderr, f"{REGION}:", "anchors and aliases are not allowed")


@pytest.mark.parametrize("command", [["render"], ["region", "list"]])
def test_alias_in_a_region_file_is_refused(gen: Gen, fleet: Path, command: list[str]) -> None:
    path = fleet / REGION
    path.write_text(path.read_text() + "extra: &x 1\nagain: *x\n")
    before = snapshot(fleet)
    result = gen(*command)
    assert result.exit_code == 5, result.output
    line = len(path.read_text().splitlines()) - 1
    assert_one_line_error(result.output, f"{REGION}:{line}:8:", "anchor &x")
    assert snapshot(fleet) == before


def test_validate_reports_an_alias_as_a_finding(gen: Gen, fleet: Path) -> None:
    path = fleet / REGION
    path.write_text(path.read_text() + "extra: &x 1\n")
    result = gen("validate", "--no-checkov", "--region", "busan", "-o", "json")
    assert result.exit_code == 1
    line = len(path.read_text().splitlines())
    assert f"{REGION}:{line}:8: YAML anchors and aliases are not allowed (anchor &x)" in result.output


def test_a_200k_node_file_is_refused_by_the_node_limit(gen: Gen, fleet: Path) -> None:
    path = fleet / REGION
    path.write_text("bulk: [" + ",".join("0" for _ in range(200_000)) + "]\n")  # ~400 KB
    before = snapshot(fleet)
    result = gen("render")
    assert result.exit_code == 5
    assert_one_line_error(result.output, f"{REGION}:1:", f"more than {MAX_NODES} YAML nodes")
    assert snapshot(fleet) == before


def test_an_oversized_file_is_refused_before_it_is_parsed(gen: Gen, fleet: Path) -> None:
    path = fleet / REGION
    path.write_text(path.read_text() + "# " + "x" * (MAX_BYTES + 1) + "\n")
    result = gen("render")
    assert result.exit_code == 5
    assert_one_line_error(result.output, f"{REGION}: ", f"more than the limit of {MAX_BYTES} bytes")


def test_nul_byte_names_file_line_and_column(gen: Gen, fleet: Path) -> None:
    text = (fleet / REGION).read_bytes()
    write_raw(fleet, REGION, text + b"note: a\x00b\n")
    before = snapshot(fleet)
    result = gen("render")
    assert result.exit_code == 5
    line = text.count(b"\n") + 1
    assert_one_line_error(result.output, f"{REGION}:{line}:8: a NUL byte")
    assert snapshot(fleet) == before


def test_non_utf8_names_file_and_position(gen: Gen, fleet: Path) -> None:
    text = (fleet / REGION).read_bytes()
    write_raw(fleet, REGION, text + b"note: caf\xe9\n")
    result = gen("render")
    assert result.exit_code == 5
    line = text.count(b"\n") + 1
    assert_one_line_error(result.output, f"{REGION}:{line}:10: not UTF-8 text (byte 0xe9)")


def test_deep_nesting_is_refused_without_recursion_error(gen: Gen, fleet: Path) -> None:
    path = fleet / REGION
    path.write_text(path.read_text() + "deep: " + "[" * 20_000 + "]" * 20_000 + "\n")
    before = snapshot(fleet)
    result = gen("render")
    assert result.exit_code == 5
    assert_one_line_error(result.output, f"{REGION}:", "nested deeper than 64 levels")
    assert snapshot(fleet) == before


def test_fleet_config_with_an_alias_is_refused(gen: Gen, fleet: Path) -> None:
    path = fleet / "kubevc-fleet.yaml"
    path.write_text(path.read_text() + "x: &y 1\nz: *y\n")
    result = gen("render")
    assert result.exit_code == 5
    assert_one_line_error(result.output, "kubevc-fleet.yaml:")


@pytest.mark.parametrize("folder", ["Seoul", "sеoul"])  # the second has a Cyrillic 'е'
def test_bad_region_folder_names_the_path(gen: Gen, fleet: Path, folder: str) -> None:
    (fleet / "regions" / folder).mkdir()
    (fleet / "regions" / folder / "region.yaml").write_text((fleet / REGION).read_text())
    result = gen("render")
    assert result.exit_code == 5
    assert f"regions/{folder}/: folder name is not a valid region" in result.output
    assert "Traceback" not in result.output


SECRET = "s3cr3t-token"


@pytest.mark.parametrize(
    "args",
    [
        ["region", "add", "daegu", "--api-endpoint", "https://10.7.0.1:6443", "--nfs-server", "nas",
         "--nfs-path", "/m", "--git-url", f"https://ops:{SECRET}@git.example.com/ops/fleet.git"],
        ["region", "set", "seoul", f"git.url=https://{SECRET}@git.example.com/ops/fleet.git"],
    ],
)  # fmt: skip
def test_credential_urls_are_refused_without_echoing_the_secret(
    gen: Gen, fleet: Path, args: list[str]
) -> None:
    before = snapshot(fleet)
    result = gen(*args)
    assert result.exit_code == 5, result.output
    assert SECRET not in result.output
    assert_one_line_error(result.output, "embeds credentials", "https://***@git.example.com/ops/fleet.git")
    assert "git.url" in result.output or "--git-url" in result.output
    assert snapshot(fleet) == before


def test_init_refuses_a_credential_url(tmp_path: Path) -> None:
    url = f"https://ops:{SECRET}@git.example.com/ops/fleet.git"
    result = run_gen("init", str(tmp_path / "f"), "--git-url", url)
    assert result.exit_code == 5 and SECRET not in result.output
    assert_one_line_error(result.output, "--git-url", "***@git.example.com")
    assert not (tmp_path / "f").exists()


def test_validate_flags_credentials_already_in_the_repo(gen: Gen, fleet: Path) -> None:
    path = fleet / "regions/seoul/region.yaml"
    path.write_text(
        path.read_text().replace("https://git.example.com", f"https://ops:{SECRET}@git.example.com")
    )
    git(fleet, "commit", "-qam", "a token slipped in")
    result = gen("validate", "--no-checkov", "--region", "seoul", "-o", "json")
    assert result.exit_code == 1, result.output
    assert SECRET not in result.output
    assert '"check": "secrets"' in result.output and "embedded credentials" in result.output
    assert "regions/seoul/region.yaml:" in result.output


@pytest.mark.parametrize("host", ["$(touch x)", "a;b", "`id`", "host name", "@ssh/$(id)", "@chroot/../x"])
def test_node_hosts_must_be_hosts_not_shell(gen: Gen, fleet: Path, host: str) -> None:
    before = snapshot(fleet)
    result = gen("node", "add", "seoul", host)
    assert result.exit_code == 5, result.output
    assert "is not a host name, an IP address or a pyinfra connector" in result.output
    assert snapshot(fleet) == before


@pytest.mark.parametrize(
    "host", ["10.0.0.5", "fd00::5", "pi-2.local", "@local", "@ssh/edge-1", "@chroot/srv/root"]
)
def test_node_hosts_that_are_fine(gen: Gen, host: str) -> None:
    result = gen("node", "add", "seoul", host, "--dry-run")
    assert result.exit_code == 0, result.output
