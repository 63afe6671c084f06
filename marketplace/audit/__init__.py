"""Audit log: ``record`` in the caller's transaction, ``verify`` the hash chain."""

from marketplace.audit.service import record, verify

__all__ = ["record", "verify"]
