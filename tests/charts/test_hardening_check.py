"""The hardening check itself must catch a weak pod (otherwise the chart test proves nothing)."""

from __future__ import annotations

from tests.charts.hardening import is_helm_test, workload_problems

WEAK_POD = {
    "securityContext": {"runAsUser": 0},
    "containers": [{"name": "app", "image": "nginx:latest", "securityContext": {"privileged": True}}],
}


def test_weak_pod_is_reported_on_every_rule() -> None:
    problems = "\n".join(workload_problems("Deployment", WEAK_POD))
    for expected in (
        "automountServiceAccountToken",
        "pod: runAsNonRoot",
        "pod: runAsUser",
        "seccompProfile",
        "app: readOnlyRootFilesystem",
        "app: allowPrivilegeEscalation",
        "app: privileged",
        "capabilities do not drop ALL",
        "resources.limits.memory",
        "no pinned tag",
        "livenessProbe",
        "readinessProbe",
        "/tmp",
    ):
        assert expected in problems, expected


def test_jobs_need_no_probes() -> None:
    assert not [p for p in workload_problems("Job", WEAK_POD) if "Probe" in p]


def test_helm_test_pods_need_no_probes_but_the_rest() -> None:
    pod = {"kind": "Pod", "metadata": {"annotations": {"helm.sh/hook": "test"}}, "spec": WEAK_POD}
    assert is_helm_test(pod) and not is_helm_test({"kind": "Pod", "metadata": {}})
    problems = workload_problems("Pod", WEAK_POD, runs_to_completion=True)
    assert not [p for p in problems if "Probe" in p]
    assert "pod: runAsNonRoot is not true" in problems  # hardened like every other pod
