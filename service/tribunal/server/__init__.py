"""The HTTP(S) server every endpoint shares: lifecycle, TLS, health, readiness and metrics."""

from tribunal.server.http import Component, ReadinessCheck, Server
from tribunal.server.tls import CertificateReloader, generate_self_signed

__all__ = ["CertificateReloader", "Component", "ReadinessCheck", "Server", "generate_self_signed"]
