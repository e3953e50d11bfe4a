"""Deploy steps at fleet scale (issue 19 item 5): ``validate`` cold and incremental, and
``region add``, as the fleet grows to hundreds of regions.

The fleet is built quickly: one ``region add`` through the CLI, its ``region.yaml`` copied to the
other regions (a new name and API endpoint each), one ``render``. Each timed command is one
``kubevc-gen`` process; wall time and the CPU time of the process and its children (kubectl,
checkov) are both recorded, since wall time on a shared machine depends on its load. Ratios are
within this run: the same machine, the same load.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

from bench.results import Row, SuiteResult
from bench.suites.deploy import checkov_path, gen_cmd, region_add_args, timed_cpu

VALIDATE_CACHE = "kubevc-gen/validate-cache"  # in the fleet's .git (kubevc.generator.validate)
SIZES = {"quick": (10, 50), "full": (10, 50, 200)}
VALIDATE_SIZES = {"quick": (50,), "full": (50, 200)}


def endpoint(i: int) -> str:
    return f"https://10.{8 + i // 62500}.{i // 250 % 250}.{i % 250 + 1}:6443"


def grow(fleet: Path, target: int, env: dict[str, str]) -> None:
    """Copy ``regions/r0001/region.yaml`` until the fleet has ``target`` regions, then render."""
    template = (fleet / "regions/r0001/region.yaml").read_text()
    regions = fleet / "regions"
    count = len([p for p in regions.iterdir() if (p / "region.yaml").is_file()])
    for i in range(count + 1, target + 1):
        name = f"r{i:04d}"
        text = re.sub(r"(?m)^name: r0001$", f"name: {name}", template)
        text = text.replace(endpoint(1), endpoint(i))
        (regions / name).mkdir()
        (regions / name / "region.yaml").write_text(text)
    timed_cpu([*gen_cmd(), "render"], fleet, env)


def region_add(fleet: Path, env: dict[str, str], n: int) -> tuple[float, float]:
    """One ``region add`` on a fleet of ``n`` regions (then removed again, untimed)."""
    name = f"x{n:04d}"
    wall_cpu = timed_cpu(region_add_args(name, endpoint(9000 + n)), fleet, env)
    timed_cpu([*gen_cmd(), "region", "remove", name], fleet, env)
    return wall_cpu


def sizes_from_env(
    default: tuple[int, ...], default_validate: tuple[int, ...]
) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """The fleet sizes to build and those to validate at: ``KUBEVC_BENCH_SCALE_SIZES`` (e.g.
    "10,200,500"; validate then at all but the first) and ``KUBEVC_BENCH_SCALE_VALIDATE_SIZES``
    (e.g. "100", or "" for no validate rows: `region add` at 500 without validating 500)."""
    sizes, validate_sizes = default, default_validate
    if os.environ.get("KUBEVC_BENCH_SCALE_SIZES"):
        sizes = tuple(int(x) for x in os.environ["KUBEVC_BENCH_SCALE_SIZES"].split(","))
        validate_sizes = sizes[1:] or sizes
    if "KUBEVC_BENCH_SCALE_VALIDATE_SIZES" in os.environ:
        text = os.environ["KUBEVC_BENCH_SCALE_VALIDATE_SIZES"]
        validate_sizes = tuple(int(x) for x in text.split(",") if x.strip())
    return sizes, validate_sizes


def run(mode: str) -> SuiteResult:
    res = SuiteResult("deploy_scale", "Deploy steps at fleet scale: incremental validate, region add", mode)
    t = res.table(
        "deploy_scale",
        "Wall (CPU) seconds per command as the fleet grows",
        description="One `kubevc-gen` process per command on a fleet repo in a temp folder. CPU is the "
        "process's and its children's (kubectl, checkov). `validate` with checkov; cold = the validate "
        "cache emptied first (the run fills it); warm = the cache of the cold run; one-region change = "
        "one byte appended to one region's values file.",
    )
    checkov = checkov_path()
    env = dict(os.environ)
    env["PATH"] = os.pathsep.join([str(Path(gen_cmd()[0]).parent), env.get("PATH", "")])
    validate = [*gen_cmd(), "validate"]
    if checkov:
        env["KUBEVC_CHECKOV"] = checkov
    else:
        validate.append("--no-checkov")
        res.skip("checkov in validate", "checkov not found (make tools installs it in .tools/checkov)")
    sizes, validate_sizes = sizes_from_env(
        SIZES.get(mode, SIZES["quick"]), VALIDATE_SIZES.get(mode, VALIDATE_SIZES["quick"])
    )
    adds: dict[int, float] = {}
    with tempfile.TemporaryDirectory(prefix="kvb-scale-") as tmpdir:
        try:
            fleet = Path(tmpdir) / "fleet"
            timed_cpu([*gen_cmd(), "init", str(fleet)], Path(tmpdir), env)
            timed_cpu(region_add_args("r0001", endpoint(1)), fleet, env)
            for n in sizes:
                grow(fleet, n, env)
                wall, cpu = region_add(fleet, env, n)
                adds[n] = wall
                first = adds[sizes[0]]
                res.add(
                    Row(
                        t,
                        f"region add, fleet of {n} regions",
                        wall,
                        "s",
                        ratio=wall / first,
                        note=f"CPU {cpu:.1f} s; ratio: to the fleet of {sizes[0]}",
                        extra={"plot": {"series": "region add", "x": n, "xlabel": "regions in fleet"}},
                    )
                )
                if n not in validate_sizes:
                    continue
                # not --no-cache: it neither reads nor writes the cache, so the next run would fill it
                # and be no warmer than this one
                shutil.rmtree(fleet / ".git" / VALIDATE_CACHE, ignore_errors=True)
                cold, cold_cpu = timed_cpu(validate, fleet, env, ok=(0, 1), timeout=3600)
                res.add(
                    Row(
                        t,
                        f"validate cold (empty cache), {n} regions",
                        cold,
                        "s",
                        note=f"CPU {cold_cpu:.1f} s ({cold_cpu / n:.2f} s per region)",
                        extra={"plot": {"series": "validate cold", "x": n, "xlabel": "regions in fleet"}},
                    )
                )
                warm, warm_cpu = timed_cpu(validate, fleet, env, ok=(0, 1), timeout=3600)
                res.add(
                    Row(
                        t,
                        f"validate warm, nothing changed, {n} regions",
                        warm,
                        "s",
                        ratio=warm / cold,
                        note=f"CPU {warm_cpu:.1f} s; ratio: to cold",
                    )
                )
                values = fleet / "apps/r0002/kubevc-serving-values.yaml"
                values.write_bytes(values.read_bytes() + b"#")
                one, one_cpu = timed_cpu(validate, fleet, env, ok=(0, 1), timeout=3600)
                res.add(
                    Row(
                        t,
                        f"validate after a one-region change, {n} regions",
                        one,
                        "s",
                        ratio=one / cold,
                        note=f"CPU {one_cpu:.1f} s; ratio: to cold",
                        extra={
                            "plot": {
                                "series": "validate, one region changed",
                                "x": n,
                                "xlabel": "regions in fleet",
                            }
                        },
                    )
                )
                values.write_bytes(values.read_bytes()[:-1])
                timed_cpu(
                    validate, fleet, env, ok=(0, 1), timeout=3600
                )  # the cache back in step with the tree
        except (RuntimeError, subprocess.TimeoutExpired) as exc:
            res.skip("the rest of the fleet-scale steps", f"a kubevc-gen command failed: {exc}"[-1500:])
    return res
