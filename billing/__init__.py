"""Billing: ledger, fund pools, subsidies, payouts, Stripe, reconciliation.

Built by the billing issue; may import ``marketplace``, never ``web``.
"""
