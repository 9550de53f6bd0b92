"""Access: who is calling (credentials, tokens, stored-secret checks) and how much they
may (rate limits, failed-login limits)."""
