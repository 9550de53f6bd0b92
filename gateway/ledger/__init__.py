"""The ledger: the rules over a store that keep invoices true, idempotency keys, deposit
accounts, searches, and what a dialect cannot carry (translation, losses)."""
