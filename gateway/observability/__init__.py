"""Observability: structured logs, Prometheus metrics, and the request trace they share."""
