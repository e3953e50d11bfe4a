"""One error base for kubevc.nodeprep, each error keeping its builtin base and its old import path."""

from __future__ import annotations

import pytest

from kubevc.nodeprep import errors, fluxsync, join, kubeconfig, platform


@pytest.mark.parametrize(
    ("error", "builtin", "old_home"),
    [
        (errors.UnsupportedPlatformError, ValueError, platform),
        (errors.KubeconfigError, ValueError, kubeconfig),
        (errors.JoinError, RuntimeError, join),
        (errors.FluxSyncError, RuntimeError, fluxsync),
    ],
)
def test_every_error_is_a_nodeprep_error(
    error: type[Exception], builtin: type[Exception], old_home: object
) -> None:
    assert issubclass(error, errors.NodeprepError)
    # callers and the runner catch the builtin base (run_deploy records a ValueError as a host failure)
    assert issubclass(error, builtin)
    assert getattr(old_home, error.__name__) is error


def test_the_base_is_an_exception_only() -> None:
    assert errors.NodeprepError.__bases__ == (Exception,)
