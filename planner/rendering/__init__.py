"""Renderers: rich console views and artifacts (compose, systemd, k8s) of the pydantic results."""
