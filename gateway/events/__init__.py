"""Events leaving the gateway: signed webhook deliveries from the outbox (webhooks.py)."""
