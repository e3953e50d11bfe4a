"""``kubevc-gateway --config FILE``: the edge inference gateway."""

from __future__ import annotations

import argparse
import sys
from importlib import metadata

from kubevc.gateway._config import load_config
from kubevc.gateway._errors import ConfigError

# The app and the server need the 'gateway' extra. Without it the command names the extra to
# install (one line, exit 2) instead of a traceback; --help and --version work either way.
_missing_module: str | None = None
try:
    from kubevc.gateway._gateway import Gateway
    from kubevc.gateway._server import run
except ImportError as exc:
    if (exc.name or "kubevc").startswith("kubevc"):  # our own module is broken: not a missing extra
        raise
    _missing_module = exc.name

__all__ = ["main"]

_INFO_FLAGS = {"-h", "--help", "--version"}


def _version() -> str:
    try:
        return metadata.version("kubevc")
    except metadata.PackageNotFoundError:  # run from a source tree that was never installed
        return "unknown"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="kubevc-gateway",
        description="Edge inference gateway: media/JSON in, protobuf gRPC to the model server, JSON out.",
    )
    parser.add_argument("--version", action="version", version=f"kubevc-gateway {_version()}")
    parser.add_argument("--config", required=True, help="gateway.yaml (see docs/gateway-config.md)")
    parser.add_argument("--check", action="store_true", help="validate the configuration and exit")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    parser = _parser()
    if _missing_module is not None and not _INFO_FLAGS & set(args):
        print(
            "kubevc-gateway needs the 'gateway' extra: pip install 'kubevc[gateway]'"
            f" (missing: {_missing_module})",
            file=sys.stderr,
        )
        return 2
    ns = parser.parse_args(args)
    try:
        config = load_config(ns.config)
        Gateway(config)  # loads label files and vocabularies: fail now, not on the first request
    except ConfigError as exc:
        print(f"kubevc-gateway: invalid configuration: {exc}", file=sys.stderr)
        return 2
    if ns.check:
        print(f"{ns.config}: ok ({len(config.backends)} backends, {len(config.models)} models)")
        return 0
    run(config)
    return 0


if __name__ == "__main__":
    sys.exit(main())
