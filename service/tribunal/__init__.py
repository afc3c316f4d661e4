"""Tribunal: judges Kubernetes admission reviews, Falco alerts and Trivy reports against Rego policies."""

__version__ = "0.1.0"
__all__ = ["__version__"]
