"""Billing settings passed in by ``web`` (``LAOWU_BILLING_*``); plain values here."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class BillingConfig:
    # Any appropriation above this waits for a second finance user (maker-checker);
    # transfers between pools always do.
    approval_threshold_fen: int = 10_000_000  # ¥100,000
    # What makes a pending subsidy payable (docs/billing.md, "Payable"):
    # "assessment": the broker's assessment for the month the task was approved in is
    # done and passed (docs/scoring.md) — what the server uses unless told otherwise;
    # "days": payable after N days without a failed spot check (a failed one voids the
    # subsidy via task.reversed) — the rule for a deployment that does not score.
    payable_gate: str = "days"
    payable_after_days: int = 30
    # The broker's part of a placement fee, in basis points of the fee.
    broker_fee_share_bp: int = 3_000


DEFAULT = BillingConfig()
