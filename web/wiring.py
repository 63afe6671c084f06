"""Which handlers hear which outbox events. The one place packages are joined up."""

from __future__ import annotations

from billing import fees, subsidies
from marketplace.dispatcher import Registry
from marketplace.notifications import service as notifications


def build_registry() -> Registry:
    registry = Registry()
    for event_name, handler in notifications.HANDLERS.items():
        registry.subscribe(event_name, "notifications", handler)
    # Billing: subsidies from tasks, market fees from placements (docs/billing.md).
    for event_name, handler in subsidies.HANDLERS.items():
        registry.subscribe(event_name, "billing", handler)
    registry.subscribe("placement.confirmed", "billing", fees.on_placement_confirmed)
    return registry
