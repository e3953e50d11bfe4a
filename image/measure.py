"""``python -m image.measure`` (``make image-measure``): sizes, build time and start-to-ready of the
image in ``build/`` (run ``make image`` first), written into docs/deployment.md between markers.

Start-to-ready is the time from ``runc run`` to the first ``/readyz`` 200 of the amd64 image under
runc (read-only root, host loopback, the project's test backend as model server), median of runs.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

from image.oci_runtime import Container, prepare_bundle, unpack, wait_http
from kubevc.gateway.testing import backend_doc, config_doc, free_port, run_test_backend, yolo_profile

REPO = Path(__file__).resolve().parent.parent
DOC = REPO / "docs/deployment.md"
START, END = "<!-- image-measurements:start -->", "<!-- image-measurements:end -->"


def start_to_ready(layout: Path, tag: str, runs: int) -> list[float]:
    seconds: list[float] = []
    with tempfile.TemporaryDirectory() as tmp, run_test_backend() as backend:
        work = Path(tmp)
        bundle = unpack(layout, tag, work / "bundle")
        for run in range(runs):
            port = free_port()
            config_dir = work / f"config-{run}"
            config_dir.mkdir(mode=0o755)
            config = config_doc([backend_doc("tf", backend.address)], [yolo_profile()], log_level=None)
            config["server"] = {"host": "127.0.0.1", "port": port, "drainSeconds": 1}
            (config_dir / "gateway.yaml").write_text(yaml.safe_dump(config))
            (config_dir / "gateway.yaml").chmod(0o644)
            prepare_bundle(bundle, binds={"/etc/kubevc-gateway": config_dir})
            container = Container("runc", bundle, f"kubevc-measure-{os.getpid()}-{run}", work / "state")
            container.start()
            try:
                status, _ = wait_http(f"http://127.0.0.1:{port}/readyz", 60, container)
                ready = time.monotonic() - container.started_at
                if status != 200:
                    raise SystemExit(f"/readyz answered {status}:\n{container.logs()[-2000:]}")
                seconds.append(ready)
                container.signal(signal.SIGTERM)
                container.wait(30)
            finally:
                container.cleanup()
    return seconds


def render(report: dict[str, Any], ready: list[float]) -> str:
    rows = [
        "| platform | unpacked | compressed (pulled) | manifest digest |",
        "| --- | ---: | ---: | --- |",
    ]
    for platform, info in report["platforms"].items():
        rows.append(
            f"| {platform} | {info['unpacked_bytes'] / 1e6:.0f} MB | {info['compressed_bytes'] / 1e6:.0f} MB"
            f" | `{info['manifest'][:19]}…` |"
        )
    return "\n".join(
        [
            *rows,
            "",
            f"* `make image` for {', '.join(report['platforms'])}: {report['build_seconds']:.0f} s"
            " (2-core machine, warm caches in build/cache).",
            "* Container start (`runc run`) to the first `/readyz` 200, amd64: median"
            f" {statistics.median(ready):.2f} s over {len(ready)} runs"
            f" (min {min(ready):.2f} s, max {max(ready):.2f} s).",
            f"* Measured at revision `{report['revision'][:12]}` by `make image-measure`.",
        ]
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m image.measure", description=__doc__)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--no-write", action="store_true", help="print only, leave docs/deployment.md")
    ns = parser.parse_args(argv)
    report = json.loads((REPO / "build/image-digests.json").read_text())
    tag = report["platforms"]["linux/amd64"]["tag"]
    ready = start_to_ready(REPO / "build/oci", tag, ns.runs)
    block = render(report, ready)
    print(block)
    if not ns.no_write:
        text = DOC.read_text()
        head, _, rest = text.partition(START)
        _, _, tail = rest.partition(END)
        DOC.write_text(f"{head}{START}\n{block}\n{END}{tail}")
        print(f"updated {DOC.relative_to(REPO)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
