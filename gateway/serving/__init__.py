"""Serving HTTP: the application factory, the dialects' routes, the admin API, OpenAPI,
the playground, and the request plumbing they share (negotiation, bodies, state)."""
