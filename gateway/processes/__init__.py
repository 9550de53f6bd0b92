"""Processes: the gateway as an OS process (start-up, signals, reload) and `--workers`
(the supervisor, accepting connections, which worker takes one)."""
