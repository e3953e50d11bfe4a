"""Deploy steps that run here (paper Table 3's parts without real nodes): wall time of
``kubevc-gen region add``, ``render`` and ``validate`` as the fleet grows to 1, 10 (and 100) regions,
and of ``node prepare`` (Table 3's env_setup) in a chroot, first and second run."""

from __future__ import annotations

import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench import paper
from bench.results import REPO_ROOT, Row, SuiteResult, Target

PREPARE_WHAT = "node prepare in the chroot (first and second run)"


def gen_cmd() -> list[str]:
    script = Path(sys.executable).parent / "kubevc-gen"
    if script.exists():
        return [str(script)]
    return [sys.executable, "-m", "kubevc.generator.cli"]


def checkov_path() -> str | None:
    for candidate in (
        os.environ.get("KUBEVC_CHECKOV"),
        str(REPO_ROOT / ".tools/checkov/bin/checkov"),
        shutil.which("checkov"),
    ):
        if candidate and Path(candidate).exists():
            return candidate
    return None


def timed_cpu(
    args: list[str], cwd: Path, env: dict[str, str], ok: tuple[int, ...] = (0,), timeout: float = 900
) -> tuple[float, float]:
    """Wall and CPU seconds (the command's process and its children) of one command; RuntimeError
    with the end of its output when it exits with a code not in ``ok``."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    proc = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode not in ok:
        raise RuntimeError(
            f"{' '.join(args[:4])} ... failed ({proc.returncode}): {proc.stdout[-800:]} {proc.stderr[-800:]}"
        )
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def timed(args: list[str], cwd: Path, env: dict[str, str]) -> float:
    """Wall seconds of one command (see :func:`timed_cpu`)."""
    return timed_cpu(args, cwd, env)[0]


def region_add_args(name: str, api_endpoint: str, *options: str) -> list[str]:
    """``kubevc-gen region add NAME`` with NFS storage (the same server and path for every region)."""
    return [
        *gen_cmd(),
        "region",
        "add",
        name,
        "--api-endpoint",
        api_endpoint,
        *options,
        "--nfs-server",
        "10.8.0.10",
        "--nfs-path",
        "/export/models",
    ]


def run(mode: str) -> SuiteResult:
    sizes = (1, 10) if mode == "quick" else (1, 10, 100)
    res = SuiteResult("deploy", "Deploy steps: kubevc-gen wall time as the fleet grows", mode)
    t = res.table(
        "deploy",
        "Wall time per command, seconds",
        paper_label="paper (Table 3, k3s)",
        description="Each command is one `kubevc-gen` process on a fleet repo in a temp folder "
        "(git commits included). `render` on an unchanged spec re-renders every region "
        "and finds nothing to change.",
    )
    try:
        subprocess.run([*gen_cmd(), "--version"], capture_output=True, check=True, timeout=60)
    except (OSError, subprocess.CalledProcessError) as exc:
        res.skip("kubevc-gen", f"not runnable: {exc}")
        return res
    checkov = checkov_path()
    env = dict(os.environ)
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    validate = [*gen_cmd(), "validate"]
    if checkov:
        env["KUBEVC_CHECKOV"] = checkov
    else:
        validate.append("--no-checkov")
        res.skip("checkov in validate", "checkov not found (make tools installs it in .tools/checkov)")
    with tempfile.TemporaryDirectory(prefix="kvb-deploy-") as tmpdir:
        try:
            fleet = Path(tmpdir) / "fleet"
            t_init = timed([*gen_cmd(), "init", str(fleet)], Path(tmpdir), env)
            res.add(Row(t, "init (scaffold + first commit)", t_init, "s"))
            adds: list[float] = []
            for n in sizes:
                while len(adds) < n:
                    i = len(adds) + 1
                    endpoint = f"https://10.8.{i // 250}.{i % 250 + 1}:6443"
                    adds.append(timed(region_add_args(f"r{i:03d}", endpoint, "--arch", "arm64"), fleet, env))
                recent = adds[-min(len(adds), 10) :]
                res.add(
                    Row(
                        t,
                        f"region add, mean of adds up to {n} regions",
                        sum(recent) / len(recent),
                        "s",
                        extra={
                            "plot": {
                                "series": "region add (one region)",
                                "x": n,
                                "xlabel": "regions in fleet",
                            }
                        },
                    )
                )
                t_render = timed([*gen_cmd(), "render"], fleet, env)
                t_validate = timed(validate, fleet, env)
                res.add(
                    Row(
                        t,
                        f"render, {n} regions",
                        t_render,
                        "s",
                        extra={"plot": {"series": "render", "x": n, "xlabel": "regions in fleet"}},
                    )
                )
                res.add(
                    Row(
                        t,
                        f"validate, {n} regions" + ("" if checkov else " (no checkov)"),
                        t_validate,
                        "s",
                        extra={"plot": {"series": "validate", "x": n, "xlabel": "regions in fleet"}},
                    )
                )
                if checkov:
                    t_plain = timed([*gen_cmd(), "validate", "--no-checkov"], fleet, env)
                    res.add(
                        Row(
                            t,
                            f"validate --no-checkov, {n} regions",
                            t_plain,
                            "s",
                            note=f"checkov's share of validate: {100 * (1 - t_plain / t_validate):.0f}%",
                            extra={
                                "plot": {
                                    "series": "validate --no-checkov",
                                    "x": n,
                                    "xlabel": "regions in fleet",
                                }
                            },
                        )
                    )
                res.add(
                    Row(
                        t,
                        f"render + validate, {n} regions",
                        t_render + t_validate,
                        "s",
                        target=Target("<", 60.0, "render+validate of 100 regions < 60 s")
                        if n == 100
                        else None,
                        extra={"plot": {"series": "render + validate", "x": n, "xlabel": "regions in fleet"}},
                    )
                )
        except (RuntimeError, subprocess.TimeoutExpired) as exc:
            res.skip("the rest of the deploy steps", f"a kubevc-gen command failed: {exc}"[-1500:])
    node_prepare(res, mode)
    if 100 not in sizes:
        res.notes.append(
            "The 100-region row and its target (render + validate < 60 s) run in `make bench-full`."
        )
    k3s_total = paper.deploy_seconds("total", "k3s")
    if k3s_total is not None:
        kubeadm_total = paper.deploy_seconds("total", "kubeadm")
        res.notes.append(
            f"The paper's Table 3 times real Raspberry Pi clusters end to end (k3s total {k3s_total:g} s, "
            f"kubeadm {kubeadm_total:g} s): environment setup, cluster init, join, serving, monitoring. "
            "Cluster init, join, serving and monitoring need real nodes and are not timed here; the first "
            "table holds the fleet-repo steps an operator runs before Flux applies anything, the second "
            "the environment setup (`node prepare`) run in a chroot instead of on a Pi."
        )
    return res


def node_prepare(res: SuiteResult, mode: str) -> None:
    """Time ``node prepare`` (kubeadm profile) twice on a restored Debian root, beside env_setup."""
    try:
        from kubevc.nodeprep import testing
        from kubevc.nodeprep.prepare import PrepareOptions, prepare_nodes
    except ImportError as exc:
        res.skip(PREPARE_WHAT, f"kubevc.nodeprep is not importable ({exc}; install the gen extra)")
        return
    reason = testing.why_not_available()
    if reason is None and mode == "quick" and not testing.is_cached():
        reason = (
            "the cached Debian root is not built yet and building it runs "
            "debootstrap, too long for --quick; `make bench-full` (or the nodeprep chroot tests) "
            "builds it once"
        )
    reason = reason or testing.mirror_unreachable()
    if reason is None:
        try:
            tarball = testing.base_tarball()
        except RuntimeError as exc:  # debootstrap failed: the mirror is the only network used
            reason = str(exc)
    if reason is not None:
        res.skip(PREPARE_WHAT, reason)
        return
    kubeadm = paper.deploy_seconds("env_setup", "kubeadm")
    k3s = paper.deploy_seconds("env_setup", "k3s")
    t = res.table(
        "env_setup",
        "node prepare in a chroot (Table 3 env_setup), seconds",
        paper_label="paper (Table 3 env_setup, kubeadm)",
        description="`kubevc.nodeprep.prepare_nodes` (what `kubevc-gen node prepare` runs), kubeadm profile "
        "(packages, iscsid, kernel modules, sysctls, swap off, Pi cgroups, containerd with SystemdCgroup), "
        "through pyinfra's @chroot connector on a debootstrap'd Debian bookworm minbase root restored from "
        "the cache and made to look like a Raspberry Pi OS image (cmdline.txt, swap, zram); packages "
        "install with apt from this machine's Debian mirror. The root is offline, so the run has no "
        "modprobe, `sysctl -w` or reboot, which a real node's setup has; the paper timed a Raspberry Pi 4B"
        + (f" (its k3s env_setup: {k3s:g} s)." if k3s is not None else "."),
    )
    with tempfile.TemporaryDirectory(prefix="kvb-prepare-") as tmpdir:
        t0 = time.perf_counter()
        root = testing.restore(tarball, Path(tmpdir) / "root")
        t_restore = time.perf_counter() - t0
        testing.make_fake_pi(root)
        target = testing.chroot_target(root)
        runs = []
        for _ in range(2):
            t0 = time.perf_counter()
            report = prepare_nodes([target], PrepareOptions(distribution="kubeadm"))
            runs.append((time.perf_counter() - t0, report))
            if not report.ok:
                res.skip(
                    PREPARE_WHAT,
                    f"node prepare FAILED on run {len(runs)} (hosts {report.failed_hosts}): "
                    + " | ".join(report.messages)[-1200:],
                )
                return
    res.add(Row(t, "restore the cached Debian root (tar + zstd)", t_restore, "s"))
    for i, (seconds, report) in enumerate(runs):
        changed = [o.name for o in report.changed()]
        total = len(report.outcomes)
        if i == 0:
            label, paper_value = "node prepare, first run (installs packages)", kubeadm
            note = f"changed {len(changed)} of {total} operations"
        else:
            label, paper_value = "node prepare, second run (same root)", None
            note = (
                f"changed {len(changed)} of {total} operations"
                if not changed
                else f"NOT idempotent: changed {len(changed)} of {total} operations: {', '.join(changed)}"
            )
        res.add(
            Row(
                t,
                label,
                seconds,
                "s",
                paper=paper_value,
                note=note,
                extra={"changed": len(changed), "operations": total, "changed_operations": changed},
            )
        )
