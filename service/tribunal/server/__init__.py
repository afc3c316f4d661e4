"""The HTTP(S) server every endpoint shares: lifecycle, TLS, health, readiness and metrics."""

from tribunal.server.auth import Authenticator, ClientCertificates, Identity, ReviewUnavailable, TokenReviewer
from tribunal.server.http import Component, ReadinessCheck, Server, register_process_metrics, stop_in_reverse
from tribunal.server.kube_auth import KubernetesTokenReviewer
from tribunal.server.tls import CertificateReloader, generate_self_signed

__all__ = [
    "Authenticator",
    "CertificateReloader",
    "ClientCertificates",
    "Component",
    "Identity",
    "KubernetesTokenReviewer",
    "ReadinessCheck",
    "ReviewUnavailable",
    "Server",
    "TokenReviewer",
    "generate_self_signed",
    "register_process_metrics",
    "stop_in_reverse",
]
