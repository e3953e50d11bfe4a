"""kubevc.generator.models (store): SavedModel checks, atomic publish, interruption, containment, SSH."""

from __future__ import annotations

import hashlib
import os
import subprocess
from pathlib import Path

import pytest

from kubevc.generator.errors import StoreError
from kubevc.generator.models import LocalStore
from kubevc.generator.models import _store as modelstore  # the module tests patch (_rename)

from .model_savedmodels import saved_models, synthetic_saved_model_layout

__all__ = ["saved_models"]  # the session fixture, imported so pytest finds it here


def tree(root: Path) -> dict[str, str]:
    """Every file and folder under root with a content hash: the store's complete state."""
    out: dict[str, str] = {}
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root).as_posix()
        out[rel] = hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else "dir"
    return out


def publish(store: Path, src: Path, version: int, model: str = "scale") -> modelstore.PublishResult:
    return modelstore.publish(LocalStore(store), model=model, folder=model, version=version, src=src)


def test_real_saved_model_passes_and_publish_is_complete(saved_models: Path, tmp_path: Path) -> None:
    store = tmp_path / "store"
    store.mkdir()
    src = saved_models / "v1"
    modelstore.check_saved_model(src)
    messages: list[str] = []
    result = modelstore.publish(
        LocalStore(store), model="scale", folder="scale", version=1, src=src, progress=messages.append
    )
    assert result.path == str(store / "scale" / "1")
    copied = {
        p.relative_to(store / "scale/1").as_posix() for p in (store / "scale/1").rglob("*") if p.is_file()
    }
    original = {p.relative_to(src).as_posix() for p in src.rglob("*") if p.is_file()}
    assert copied == original and "saved_model.pb" in copied
    assert tree(store / "scale/1") == tree(src)  # empty folders (assets/) too
    assert not [n for n in os.listdir(store / "scale") if n.startswith(".incoming-")]
    # the manifest is sha256sum-compatible: the real tool agrees with every line
    check = subprocess.run(
        ["sha256sum", "-c", "-"],
        input=result.manifest.text(),
        cwd=store / "scale/1",
        capture_output=True,
        text=True,
    )
    assert check.returncode == 0, check.stdout + check.stderr
    assert any(m.startswith("rename .incoming-1-") for m in messages)


def test_signature_must_be_in_the_graph(saved_models: Path) -> None:
    with pytest.raises(StoreError, match="signature 'classify' not found"):
        modelstore.check_saved_model(saved_models / "v1", "classify")


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        ("no-pb", "saved_model.pb is missing"),
        ("no-variables", "variables/ folder is missing"),
        ("not-protobuf", "not a SavedModel protobuf"),
        ("symlink", "symbolic links are not published"),
    ],
)
def test_not_a_saved_model_copies_nothing(tmp_path: Path, damage: str, message: str) -> None:
    src = synthetic_saved_model_layout(tmp_path / "synthetic")
    if damage == "no-pb":
        (src / "saved_model.pb").unlink()
    elif damage == "no-variables":
        for p in (src / "variables").iterdir():
            p.unlink()
        (src / "variables").rmdir()
    elif damage == "not-protobuf":
        (src / "saved_model.pb").write_text("<html>not a model</html>")
    else:
        (src / "variables" / "link").symlink_to("/etc/hostname")
    store = tmp_path / "store"
    (store / "scale").mkdir(parents=True)
    before = tree(store)
    with pytest.raises(StoreError, match=message):
        publish(store, src, 1)
    assert tree(store) == before


def test_existing_version_is_never_overwritten(saved_models: Path, tmp_path: Path) -> None:
    store = tmp_path / "store"
    store.mkdir()
    publish(store, saved_models / "v1", 1)
    before = tree(store)
    with pytest.raises(StoreError, match=r"version 1 of scale already exists.*--version 2"):
        publish(store, saved_models / "v2", 1)
    assert tree(store) == before
    # an empty folder named 1 (which rename(2) would silently replace) counts as existing too
    (store / "scale" / "5").mkdir()
    with pytest.raises(StoreError, match="version 5 of scale already exists"):
        publish(store, saved_models / "v2", 5)


def test_interrupted_publish_leaves_only_incoming_and_next_publish_cleans_up(
    saved_models: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = tmp_path / "store"
    store.mkdir()
    publish(store, saved_models / "v1", 1)

    def interrupted(_store: object, _src: str, _dst: str) -> None:
        raise KeyboardInterrupt  # Ctrl-C (or a kill) between the copy and the rename

    monkeypatch.setattr(modelstore, "_rename", interrupted)
    with pytest.raises(KeyboardInterrupt):
        publish(store, saved_models / "v2", 2)
    names = sorted(os.listdir(store / "scale"))
    incoming = [n for n in names if n.startswith(".incoming-2-")]
    assert len(incoming) == 1 and "2" not in names, names
    # TF Serving only loads numeric folders: the store still serves exactly version 1
    assert modelstore.versions(LocalStore(store), "scale") == ([1], incoming)
    assert (store / "scale" / incoming[0] / "saved_model.pb").is_file()  # a full copy, never renamed

    monkeypatch.undo()
    messages: list[str] = []
    modelstore.publish(
        LocalStore(store), model="scale", folder="scale", version=2, src=saved_models / "v2",
        progress=messages.append,
    )  # fmt: skip
    assert f"removing {incoming[0]} (left by an interrupted publish)" in messages
    assert modelstore.versions(LocalStore(store), "scale") == ([1, 2], [])
    v2 = (store / "scale/2/variables/variables.data-00000-of-00001").read_bytes()
    assert v2 == (saved_models / "v2/variables/variables.data-00000-of-00001").read_bytes()


def test_a_failed_copy_removes_its_incoming_folder(
    saved_models: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = tmp_path / "store"
    store.mkdir()

    def corrupt(self: LocalStore, path: str) -> str:
        return "0" * 64

    monkeypatch.setattr(LocalStore, "sha256", corrupt)
    with pytest.raises(StoreError, match="sha256 of the copy"):
        publish(store, saved_models / "v1", 1)
    assert os.listdir(store / "scale") == [".publish.lock"]


def test_model_folder_outside_the_store_root_is_refused(saved_models: Path, tmp_path: Path) -> None:
    store = tmp_path / "store"
    store.mkdir()
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    (store / "scale").symlink_to(outside)
    before, before_outside = tree(store), tree(outside)
    with pytest.raises(StoreError, match="outside the model store root"):
        publish(store, saved_models / "v1", 1)
    assert tree(store) == before and tree(outside) == before_outside
    with pytest.raises(StoreError, match="not inside the model store mount /models"):
        modelstore.model_folder("/models/../etc")
    with pytest.raises(StoreError, match="not inside the model store mount"):
        modelstore.model_folder("/data/scale")
    assert modelstore.model_folder("/models/team-a/scale") == "team-a/scale"


def test_missing_store_root_is_an_error(saved_models: Path, tmp_path: Path) -> None:
    with pytest.raises(StoreError, match=r"model store root .* does not exist"):
        publish(tmp_path / "no-such-store", saved_models / "v1", 1)
    assert not (tmp_path / "no-such-store").exists()


def test_one_publisher_per_model(saved_models: Path, tmp_path: Path) -> None:
    import fcntl

    store = tmp_path / "store"
    (store / "scale").mkdir(parents=True)
    fd = os.open(store / "scale" / ".publish.lock", os.O_RDWR | os.O_CREAT)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        with pytest.raises(StoreError, match="another publish"):
            publish(store, saved_models / "v1", 1)
    finally:
        os.close(fd)
    assert modelstore.versions(LocalStore(store), "scale") == ([], [])


# --------------------------------------------------------------------------- over SSH (pyinfra)


def test_publish_via_host_with_pyinfra(saved_models: Path, tmp_path: Path) -> None:
    """The RemoteStore path through a real pyinfra session (@local connector: same commands as SSH)."""
    export = tmp_path / "export"
    export.mkdir()
    with modelstore.open_store(None, "@local", str(export)) as store:
        assert isinstance(store, modelstore.RemoteStore)
        result = modelstore.publish(store, model="scale", folder="scale", version=1, src=saved_models / "v1")
        assert modelstore.versions(store, "scale") == ([1], [])
        with pytest.raises(StoreError, match="already exists"):
            modelstore.publish(store, model="scale", folder="scale", version=1, src=saved_models / "v2")
    assert result.where == "@local"
    assert tree(export / "scale" / "1") == tree(saved_models / "v1")
    assert not (export / "scale" / ".publish.lock.d").exists()


def test_via_host_store_outside_the_export_is_refused(tmp_path: Path) -> None:
    outside = pytest.raises(StoreError, match="outside the region's model store export /export/models")
    with outside, modelstore.open_store("/srv/other", "@local", "/export/models"):
        pass
    with pytest.raises(StoreError, match="needs --store PATH"), modelstore.open_store(None, "@local", None):
        pass


def test_remote_lock_left_by_a_killed_publish_is_taken_over(saved_models: Path, tmp_path: Path) -> None:
    import socket

    export = tmp_path / "export"
    lock = export / "scale" / ".publish.lock.d"
    lock.mkdir(parents=True)
    dead = subprocess.Popen(["true"])
    dead.wait()
    (lock / "owner").write_text(f"{socket.gethostname()} {dead.pid}\n")
    with modelstore.open_store(None, "@local", str(export)) as store:
        modelstore.publish(store, model="scale", folder="scale", version=1, src=saved_models / "v1")
        assert not lock.exists()
        # a live owner (this test process) is respected: nothing is copied
        lock.mkdir()
        (lock / "owner").write_text(f"{socket.gethostname()} {os.getpid()}\n")
        before = tree(export)
        with pytest.raises(StoreError, match=r"another publish of .* is running .*owner"):
            modelstore.publish(store, model="scale", folder="scale", version=2, src=saved_models / "v2")
        assert tree(export) == before
