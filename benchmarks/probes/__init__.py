"""Abuse probes: what floods, sprays and slow readers cost (`abuse`, `slow_reader`); figures in
docs/security.md."""
