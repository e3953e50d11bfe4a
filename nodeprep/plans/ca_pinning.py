"""CA pinning: how a joining node knows it talks to the right cluster.

* kubeadm: ``--discovery-token-ca-cert-hash sha256:<hex>``, the sha256 of the CA certificate's
  DER-encoded SubjectPublicKeyInfo;
* k3s: the secure token ``K10<hex>::<id>.<secret>``, ``<hex>`` being the sha256 of the raw CA
  bundle bytes the server serves at ``/cacerts``.

The CA bundle itself comes from the ``kube-public/cluster-info`` ConfigMap's kubeconfig.
"""

from __future__ import annotations

import base64
import hashlib

import yaml
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from ..errors import JoinError
from .bootstrap_token import Token

__all__ = ["ca_bundle_from_cluster_info", "k3s_ca_hash", "k3s_secure_token", "kubeadm_ca_cert_hash"]


def kubeadm_ca_cert_hash(ca_pem: bytes) -> str:
    """``sha256:<hex>`` of the DER SubjectPublicKeyInfo of the (first) CA certificate."""
    cert = x509.load_pem_x509_certificate(ca_pem)
    spki = cert.public_key().public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
    return "sha256:" + hashlib.sha256(spki).hexdigest()


def k3s_ca_hash(ca_bundle: bytes) -> str:
    """sha256 hex of the raw CA bundle bytes (what the k3s server serves at /cacerts)."""
    return hashlib.sha256(ca_bundle).hexdigest()


def k3s_secure_token(ca_bundle: bytes, token: Token) -> str:
    return f"K10{k3s_ca_hash(ca_bundle)}::{token.value()}"


def ca_bundle_from_cluster_info(kubeconfig_text: str) -> bytes:
    """The CA bytes inside the ``kubeconfig`` key of the ``kube-public/cluster-info`` ConfigMap."""
    data = yaml.safe_load(kubeconfig_text) or {}
    try:
        encoded = data["clusters"][0]["cluster"]["certificate-authority-data"]
    except (KeyError, IndexError, TypeError) as error:
        raise JoinError("kube-public/cluster-info holds no certificate-authority-data") from error
    return base64.b64decode(encoded)
