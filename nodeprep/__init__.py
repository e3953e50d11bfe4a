"""kubevc.nodeprep: pyinfra operations and facts for node preparation, cluster init and join."""
