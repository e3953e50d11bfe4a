"""Pure plans: what a node should get, as values, config objects, command lines and file texts.

Nothing here imports pyinfra, the kubernetes client or anything that reaches the network; the
operations (``kubevc.nodeprep.operations``), the API access (``kubevc.nodeprep.kubeapi``) and the
tasks above them turn these plans into commands and API calls.
"""
