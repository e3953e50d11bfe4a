"""``kubevc-gateway --config FILE``: the edge inference gateway."""

from __future__ import annotations

import argparse
import sys

from kubevc.gateway._config import load_config
from kubevc.gateway._errors import ConfigError

__all__ = ["main"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="kubevc-gateway",
        description="Edge inference gateway: media/JSON in, protobuf gRPC to the model server, JSON out.",
    )
    parser.add_argument("--config", required=True, help="gateway.yaml (see docs/gateway-config.md)")
    parser.add_argument("--check", action="store_true", help="validate the configuration and exit")
    ns = parser.parse_args(argv)
    try:
        config = load_config(ns.config)
        from kubevc.gateway._gateway import Gateway

        Gateway(config)  # loads label files and vocabularies: fail now, not on the first request
    except ConfigError as exc:
        print(f"kubevc-gateway: invalid configuration: {exc}", file=sys.stderr)
        return 2
    if ns.check:
        print(f"{ns.config}: ok ({len(config.backends)} backends, {len(config.models)} models)")
        return 0
    from kubevc.gateway._server import run

    run(config)
    return 0


if __name__ == "__main__":
    sys.exit(main())
