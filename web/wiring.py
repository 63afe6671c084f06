"""Which handlers hear which outbox events. The one place packages are joined up."""

from __future__ import annotations

from marketplace.dispatcher import Registry
from marketplace.notifications import service as notifications
from marketplace.tasks import service as tasks


def build_registry() -> Registry:
    registry = Registry()
    for event_name, handler in notifications.HANDLERS.items():
        registry.subscribe(event_name, "notifications", handler)
    # An arrears case from the jobs package becomes a rights-protection task.
    registry.subscribe("arrears.opened", "tasks", tasks.on_arrears_opened)
    return registry
