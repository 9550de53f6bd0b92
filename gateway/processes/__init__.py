"""Processes: the gateway as an OS process (start-up, signals, reload) and `--workers`
(the supervisor, accepting connections, which worker takes one), and the delivery process
that runs the webhook and relay loops off the serving workers (`events.deliveries: process`)."""
