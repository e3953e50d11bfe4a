"""``kubevc-gen``: region specs in, a Flux-reconciled fleet repo out.

Every mutating command validates first, writes nothing on error, and makes one git commit
(or a new branch with ``--branch``, a staged change with ``--no-commit``, a diff with ``--dry-run``).

The modules here are thin click shells (parse options, call :mod:`kubevc.generator.workflows`,
print); every command and group is registered on the root group below, in this one place, so the
command tree is the same whichever module is imported first.
"""

from . import _app, _hub, _model, _node, _region_config, _remove, _rollout, _secret, _status
from ._app import cli
from ._completion import install_completion as _install_completion

cli.add_command(_node.node, "node")
cli.add_command(_node.cluster, "cluster")
cli.add_command(_model.model, "model")
cli.add_command(_hub.hub, "hub")
cli.add_command(_region_config.image, "image")
_app.region.add_command(_region_config.region_label, "label")
_model.model.add_command(_remove.model_remove, "remove")
_node.node.add_command(_remove.node_remove, "remove")
cli.add_command(_secret.secret, "secret")
for _command in (_status.status, _status.reconcile, _status.suspend, _status.resume):
    cli.add_command(_command)
cli.add_command(_rollout.rollout, "rollout")
_install_completion(cli)  # region and model names for every command registered above


def main() -> None:
    """Console script entry point (``kubevc-gen``)."""
    cli(prog_name="kubevc-gen")


__all__ = ["cli", "main"]
