"""Which handlers hear which outbox events. The one place packages are joined up."""

from __future__ import annotations

from marketplace.dispatcher import Registry
from marketplace.notifications import service as notifications


def build_registry() -> Registry:
    registry = Registry()
    for event_name, handler in notifications.HANDLERS.items():
        registry.subscribe(event_name, "notifications", handler)
    return registry
