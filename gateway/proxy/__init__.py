"""Proxy mode: a tenant's operations re-encoded for a backend in another dialect, its ids
mapped, and the pooled HTTP/1.1 client that carries them."""
