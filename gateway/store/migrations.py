"""Versioned schema migrations, applied in order at start; never edit a shipped one."""

from __future__ import annotations

MIGRATIONS: tuple[tuple[int, str], ...] = (
    (
        1,
        """
        CREATE TABLE invoices (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            tenant TEXT NOT NULL,
            number TEXT NOT NULL,
            currency TEXT NOT NULL,
            total TEXT NOT NULL,
            issued_on TEXT NOT NULL,
            due_on TEXT NOT NULL,
            draft INTEGER NOT NULL DEFAULT 0,
            void INTEGER NOT NULL DEFAULT 0,
            marked_paid INTEGER NOT NULL DEFAULT 0,
            created_at TEXT NOT NULL,
            UNIQUE (tenant, number)
        );
        CREATE TABLE payments (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            tenant TEXT NOT NULL,
            invoice_id INTEGER NOT NULL REFERENCES invoices (id),
            amount TEXT NOT NULL,
            paid_at TEXT NOT NULL,
            method TEXT,
            method_label TEXT,
            origin TEXT,
            notes TEXT,
            reference TEXT,
            tax_withheld TEXT NOT NULL DEFAULT '0',
            fee TEXT NOT NULL DEFAULT '0',
            settled_cents INTEGER NOT NULL,
            recorded_by TEXT,
            recorded_by_email TEXT,
            client_app TEXT,
            notify_customer INTEGER NOT NULL DEFAULT 0,
            created_at TEXT NOT NULL,
            updated_at TEXT NOT NULL,
            deleted_at TEXT
        );
        CREATE INDEX payments_live ON payments (invoice_id, settled_cents)
            WHERE deleted_at IS NULL;
        """,
    ),
    (
        2,
        """
        CREATE TABLE id_map (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            tenant TEXT NOT NULL,
            kind TEXT NOT NULL,
            backend_id TEXT NOT NULL,
            parent TEXT,
            UNIQUE (tenant, kind, backend_id)
        );
        """,
    ),
    (
        3,
        """
        CREATE TABLE idempotency_keys (
            tenant TEXT NOT NULL,
            key TEXT NOT NULL,
            fingerprint TEXT NOT NULL,
            state TEXT NOT NULL,
            owner TEXT NOT NULL,
            lease_until TEXT NOT NULL,
            created_at TEXT NOT NULL,
            expires_at TEXT NOT NULL,
            status INTEGER,
            headers TEXT,
            body BLOB,
            PRIMARY KEY (tenant, key)
        );
        CREATE INDEX idempotency_keys_expiry ON idempotency_keys (expires_at);
        """,
    ),
    (
        4,
        """
        ALTER TABLE payments ADD COLUMN account_code TEXT;
        ALTER TABLE payments ADD COLUMN account_id TEXT;
        CREATE INDEX payments_tenant ON payments (tenant, id) WHERE deleted_at IS NULL;
        """,
    ),
)
