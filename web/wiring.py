"""Which handlers hear which outbox events. The one place packages are joined up."""

from __future__ import annotations

from marketplace.brokers import notify as broker_notify
from marketplace.dispatcher import Registry
from marketplace.notifications import service as notifications


def build_registry() -> Registry:
    registry = Registry()
    for event_name, handler in notifications.HANDLERS.items():
        registry.subscribe(event_name, "notifications", handler)
    for event_name, handler in broker_notify.HANDLERS.items():
        registry.subscribe(event_name, "broker_inbox", handler)
    return registry
