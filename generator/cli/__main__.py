"""``python -m kubevc.generator.cli``: the same as the ``kubevc-gen`` command."""

from . import main

main()
