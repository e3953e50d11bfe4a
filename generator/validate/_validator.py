"""``kubevc-gen validate``: check the fleet tree the way the clusters will see it.

Per region, following the chain Flux follows (``clusters/<r>`` -> every Kustomization's path):

* ``kustomize``: ``kubectl kustomize`` builds ``clusters/<r>`` and every path its Kustomizations
  point at (``infrastructure/...``, ``apps/<r>``);
* ``flux``: every Flux object parsed with the project's typed models (current API versions only,
  unknown fields are errors), ``dependsOn`` targets exist, Kustomization paths and chart paths
  exist, ``valuesFrom`` ConfigMaps (and keys) exist, intervals/timeouts/remediation set, external
  chart versions pinned;
* ``helm``: every HelmRelease whose chart comes from the fleet repo rendered through the Helm SDK
  with its merged values (chart defaults < ``valuesFrom`` in order < ``spec.values``);
* ``schema``: ``kubernetes-validate`` (strict) on every core object built or rendered;
* ``checkov``: checkov over everything rendered, one run per :data:`CHECKOV_BATCH` regions
  (:data:`CHECKOV_SKIPS` lists the checks kubevc deliberately does not follow, with the reason);
* ``secrets``: no plain-text Secret anywhere in the tree (SOPS-encrypted ones are fine).
"""

from __future__ import annotations

import json
import re
import subprocess
import tempfile
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path, PurePosixPath
from typing import Any

import yaml

from ..errors import SpecError
from ..repo import BOOTSTRAP_COMPONENTS, Fleet, flux_system_folder, hub_notes, load_hub
from ..spec import HUB_FILE, HUB_NAME, deep_merge, flux
from ._bootstrap import check_bootstrap_sync
from ._cache import RegionResult, ValidateCache, digest_tree, owner_of, region_keys, tools_digest
from ._checkov import CHECKOV_SKIPS, CheckovWorkers, run_checkov
from ._docs import load_docs, obj_name, safe_load
from ._placement import check_placement
from ._region_config import check_region_config
from ._report import SHARED, Finding, Progress, Report
from ._schema import KUBE_VERSION, Schemas
from ._secrets import check_region_secrets, check_secrets
from ._tools import CHECKOV_MISSING, checkov_path, find_checkov, kubectl_path
from ._urls import check_credential_urls

# Regions per checkov run. checkov's Kubernetes graph builder collects edges per resource *name*
# (``Kind.namespace.name``), and every region has the same names, so one run over N regions builds
# O(N^2) edges (100 regions: 17 million, over a minute) and links resources of different clusters.
# Runs of at most this many regions (two at a time, while the next regions are validated) check
# the same files with the same policy.
CHECKOV_BATCH = 10
WORKERS = 2  # kubectl kustomize subprocesses and checkov runs at a time
SEMVER = re.compile(r"^v?\d+\.\d+\.\d+(-[0-9A-Za-z.-]+)?(\+[0-9A-Za-z.-]+)?$")


class _SourceIndex:
    """Maps (kind, namespace, name) to the fleet file that declares it (for findings).

    Only the shared files and the files of the region being walked (:attr:`region`) are candidates,
    read when first needed: a region's findings never name another region's file, and a validate
    whose regions come from the cache reads no region's files at all.
    """

    def __init__(self, root: Path, owners: frozenset[str]) -> None:
        self.root = root
        self.owners = owners
        self.region = ""
        self._by_owner: dict[str | None, dict[tuple[str, str, str], list[tuple[int, str]]]] | None = None
        self._paths: dict[str | None, list[tuple[int, str]]] = {}

    def _scan(self) -> dict[str | None, list[tuple[int, str]]]:
        if not self._paths:
            for order, top in enumerate(("clusters", "infrastructure", "apps")):
                base = self.root / top
                if not base.is_dir():
                    continue
                for path in sorted(base.rglob("*.yaml")):
                    rel = path.relative_to(self.root).as_posix()
                    self._paths.setdefault(owner_of(rel, self.owners), []).append((order, rel))
        return self._paths

    def _index(self, owner: str | None) -> dict[tuple[str, str, str], list[tuple[int, str]]]:
        if self._by_owner is None:
            self._by_owner = {}
        found = self._by_owner.get(owner)
        if found is None:
            found = {}
            for order, rel in self._scan().get(owner, []):
                try:
                    docs = load_docs((self.root / rel).read_text(encoding="utf-8"))
                except (yaml.YAMLError, UnicodeDecodeError):
                    continue
                for d in docs:
                    meta = d.get("metadata") or {}
                    key = (str(d.get("kind")), str(meta.get("namespace", "")), str(meta.get("name")))
                    found.setdefault(key, []).append((order, rel))
            self._by_owner[owner] = found
        return found

    def file_of(self, obj: dict[str, Any], default: str) -> str:
        meta = obj.get("metadata") or {}
        key = (str(obj.get("kind")), str(meta.get("namespace", "")), str(meta.get("name")))
        candidates = [
            rel
            for _order, rel in sorted(
                self._index(None).get(key, [])
                + (self._index(self.region).get(key, []) if self.region else [])
            )
        ]
        for rel in candidates:  # prefer the file inside the folder that was built
            if rel.startswith(default.rstrip("/") + "/"):
                return rel
        return candidates[0] if candidates else default


class _Validator:
    def __init__(
        self, fleet: Fleet, report: Report, progress: Progress, owners: frozenset[str] | None = None
    ) -> None:
        self.fleet = fleet
        self.root = fleet.root
        self.report = report
        self.progress = progress
        self.kubectl = kubectl_path()
        self.builds: dict[str, list[dict[str, Any]] | None] = {}
        self.sources = _SourceIndex(
            fleet.root, owners if owners is not None else frozenset([*fleet.region_names(), HUB_NAME])
        )
        self.build_errors: dict[str, str] = {}  # folder -> why its kustomize build failed
        self.rendered: dict[str, dict[str, str]] = {}  # region -> {name: manifest text}
        self.schema_version = KUBE_VERSION
        self._schemas: Schemas | None = None
        self._charts: dict[str, Any] = {}  # chart path -> helm_python.Chart (or the load error)
        self._pool = ThreadPoolExecutor(max_workers=WORKERS, thread_name_prefix="kubevc-validate")
        self._scan_pool = ThreadPoolExecutor(max_workers=WORKERS, thread_name_prefix="kubevc-checkov")
        self._prefetched: dict[str, Future[subprocess.CompletedProcess[str]]] = {}
        self._checkov_runs: list[tuple[list[str], Future[subprocess.CompletedProcess[str]]]] = []

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)
        self._scan_pool.shutdown(wait=True, cancel_futures=True)

    def walk(self, name: str) -> RegionResult:
        """:meth:`region` with its findings, counts and notes apart (what the cache keeps)."""
        shared, own = self.report, Report(regions=[name])
        self.report = own
        try:
            self.region(name)
        finally:
            self.report = shared
        return RegionResult(
            findings=own.findings,
            checked={check: n for (_region, check), n in own.checked.items()},
            notes=own.notes,
        )

    def scan_region(self, workers: CheckovWorkers, name: str, result: RegionResult) -> Future[RegionResult]:
        """checkov over ``name``'s rendered manifests in a worker; ``result`` gets its findings."""
        files = self.rendered.pop(name, {})
        self.progress(f"{name}: checkov on {len(files)} rendered manifest file(s)")
        return self._scan_pool.submit(self._scan, workers, name, files, result)

    @staticmethod
    def _scan(
        workers: CheckovWorkers, name: str, files: dict[str, str], result: RegionResult
    ) -> RegionResult:
        with tempfile.TemporaryDirectory(prefix="kubevc-checkov-") as tmp:
            folder = Path(tmp) / name
            folder.mkdir()
            for fname, text in files.items():
                (folder / fname).write_text(text, encoding="utf-8")
            answer = workers.scan(folder)
        if not answer.get("ok"):
            error = str(answer.get("error", "no answer"))
            result.checkov_findings = [
                Finding(SHARED, "checkov", "-", "-", f"checkov failed on {name}: {error}")
            ]
            return result
        for f in answer.get("failed_checks") or []:
            parts = [p for p in PurePosixPath(str(f.get("file_path", ""))).parts if p != "/"]
            result.checkov_findings.append(
                Finding(
                    name,
                    "checkov",
                    parts[-1] if parts else "-",
                    str(f.get("resource")),
                    f"{f.get('check_id')}: {f.get('check_name')}",
                )
            )
        summary = answer.get("summary") or {}
        result.checkov_tally = {
            k: int(summary.get(k, 0) or 0) for k in ("passed", "failed", "resource_count")
        }
        return result

    # ---------------------------------------------------------------- kustomize
    def _kustomize(self, rel: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [self.kubectl, "kustomize", str(self.root / rel)], capture_output=True, text=True, check=False
        )

    def prefetch(self, rels: Iterable[str]) -> None:
        """Start ``kubectl kustomize`` for folders :meth:`build` is likely to ask for, in a pool.

        Only the subprocess runs ahead: :meth:`build` still decides which folders are built and
        reports on them, in the same order as without the prefetch.
        """
        for rel in rels:
            if rel not in self._prefetched and (self.root / rel / "kustomization.yaml").is_file():
                self._prefetched[rel] = self._pool.submit(self._kustomize, rel)

    def build(self, region: str, rel: str) -> list[dict[str, Any]] | None:
        rel = rel.removeprefix("./").rstrip("/")
        self.report.count(region, "kustomize")
        if rel in self.builds:
            if rel in self.build_errors:  # every region that applies a broken folder reports it
                self.report.add(region, "kustomize", rel, "kustomization.yaml", self.build_errors[rel])
            return self.builds[rel]
        self.progress(f"{region}: kubectl kustomize {rel}")
        pending = self._prefetched.pop(rel, None)
        proc = pending.result() if pending is not None else self._kustomize(rel)
        docs: list[dict[str, Any]] | None
        if proc.returncode != 0:
            self.build_errors[rel] = (
                proc.stderr.strip().splitlines()[-1]
                if proc.stderr.strip()
                else f"kubectl kustomize exited {proc.returncode}"
            )
            self.report.add(region, "kustomize", rel, "kustomization.yaml", self.build_errors[rel])
            docs = None
        else:
            docs = load_docs(proc.stdout)
        self.builds[rel] = docs
        return docs

    # ---------------------------------------------------------------- region
    def region(self, name: str) -> None:
        rep = self.report
        self.sources.region = name
        cluster_path = f"clusters/{name}"
        cluster = self.build(name, cluster_path)
        if cluster is None:
            return
        # `flux bootstrap`'s controllers (gotk-components.yaml) are Flux's, not the fleet's to check
        bootstrap_sync = f"{flux_system_folder(name)}/gotk-sync.yaml"
        owned = (self.root / flux_system_folder(name) / BOOTSTRAP_COMPONENTS).is_file()
        if owned:
            cluster = [
                o for o in cluster if not self.sources.file_of(o, cluster_path).endswith(BOOTSTRAP_COMPONENTS)
            ]
        all_objects: list[tuple[str, dict[str, Any]]] = [(cluster_path, o) for o in cluster]
        kustomizations = {}
        git_repos = {}
        for obj in cluster:
            if obj.get("kind") == "Kustomization" and flux.is_flux(obj):
                kustomizations[(obj["metadata"].get("namespace", "default"), obj["metadata"]["name"])] = obj
            if obj.get("kind") == "GitRepository":
                git_repos[(obj["metadata"].get("namespace", "default"), obj["metadata"]["name"])] = obj
        if not git_repos:
            rep.add(
                name,
                "flux",
                f"{cluster_path}/flux-system/gotk-sync.yaml",
                "GitRepository",
                "no GitRepository",
            )
        for (ns, _kname), obj in kustomizations.items():
            file = self.sources.file_of(obj, cluster_path)
            parsed = self.flux_object(name, file, obj)
            if not isinstance(parsed, flux.Kustomization):
                continue
            spec = parsed.spec
            if spec.timeout is None and not (owned and file == bootstrap_sync):
                rep.add(name, "flux", file, parsed.ref, "spec.timeout is not set")
            for dep in spec.depends_on or []:
                if (dep.namespace or ns, dep.name) not in kustomizations:
                    rep.add(
                        name,
                        "flux",
                        file,
                        parsed.ref,
                        f"dependsOn {dep.name!r} does not exist in {cluster_path}",
                    )
            src = spec.source_ref
            if src.kind == "GitRepository" and (src.namespace or ns, src.name) not in git_repos:
                rep.add(
                    name, "flux", file, parsed.ref, f"sourceRef GitRepository {src.name!r} does not exist"
                )
            path = spec.path.removeprefix("./").rstrip("/")
            if PurePosixPath(path).is_absolute() or ".." in PurePosixPath(path).parts:
                rep.add(name, "flux", file, parsed.ref, f"path {spec.path!r} must stay inside the repo")
                continue
            if not (self.root / path / "kustomization.yaml").is_file():
                rep.add(name, "flux", file, parsed.ref, f"path {spec.path!r} has no kustomization.yaml")
                continue
            if path == cluster_path:
                continue
            docs = self.build(name, path)
            if docs is not None:
                all_objects.extend((path, o) for o in docs)
                self.releases(name, path, docs, git_repos)
        apps_path = f"apps/{name}"
        if apps_path not in self.builds and (self.root / apps_path).is_dir():
            # not reachable from clusters/<region>: still has to build
            self.build(name, apps_path)
            rep.add(
                name,
                "flux",
                cluster_path,
                "Kustomization",
                f"no Kustomization in {cluster_path} applies {apps_path}",
            )
        for origin, obj in all_objects:
            if flux.is_flux(obj) and obj.get("kind") not in ("Kustomization",):
                if obj.get("kind") != "HelmRelease":
                    self.flux_object(name, self.sources.file_of(obj, origin), obj)
            elif not flux.is_flux(obj):
                # kustomize-controller applies a SOPS file decrypted, without its `sops` metadata
                checked = {k: v for k, v in obj.items() if k != "sops"} if "sops" in obj else obj
                self.schema(name, self.sources.file_of(obj, origin), checked)
        self.rendered.setdefault(name, {})["fleet-tree.yaml"] = yaml.dump_all(
            [o for _, o in all_objects if not flux.is_flux(o)],
            Dumper=getattr(yaml, "CSafeDumper", yaml.SafeDumper),
            sort_keys=False,
        )

    def flux_object(self, region: str, file: str, obj: dict[str, Any]) -> flux.FluxObject | None:
        parsed, problems = flux.parse_flux_object(obj)
        self.report.count(region, "flux")
        for p in problems:
            self.report.add(region, "flux", file, obj_name(obj), p)
        if parsed is not None:
            interval = getattr(getattr(parsed, "spec", None), "interval", None)
            if not interval:
                self.report.add(region, "flux", file, parsed.ref, "spec.interval is not set")
        return parsed

    # ---------------------------------------------------------------- helm releases
    def releases(
        self,
        region: str,
        path: str,
        docs: list[dict[str, Any]],
        git_repos: dict[tuple[str, str], dict[str, Any]],
    ) -> None:
        rep = self.report
        config_maps = {
            (o["metadata"].get("namespace", "default"), o["metadata"]["name"]): o
            for o in docs
            if o.get("kind") == "ConfigMap" and o.get("apiVersion") == "v1"
        }
        helm_repos = {
            (o["metadata"].get("namespace", "default"), o["metadata"]["name"])
            for o in docs
            if o.get("kind") == "HelmRepository"
        }
        release_names = {
            (o["metadata"].get("namespace", "default"), o["metadata"]["name"])
            for o in docs
            if o.get("kind") == "HelmRelease"
        }
        for obj in docs:
            if obj.get("kind") != "HelmRelease":
                continue
            file = self.sources.file_of(obj, path)
            parsed = self.flux_object(region, file, obj)
            if not isinstance(parsed, flux.HelmRelease):
                continue
            ref = parsed.ref
            ns = parsed.metadata.namespace or "default"
            spec = parsed.spec
            if spec.timeout is None:
                rep.add(region, "flux", file, ref, "spec.timeout is not set")
            for what, section in (("install", spec.install), ("upgrade", spec.upgrade)):
                if section is None or section.remediation is None or not section.remediation.retries:
                    rep.add(region, "flux", file, ref, f"spec.{what}.remediation.retries is not set")
            if spec.drift_detection is None or spec.drift_detection.mode != "enabled":
                rep.add(region, "flux", file, ref, "spec.driftDetection.mode is not 'enabled'")
            for dep in spec.depends_on or []:
                if (dep.namespace or ns, dep.name) not in release_names:
                    rep.add(
                        region,
                        "flux",
                        file,
                        ref,
                        f"dependsOn HelmRelease {dep.name!r} does not exist in {path}",
                    )
            values: dict[str, Any] = {}
            for vref in spec.values_from or []:
                key = vref.values_key or "values.yaml"
                cm = config_maps.get((ns, vref.name)) if vref.kind == "ConfigMap" else None
                if cm is None:
                    if not vref.optional:
                        rep.add(
                            region,
                            "flux",
                            file,
                            ref,
                            f"valuesFrom {vref.kind} {vref.name!r} not found in {path}",
                        )
                    continue
                text = (cm.get("data") or {}).get(key)
                if text is None:
                    rep.add(
                        region, "flux", file, ref, f"valuesFrom ConfigMap {vref.name!r} has no key {key!r}"
                    )
                    continue
                try:
                    loaded = safe_load(text) or {}
                except yaml.YAMLError as exc:
                    rep.add(
                        region,
                        "flux",
                        self.sources.file_of(cm, path),
                        obj_name(cm),
                        f"{key}: invalid YAML: {exc}",
                    )
                    continue
                if vref.target_path:
                    rep.add(
                        region, "flux", file, ref, "valuesFrom targetPath is not supported by kubevc validate"
                    )
                    continue
                if not isinstance(loaded, dict):
                    rep.add(
                        region,
                        "flux",
                        self.sources.file_of(cm, path),
                        obj_name(cm),
                        f"{key} is not a mapping",
                    )
                    continue
                values = deep_merge(values, loaded)
            values = deep_merge(values, spec.values or {})
            chart = spec.chart.spec
            src = chart.source_ref
            src_ns = src.namespace or ns
            if src.kind == "GitRepository":
                if (src_ns, src.name) not in git_repos:
                    rep.add(
                        region,
                        "flux",
                        file,
                        ref,
                        f"chart sourceRef GitRepository {src.name!r} does not exist",
                    )
                chart_rel = chart.chart.removeprefix("./").rstrip("/")
                if (
                    ".." in PurePosixPath(chart_rel).parts
                    or not (self.root / chart_rel / "Chart.yaml").is_file()
                ):
                    rep.add(
                        region,
                        "flux",
                        file,
                        ref,
                        f"chart path {chart.chart!r} has no Chart.yaml in the fleet repo",
                    )
                    continue
                release = spec.release_name or (
                    f"{spec.target_namespace}-{parsed.metadata.name}"
                    if spec.target_namespace
                    else parsed.metadata.name
                )
                self.helm(region, file, ref, chart_rel, values, release, spec.target_namespace or ns)
            elif src.kind == "HelmRepository":
                if (src_ns, src.name) not in helm_repos:
                    rep.add(
                        region,
                        "flux",
                        file,
                        ref,
                        f"chart sourceRef HelmRepository {src.name!r} not in {path}",
                    )
                if not chart.version or not SEMVER.match(chart.version):
                    rep.add(
                        region,
                        "flux",
                        file,
                        ref,
                        f"chart version {chart.version!r} is not pinned to one version",
                    )
                else:
                    self.report.notes.append(
                        f"{region}: {ref}: external chart {chart.chart} {chart.version} "
                        "(not vendored, not rendered)"
                    )
            else:
                rep.add(region, "flux", file, ref, f"chart sourceRef kind {src.kind!r} is not used by kubevc")

    def helm(
        self,
        region: str,
        file: str,
        ref: str,
        chart_rel: str,
        values: dict[str, Any],
        release: str,
        namespace: str,
    ) -> None:
        # the Helm SDK loads a Go shared library: imported by the first helm render, not at start-up
        import helm_python

        self.progress(f"{region}: helm render {chart_rel} as {namespace}/{release}")
        self.report.count(region, "helm")
        try:
            chart = self._charts.get(chart_rel)
            if chart is None:
                try:
                    chart = helm_python.Chart.load(str(self.root / chart_rel))
                except helm_python.HelmError as exc:
                    chart = exc
                self._charts[chart_rel] = chart  # loaded once, rendered for every region
            if isinstance(chart, Exception):
                raise chart
            out = chart.render(values, name=release, namespace=namespace)
        except helm_python.HelmError as exc:
            message = " ".join(line.strip() for line in str(exc).splitlines() if line.strip())
            self.report.add(region, "helm", file, ref, f"{chart_rel}: {message}")
            return
        texts = [t for k, t in sorted(out.items()) if k.endswith((".yaml", ".yml")) and t.strip()]
        manifest = "\n---\n".join(texts)
        try:
            docs = load_docs(manifest)
        except yaml.YAMLError as exc:
            self.report.add(region, "helm", file, ref, f"{chart_rel} rendered invalid YAML: {exc}")
            return
        self.rendered.setdefault(region, {})[f"{release}.yaml"] = manifest
        for obj in docs:
            self.schema(region, f"{chart_rel} (release {release})", obj)

    # ---------------------------------------------------------------- schemas
    def schema(self, region: str, file: str, obj: dict[str, Any]) -> None:
        # slow to import and needed only by validate (see kubevc.generator.validate._schema)
        import jsonschema
        import kubernetes_validate

        if self._schemas is None:
            self._schemas = Schemas(self.schema_version)
        try:
            self._schemas.validate(obj)
        except kubernetes_validate.SchemaNotFoundError:
            return  # a custom resource: no core schema
        except jsonschema.ValidationError as exc:
            path = ".".join(str(p) for p in exc.path) or "(object)"
            self.report.add(region, "schema", file, obj_name(obj), f"{path}: {exc.message}")
        except kubernetes_validate.InvalidSchemaError as exc:
            self.report.add(region, "schema", file, obj_name(obj), str(exc))
        self.report.count(region, "schema")

    # ---------------------------------------------------------------- checkov
    def checkov(self, regions: Sequence[str], run: int = 1, runs: int = 1) -> None:
        """Start one checkov run over ``regions``' rendered manifests (in the pool; see
        :data:`CHECKOV_BATCH`); :meth:`checkov_results` collects every run's findings."""
        exe = checkov_path()
        files = {
            f"{region}/{fname}": text
            for region in regions
            for fname, text in self.rendered.get(region, {}).items()
        }
        which = "one run" if runs == 1 else f"run {run} of {runs}, {len(regions)} region(s)"
        self.progress(f"checkov on {len(files)} rendered manifest file(s) ({which})")
        self._checkov_runs.append((list(regions), self._pool.submit(run_checkov, exe, files)))

    def checkov_results(self) -> None:
        totals = {"passed": 0, "failed": 0, "resource_count": 0}
        summaries = 0
        for regions, future in self._checkov_runs:
            proc = future.result()
            try:
                data = json.loads(proc.stdout)
            except json.JSONDecodeError:
                tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
                self.report.add(
                    SHARED, "checkov", "-", "-", f"checkov failed (exit {proc.returncode}): {' '.join(tail)}"
                )
                continue
            results = data if isinstance(data, list) else [data]
            for res in results:
                for f in (res.get("results") or {}).get("failed_checks", []):
                    parts = PurePosixPath(f.get("file_path", "")).parts
                    parts = tuple(p for p in parts if p != "/")
                    region = parts[0] if parts else SHARED
                    fname = parts[-1] if parts else "-"
                    self.report.add(
                        region,
                        "checkov",
                        fname,
                        str(f.get("resource")),
                        f"{f.get('check_id')}: {f.get('check_name')}",
                    )
                summary = res.get("summary") or {}
                if summary:
                    summaries += 1
                    for key in totals:
                        totals[key] += int(summary.get(key, 0) or 0)
                    for region in regions:
                        self.report.count(region, "checkov", 1)
        if summaries:
            self.report.notes.append(
                f"checkov: {totals['passed']} passed, {totals['failed']} failed, "
                f"{totals['resource_count']} resources; "
                f"skipped by policy: {', '.join(sorted(CHECKOV_SKIPS))}"
            )

    # ---------------------------------------------------------------- secrets


def validate_fleet(
    fleet: Fleet,
    regions: list[str] | None = None,
    checkov: bool = True,
    progress: Progress | None = None,
    require_policy: bool = False,
    use_cache: bool = True,
    region_done: Callable[[str, int, int], None] | None = None,
) -> Report:
    """Run every check; return the findings (empty = valid).

    Without checkov installed the policy scan is reported as skipped (with the command that enables
    it), unless ``require_policy`` (``--require-policy``, for CI) makes that an error.

    Each region's (and the hub's) results are cached by a key of everything they depend on
    (:mod:`._cache`; ``use_cache=False`` is ``--no-cache``): an unchanged region is not walked
    again, and the report is the same either way. ``region_done(name, done, total)`` is called as
    each region's checks but checkov's are done (for a progress bar: checkov scans a region in the
    background while the next ones are walked, and ``progress`` says how many it has scanned).
    """
    say = progress or (lambda _m: None)
    names = fleet.region_names()
    owners = frozenset([*names, HUB_NAME])
    if regions:
        unknown = [r for r in regions if r not in names]
        if unknown:
            raise SpecError(f"unknown region(s): {', '.join(unknown)}")
        names = [n for n in names if n in regions]
    report = Report(regions=names)
    skipped = "checkov skipped (--no-checkov)"
    if checkov and find_checkov() is None:
        if require_policy:
            checkov_path()  # raises: fail early, before the slow part
        checkov = False
        skipped = f"checkov skipped: {CHECKOV_MISSING} (--require-policy makes this a failure)"
    valid: list[str] = []
    for name in names:
        say(f"{name}: region spec")
        try:
            spec = fleet.load(name)
            check_region_config(spec, fleet.config, report)
            check_placement(spec, report)
            valid.append(name)
            check_bootstrap_sync(fleet.root, name, spec.git.url, spec.git.branch, report)
            check_region_secrets(fleet.root, name, spec.secrets, report)
        except SpecError as exc:
            for problem in exc.problems:
                report.add(name, "spec", f"regions/{name}/region.yaml", "region", problem)
    if not regions and (fleet.root / HUB_FILE).is_file():  # the monitoring hub: clusters/hub like a region
        report.regions.append(HUB_NAME)
        try:
            load_hub(fleet.root)
            valid.append(HUB_NAME)
            check_bootstrap_sync(fleet.root, HUB_NAME, fleet.config.git_url, fleet.config.branch, report)
            for folder, message in hub_notes(fleet):  # remote write is refused without them
                report.add(HUB_NAME, "secrets", folder, "Secret", message)
        except SpecError as exc:
            for problem in exc.problems:
                report.add(HUB_NAME, "spec", HUB_FILE, "hub", problem)
    v = _Validator(fleet, report, say, owners)
    cache = ValidateCache.open(fleet.root, enabled=use_cache)
    mode = "checkov" if checkov else "plain"
    results: dict[str, RegionResult] = {}
    fallback: Report | None = None
    try:
        say("secrets: scanning the tree for plain-text Secrets")
        check_secrets(v.root, names, v.report)
        check_credential_urls(v.root, names, v.report)
        keys: dict[str, str] = {}
        if cache.enabled and valid:
            say("validate cache: hashing the tree")
            tools = tools_digest(v.kubectl, checkov_path() if checkov else None)
            keys = region_keys(digest_tree(fleet.root, owners), valid, tools)
        todo: list[str] = []
        for name in valid:
            hit = cache.get(name, mode, keys[name]) if name in keys else None
            if hit is None:
                todo.append(name)
            else:
                results[name] = hit
                report.cached.append(name)
        # the bar counts regions walked (every check but checkov: the cached ones are done);
        # checkov's scans run behind the walks and say how far they are in the step text
        done = len(results)
        if region_done is not None:
            region_done("", done, len(valid))
        workers = CheckovWorkers.start(checkov_path(), WORKERS) if checkov and todo else None
        scans: dict[str, Future[RegionResult]] = {}
        try:
            v.prefetch(_likely_builds(todo))
            batches = [todo[i : i + CHECKOV_BATCH] for i in range(0, len(todo), CHECKOV_BATCH)]
            last_of_batch = {batch[-1]: i for i, batch in enumerate(batches)}
            for name in todo:
                results[name] = v.walk(name)
                if workers is not None:
                    scans[name] = v.scan_region(workers, name, results[name])
                elif checkov and name in last_of_batch:  # the checkov command, in batches (see above)
                    i = last_of_batch[name]
                    v.checkov(batches[i], i + 1, len(batches))
                if not checkov and name in keys:
                    cache.put(name, mode, keys[name], results[name])
                done += 1
                if region_done is not None:
                    region_done(name, done, len(valid))
            for scanned, (name, scan) in enumerate(scans.items(), 1):
                results[name] = scan.result()
                if name in keys and not any(f.region == SHARED for f in results[name].checkov_findings):
                    cache.put(name, mode, keys[name], results[name])  # a failed scan is never cached
                say(f"checkov: {scanned}/{len(scans)} region(s) scanned")
            if checkov and workers is None and todo:
                fallback = Report(regions=list(todo))
                v.report = fallback
                v.checkov_results()
        finally:
            if workers is not None:
                workers.close()
        if cache.enabled and not regions:
            cache.prune(owners)
    finally:
        v.close()
    _assemble(report, valid, results, checkov, fallback)
    if not checkov:
        report.notes.append(skipped)
    return report


def _assemble(
    report: Report,
    valid: Sequence[str],
    results: Mapping[str, RegionResult],
    checkov: bool,
    fallback: Report | None,
) -> None:
    """Add each region's results to ``report`` in region order, the same whether they were walked
    now or came from the cache: walk findings (a broken shared folder once, by the first region
    that applies it), then checkov's, then the notes."""
    seen: set[tuple[str, str, str]] = set()
    for name in valid:
        result = results[name]
        for finding in result.findings:
            if finding.check == "kustomize":
                built = (finding.file, finding.obj, finding.message)
                if built in seen:
                    continue
                seen.add(built)
            report.findings.append(finding)
        for check, n in result.checked.items():
            report.count(name, check, n)
        report.notes.extend(result.notes)
    if not checkov or not valid:
        return
    totals = {"passed": 0, "failed": 0, "resource_count": 0}
    tallies = 0
    for name in valid:
        result = results[name]
        report.findings.extend(result.checkov_findings)
        if result.checkov_tally is not None:
            tallies += 1
            report.count(name, "checkov", 1)
            for key in totals:
                totals[key] += result.checkov_tally.get(key, 0)
    if fallback is not None:  # the checkov command's runs (not cached): findings, counts and note
        report.findings.extend(fallback.findings)
        for (region, check), n in fallback.checked.items():
            report.count(region, check, n)
        report.notes.extend(fallback.notes)
    elif tallies:
        report.notes.append(
            f"checkov: {totals['passed']} passed, {totals['failed']} failed, "
            f"{totals['resource_count']} resources; "
            f"skipped by policy: {', '.join(sorted(CHECKOV_SKIPS))}"
        )


def _likely_builds(names: Sequence[str]) -> list[str]:
    """The folders Flux applies for ``names`` in a tree kubevc-gen rendered, in the order
    :meth:`_Validator.region` builds them (for :meth:`_Validator.prefetch`)."""
    rels: list[str] = []
    for i, name in enumerate(names):
        rels.append(f"clusters/{name}")
        if i == 0:
            rels += ["infrastructure/controllers", "infrastructure/hub/controllers", "infrastructure/configs"]
        rels += [f"infrastructure/agents/{name}", f"apps/{name}"]
    return rels
