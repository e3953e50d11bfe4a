"""Small pieces of the harness: machine info, percentiles, link naming, payload bodies, metrics parsing."""

from __future__ import annotations

import subprocess

import pytest

from bench import machine, netns, paper
from bench.suites.transfer import stage_means
from bench.timing import Budget, percentile, run_timed

CPUINFO = "processor\t: 0\nvendor_id\t: AuthenticAMD\nmodel name\t: AMD EPYC 7B13 64-Core Processor\n"


def test_cpu_model_from_cpuinfo() -> None:
    assert machine.cpu_model(CPUINFO) == "AMD EPYC 7B13 64-Core Processor"
    assert machine.cpu_model("Hardware\t: BCM2835\nModel\t: Raspberry Pi 4 Model B Rev 1.4\n") == "BCM2835"


def test_machine_info_has_what_results_need() -> None:
    info = machine.machine_info()
    assert info["cores"] >= 1
    assert isinstance(info["cpu_model"], str) and info["cpu_model"]
    assert info["python"].count(".") == 2


def test_percentile() -> None:
    assert percentile([3.0, 1.0, 2.0], 50) == 2.0
    assert percentile([1.0, 2.0, 3.0, 4.0], 95) == pytest.approx(3.85)
    assert percentile([5.0], 99) == 5.0


def test_run_timed_is_bounded() -> None:
    calls = []
    times = run_timed(lambda: calls.append(1), Budget(min_count=2, max_count=7, max_seconds=60), warmup=1)
    assert len(times) == 7 and len(calls) == 8


def test_link_names_fit_ifnamsiz_and_are_unique() -> None:
    a, b = netns.Link(), netns.Link()
    assert len(a.server_dev) <= 15 and len(a.client_dev) <= 15
    assert a.server_ns != b.server_ns
    assert netns.GBIT.bits_per_second == 1e9
    assert netns.MBIT100.bits_per_second == 1e8
    assert netns.UNSHAPED.bits_per_second is None


@pytest.mark.netns
def test_link_is_torn_down_even_on_error() -> None:
    reason = netns.unavailable_reason()
    if reason:
        pytest.skip(reason)
    link = netns.Link()
    with pytest.raises(RuntimeError), link:
        link.shape(netns.GBIT)
        assert "tbf" in link.qdisc()
        raise RuntimeError("boom")
    listed = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    assert link.server_ns not in listed and link.client_ns not in listed


def test_stage_means_from_metrics_deltas() -> None:
    delta = {
        'kubevc_gateway_request_duration_seconds_sum{model="yolov5",stage="total"}': 0.5,
        'kubevc_gateway_request_duration_seconds_count{model="yolov5",stage="total"}': 10.0,
        'kubevc_gateway_request_duration_seconds_sum{model="yolov5",stage="backend"}': 0.3,
        'kubevc_gateway_request_duration_seconds_count{model="yolov5",stage="backend"}': 10.0,
        'kubevc_gateway_request_duration_seconds_sum{model="yolov5",stage="decode"}': 0.0,
    }
    means = stage_means(delta)
    assert means == pytest.approx({"total": 0.05, "backend": 0.03})


def test_payload_bodies_relate_as_expected() -> None:
    from bench import models
    from bench.suites.payload import input_bodies

    model = models.IMAGE_MODELS["MobileNetV1"]
    bodies = input_bodies(model)
    raw = 224 * 224 * 3 * 4
    assert raw < len(bodies["c"]) < raw + 200  # tensor_content: the float32 bytes plus a small header
    assert abs(len(bodies["b"]) - len(bodies["c"])) < 200  # packed float_val: same 4 bytes per value
    assert raw // 4 < len(bodies["d"]) < raw // 4 + 200
    assert len(bodies["a"]) > 4 * raw  # stdlib JSON of float32 values: about 20 characters each
    assert bodies["e"][:3] == b"\xff\xd8\xff"
    assert len(bodies["e"]) < 0.05 * raw  # a real photo, not noise, compresses well


def test_paper_numbers_load_when_shared_is_present() -> None:
    if not paper.tables():
        pytest.skip(f"paper tables not found under {paper.shared_dir()}")
    assert paper.payload_mib("YOLOv5", "in_json") == 24.547
    assert paper.headline("yolov5_payload_reduction_percent") == 85.4
    assert paper.deploy_seconds("total", "k3s") == 299.0
    assert paper.payload_mib("Nope", "in_json") is None
