"""Double-entry ledger: accounts, entries, postings (see docs/billing.md)."""
