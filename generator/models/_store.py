"""The model store: numbered SavedModel versions on the file server every serving pod mounts.

Layout (what TF Serving polls)::

    <store>/<model>/<version>/saved_model.pb
    <store>/<model>/<version>/variables/variables.{index,data-*}

A publish never exposes a half-copied version: the files are copied into
``<store>/<model>/.incoming-<version>-<random>/``, their sha256 sums are checked against the
source, and the folder is then renamed to ``<store>/<model>/<version>/`` in one ``rename(2)``
(atomic within one file system; TF Serving ignores names that are not numbers). An interrupted
publish (Ctrl-C, a killed process, a lost SSH link) leaves only an ``.incoming-*`` folder, which
the next publish of that model removes. Existing versions are never overwritten.

Every check happens before the first byte is copied: the source is a SavedModel
(``saved_model.pb`` + ``variables/``, and the serving signature is in the graph), the model's
folder stays inside the store root (symlinks resolved), the version does not exist yet.

The same algorithm runs against a local folder (:class:`LocalStore`, e.g. the NFS export mounted
on the operator's machine) or on the NFS server itself over SSH (:class:`RemoteStore`, pyinfra
through :mod:`kubevc.nodeprep.runner`).
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import os
import posixpath
import secrets
import shlex
import shutil
import socket
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from ..errors import StoreError

INCOMING_PREFIX = ".incoming-"
LOCK_NAME = ".publish.lock"
# Where the serving chart mounts the store (charts/kubevc-serving values modelStore.mountPath).
MOUNT_PATH = "/models"
_CHUNK = 1 << 20

Progress = Callable[[str], None]


# --------------------------------------------------------------------------- source checks


def check_saved_model(src: Path, signature: str | None = "serving_default") -> None:
    """Raise :class:`StoreError` unless ``src`` is a TensorFlow SavedModel folder.

    A SavedModel has ``saved_model.pb`` (a ``SavedModel`` protobuf: field 1, the schema version,
    comes first) and a ``variables/`` folder; when ``signature`` is given its name must occur in
    the graph (a model exported without it cannot answer ``model_spec.signature_name``).
    """
    if not src.is_dir():
        raise StoreError(f"{src} is not a folder (expected a SavedModel folder)")
    pb = src / "saved_model.pb"
    problems: list[str] = []
    if not pb.is_file():
        problems.append(f"{src} is not a SavedModel: saved_model.pb is missing")
    if not (src / "variables").is_dir():
        problems.append(f"{src} is not a SavedModel: the variables/ folder is missing")
    if problems:
        raise StoreError(problems)
    data = pb.read_bytes()
    if len(data) < 2 or data[0] != 0x08:
        raise StoreError(f"{pb} is not a SavedModel protobuf (it does not start with the schema version)")
    if signature and signature.encode() not in data:
        raise StoreError(f"{pb}: signature {signature!r} not found in the SavedModel")
    for path in src.rglob("*"):
        if path.is_symlink():
            raise StoreError(f"{path}: symbolic links are not published (copy the real file)")
        if path.name.startswith(INCOMING_PREFIX):
            raise StoreError(f"{path}: names starting with {INCOMING_PREFIX} are reserved")


@dataclass(frozen=True)
class ManifestEntry:
    path: str  # POSIX path inside the version folder
    size: int
    sha256: str


@dataclass(frozen=True)
class Manifest:
    """sha256 and size of every file of one version, sorted by path."""

    model: str
    version: int
    entries: tuple[ManifestEntry, ...]
    folders: tuple[str, ...] = ()  # every sub-folder, empty ones too (e.g. assets/)

    @property
    def total_bytes(self) -> int:
        return sum(e.size for e in self.entries)

    @property
    def digest(self) -> str:
        """sha256 over the sorted ``sha256  path`` lines: one value that names the whole version."""
        text = "".join(f"{e.sha256}  {e.path}\n" for e in self.entries)
        return hashlib.sha256(text.encode()).hexdigest()

    def text(self) -> str:
        """``sha256sum``-compatible lines (``sha256sum -c`` in the version folder checks them)."""
        return "".join(f"{e.sha256}  {e.path}\n" for e in self.entries)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(_CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def build_manifest(
    model: str, version: int, src: Path, *, subfolder: str = "", exclude: frozenset[str] = frozenset()
) -> Manifest:
    """The manifest of ``src`` as it lands in the version folder: under ``subfolder`` when given
    (Triton's ``model.savedmodel/``), without the top-level names in ``exclude``."""
    prefix = f"{subfolder}/" if subfolder else ""
    kept = [p for p in sorted(src.rglob("*")) if p.relative_to(src).parts[0] not in exclude]
    entries = [
        ManifestEntry(prefix + p.relative_to(src).as_posix(), p.stat().st_size, _sha256(p))
        for p in kept
        if p.is_file()
    ]
    folders = ((subfolder,) if subfolder else ()) + tuple(
        prefix + p.relative_to(src).as_posix() for p in kept if p.is_dir()
    )
    return Manifest(model, version, tuple(entries), folders)


def model_folder(base_path: str, mount_path: str = MOUNT_PATH) -> str:
    """The model's folder relative to the store root: ``/models/yolov5`` -> ``yolov5``."""
    norm = posixpath.normpath(base_path)
    mount = posixpath.normpath(mount_path)
    if not norm.startswith(mount + "/") or ".." in base_path.split("/"):
        raise StoreError(
            f"basePath {base_path!r} is not inside the model store mount {mount_path} "
            f"(the serving pods see the store at {mount_path}/<model>)"
        )
    return norm[len(mount) + 1 :]


# --------------------------------------------------------------------------- store backends


class Store(Protocol):
    """The file operations a publish needs; paths are absolute POSIX paths on the store host."""

    root: str
    where: str  # for messages: "local" or the host name

    def realpath(self, path: str) -> str: ...
    def listdir(self, path: str) -> list[str] | None: ...  # None: the folder does not exist
    def makedirs(self, path: str) -> None: ...
    def rmtree(self, path: str) -> None: ...
    def upload(self, local: Path, remote: str) -> None: ...
    def sha256(self, path: str) -> str: ...
    def rename_new(self, src: str, dst: str) -> None: ...  # fails when dst exists
    def replace(self, src: str, dst: str) -> None: ...  # atomically replaces the file dst
    def lock(self, folder: str) -> contextlib.AbstractContextManager[None]: ...
    def read_text(self, path: str) -> str | None: ...  # None: the file does not exist


class LocalStore:
    """A store reachable as a local folder (an NFS mount, or the export on the server itself)."""

    where = "local"

    def __init__(self, root: Path | str) -> None:
        self.root = os.fspath(root)

    def realpath(self, path: str) -> str:
        return os.path.realpath(path)

    def listdir(self, path: str) -> list[str] | None:
        try:
            return sorted(os.listdir(path))
        except FileNotFoundError:
            return None
        except NotADirectoryError:
            raise StoreError(f"{path} is not a folder") from None

    def makedirs(self, path: str) -> None:
        os.makedirs(path, exist_ok=True)

    def rmtree(self, path: str) -> None:
        shutil.rmtree(path)

    def upload(self, local: Path, remote: str) -> None:
        os.makedirs(os.path.dirname(remote), exist_ok=True)
        with local.open("rb") as src, open(remote, "xb") as dst:
            shutil.copyfileobj(src, dst, _CHUNK)
            dst.flush()
            os.fsync(dst.fileno())

    def sha256(self, path: str) -> str:
        return _sha256(Path(path))

    def rename_new(self, src: str, dst: str) -> None:
        # rename(2) replaces an *empty* folder silently, so refuse an existing dst first
        if os.path.lexists(dst):
            raise FileExistsError(errno.EEXIST, "exists", dst)
        os.rename(src, dst)
        _fsync_dir(os.path.dirname(dst))

    def replace(self, src: str, dst: str) -> None:
        os.replace(src, dst)
        _fsync_dir(os.path.dirname(dst))

    def read_text(self, path: str) -> str | None:
        try:
            with open(path, encoding="utf-8") as fh:
                return fh.read()
        except FileNotFoundError:
            return None
        except (IsADirectoryError, UnicodeDecodeError) as exc:
            raise StoreError(f"{path} is not a text file: {exc}") from None

    @contextlib.contextmanager
    def lock(self, folder: str) -> Iterator[None]:
        """One publisher per model at a time (flock; works on local disks and NFSv4)."""
        fd = os.open(os.path.join(folder, LOCK_NAME), os.O_RDWR | os.O_CREAT, 0o644)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise StoreError(f"another publish of {folder} is running (lock {LOCK_NAME})") from None
            yield
        finally:
            os.close(fd)


class RemoteStore:
    """A store on another host (the NFS server), driven over SSH by pyinfra.

    ``host`` is a connected pyinfra ``Host`` (from :func:`kubevc.nodeprep.runner.pyinfra_session`).
    Only POSIX ``sh`` tools run there: ``realpath``, ``ls``, ``mkdir``, ``rm``, ``sha256sum``,
    ``mv``, ``flock`` (util-linux) when present.
    """

    def __init__(self, host: Any, root: str) -> None:
        self.host = host
        self.root = root
        self.where = str(host.name)
        self._sudo = bool(getattr(host.data, "_sudo", False))

    def _sh(self, script: str, what: str) -> str:
        # pyinfra is heavy to import and only needed over SSH (--via-host): imported on first use
        from pyinfra.api.command import StringCommand

        ok, out = self.host.run_shell_command(
            StringCommand("sh", "-c", shlex.quote(script)), _sudo=self._sudo
        )
        if not ok:
            detail = (out.stderr or out.stdout).strip()
            raise StoreError(f"{self.where}: {what} failed: {detail or 'no output'}")
        return str(out.stdout)

    def realpath(self, path: str) -> str:
        return self._sh(f"realpath -m -- {shlex.quote(path)}", f"realpath {path}").strip()

    def listdir(self, path: str) -> list[str] | None:
        q = shlex.quote(path)
        out = self._sh(f"if [ -d {q} ]; then echo D; ls -A1 -- {q}; else echo N; fi", f"ls {path}")
        lines = out.splitlines()
        if not lines or lines[0] != "D":
            return None
        return sorted(lines[1:])

    def makedirs(self, path: str) -> None:
        self._sh(f"mkdir -p -- {shlex.quote(path)}", f"mkdir {path}")

    def rmtree(self, path: str) -> None:
        self._sh(f"rm -rf -- {shlex.quote(path)}", f"rm {path}")

    def upload(self, local: Path, remote: str) -> None:
        self.makedirs(posixpath.dirname(remote))
        if not self.host.put_file(str(local), remote, _sudo=self._sudo):
            raise StoreError(f"{self.where}: upload of {local} to {remote} failed")

    def sha256(self, path: str) -> str:
        out = self._sh(f"sha256sum -- {shlex.quote(path)}", f"sha256sum {path}")
        return out.split()[0] if out.split() else ""

    def rename_new(self, src: str, dst: str) -> None:
        s, d = shlex.quote(src), shlex.quote(dst)
        out = self._sh(f"if [ -e {d} ]; then echo EXISTS; else mv -T -- {s} {d} && sync; fi", "rename")
        if out.strip() == "EXISTS":
            raise FileExistsError(errno.EEXIST, "exists", dst)

    def replace(self, src: str, dst: str) -> None:
        s, d = shlex.quote(src), shlex.quote(dst)
        self._sh(f"mv -f -T -- {s} {d} && sync", "replace")

    def read_text(self, path: str) -> str | None:
        q = shlex.quote(path)
        out = self._sh(f"if [ -f {q} ]; then echo F; cat -- {q}; else echo N; fi", f"read {path}")
        head, _, text = out.partition("\n")
        if head.strip() != "F":
            return None
        # the shell output loses the file's last newline: generated files always end with one
        return text.rstrip("\n") + "\n"

    @contextlib.contextmanager
    def lock(self, folder: str) -> Iterator[None]:
        # An SSH session cannot hold an flock across commands: a lock folder (mkdir is atomic)
        # holding "<operator host> <pid>", removed at the end. A lock whose owner is a dead
        # process on this machine (a killed publish) is stale and taken over; any other lock
        # names its owner in the error.
        lock = posixpath.join(folder, LOCK_NAME + ".d")
        q = shlex.quote(lock)
        me = f"{socket.gethostname()} {os.getpid()}"
        script = (
            f"if mkdir -- {q} 2>/dev/null; then printf '%s\\n' {shlex.quote(me)} > {q}/owner; echo OK; "
            f"else echo BUSY; cat -- {q}/owner 2>/dev/null; fi"
        )
        for attempt in (1, 2):
            lines = self._sh(script, "lock").splitlines()
            if lines and lines[0] == "OK":
                break
            owner = lines[1].strip() if len(lines) > 1 else "unknown"
            if attempt == 1 and _stale_owner(owner):
                self.rmtree(lock)
                continue
            raise StoreError(
                f"{self.where}: another publish of {folder} is running (lock {lock}, owner {owner}); "
                "remove the lock folder if no publish is running"
            )
        try:
            yield
        finally:
            self._sh(f"rm -rf -- {q}", "unlock")


def _fsync_dir(path: str) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _stale_owner(owner: str) -> bool:
    """True when ``owner`` ("host pid") is a process of this machine that no longer runs."""
    host, _, pid = owner.partition(" ")
    if host != socket.gethostname() or not pid.isdigit():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


# --------------------------------------------------------------------------- publish / list


@dataclass
class PublishResult:
    manifest: Manifest
    path: str
    where: str
    removed_incoming: list[str] = field(default_factory=list)


def _contained(store: Store, path: str) -> str:
    """``path`` resolved on the store host; a :class:`StoreError` unless it is inside the root."""
    root = store.realpath(store.root)
    real = store.realpath(path)
    if real != root and not real.startswith(root.rstrip("/") + "/"):
        raise StoreError(
            f"{path} resolves to {real}, outside the model store root {root} (symbolic link?); nothing copied"
        )
    return real


def versions(store: Store, folder: str) -> tuple[list[int], list[str]]:
    """Published versions (numeric folder names) and leftover ``.incoming-*`` folders."""
    names = store.listdir(posixpath.join(store.root, folder)) or []
    found = sorted(int(n) for n in names if n.isdigit() and not n.startswith("0"))
    incoming = [n for n in names if n.startswith(INCOMING_PREFIX)]
    return found, incoming


def _rename(store: Store, src: str, dst: str) -> None:
    """The commit point of a publish (a separate function so tests can interrupt right before it)."""
    store.rename_new(src, dst)


def publish(
    store: Store,
    *,
    model: str,
    folder: str,
    version: int,
    src: Path,
    signature: str | None = "serving_default",
    progress: Progress = lambda _msg: None,
    dry_run: bool = False,
    source_check: Callable[[Path], None] | None = None,
    subfolder: str = "",
    exclude: frozenset[str] = frozenset(),
    check_folder: Callable[[Store, str], None] | None = None,
) -> PublishResult:
    """Publish SavedModel ``src`` as ``<store>/<folder>/<version>/`` (see the module docstring).

    Other runtimes' layouts (:mod:`._layouts`) pass ``source_check`` (instead of the SavedModel
    check), ``subfolder``/``exclude`` (where the files land in the version folder) and
    ``check_folder`` (run on the model folder before anything is written).
    """
    if version < 1:
        raise StoreError(f"--version {version}: versions are positive integers (TF Serving folder names)")
    if source_check is None:
        check_saved_model(src, signature)
    else:
        source_check(src)
    manifest = build_manifest(model, version, src, subfolder=subfolder, exclude=exclude)
    if store.listdir(store.root) is None:
        raise StoreError(f"model store root {store.root} does not exist on {store.where}")
    model_dir = posixpath.join(store.root, folder)
    real_dir = _contained(store, model_dir)
    final = posixpath.join(real_dir, str(version))
    if check_folder is not None:
        check_folder(store, real_dir)
    published, stale = versions(store, folder)
    if version in published or store.listdir(final) is not None:
        raise StoreError(
            f"version {version} of {model} already exists in the store ({final}); versions are never "
            f"overwritten: publish as --version {max(published, default=version) + 1}"
        )
    if dry_run:
        progress(f"dry run: would copy {len(manifest.entries)} file(s) to {final} on {store.where}")
        return PublishResult(manifest, final, store.where, stale)
    store.makedirs(real_dir)
    _contained(store, real_dir)  # again, now that it exists (a racing symlink swap)
    with store.lock(real_dir):
        published, stale = versions(store, folder)
        if version in published:
            raise StoreError(f"version {version} of {model} was published meanwhile ({final})")
        for name in stale:
            progress(f"removing {name} (left by an interrupted publish)")
            store.rmtree(posixpath.join(real_dir, name))
        incoming = posixpath.join(real_dir, f"{INCOMING_PREFIX}{version}-{secrets.token_hex(4)}")
        store.makedirs(incoming)
        try:
            for sub in manifest.folders:
                store.makedirs(posixpath.join(incoming, sub))
            for i, entry in enumerate(manifest.entries, 1):
                progress(f"copy {i}/{len(manifest.entries)} {entry.path} ({entry.size} bytes)")
                local = entry.path.removeprefix(f"{subfolder}/") if subfolder else entry.path
                store.upload(src / local, posixpath.join(incoming, entry.path))
            progress("verify sha256 of the copies")
            for entry in manifest.entries:
                got = store.sha256(posixpath.join(incoming, entry.path))
                if got != entry.sha256:
                    raise StoreError(f"{entry.path}: sha256 of the copy is {got}, expected {entry.sha256}")
            progress(f"rename {posixpath.basename(incoming)} -> {version}")
            try:
                _rename(store, incoming, final)
            except FileExistsError:
                raise StoreError(f"version {version} of {model} was published meanwhile ({final})") from None
        except Exception:
            # an ordinary failure cleans up; an interrupt leaves .incoming-* for the next publish
            with contextlib.suppress(Exception):
                store.rmtree(incoming)
            raise
    return PublishResult(manifest, final, store.where, stale)


@contextlib.contextmanager
def open_store(
    store: str | None, via_host: str | None, export_root: str | None, host_data: dict[str, Any] | None = None
) -> Iterator[Store]:
    """The store to publish to: ``store`` locally, or ``via_host`` over SSH.

    Over SSH the store root is ``store`` if given (it must lie inside ``export_root``, the
    region's NFS export: the configured root) and ``export_root`` otherwise.
    """
    if via_host is None:
        if not store:
            raise StoreError(
                "where is the model store? pass --store PATH (a mounted export) or --via-host HOST"
            )
        yield LocalStore(os.path.abspath(store))
        return
    if export_root is None and not store:
        raise StoreError(
            "--via-host needs --store PATH on that host (the region has no NFS export path to default to)"
        )
    root = posixpath.normpath(store or export_root or "/")
    if not root.startswith("/"):
        raise StoreError(f"--store {store!r}: an absolute path on {via_host} is needed with --via-host")
    if export_root is not None:
        export = posixpath.normpath(export_root)
        if root != export and not root.startswith(export.rstrip("/") + "/"):
            raise StoreError(
                f"--store {root} is outside the region's model store export {export} "
                "(storage.nfs.path in region.yaml); nothing copied"
            )
    # nodeprep's runner imports pyinfra (slow): only a --via-host store needs it
    from kubevc.nodeprep.runner import Target, pyinfra_session

    data = host_data or {}
    target = Target(
        name=via_host,
        ssh_user=data.get("ssh_user"),
        ssh_port=data.get("ssh_port"),
        ssh_key=data.get("ssh_key"),
    )
    with pyinfra_session([target]) as state:
        host = next(iter(state.inventory))
        yield RemoteStore(host, root)
