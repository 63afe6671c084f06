"""Which handlers hear which outbox events. The one place packages are joined up."""

from __future__ import annotations

from billing import fees, subsidies
from marketplace.brokers import notify as broker_notify
from marketplace.dispatcher import Registry
from marketplace.notifications import service as notifications
from marketplace.placements import candidates as candidate_prefilter
from marketplace.tasks import service as tasks
from matching.search import SearchBackend
from matching.search import sync as search_sync


def build_registry(search: SearchBackend | None = None) -> Registry:
    registry = Registry()
    for event_name, handler in notifications.HANDLERS.items():
        registry.subscribe(event_name, "notifications", handler)
    for event_name, handler in broker_notify.HANDLERS.items():
        registry.subscribe(event_name, "broker_inbox", handler)
    # The candidate prefilter follows the register (docs/matching.md).
    for event_name, handler in candidate_prefilter.HANDLERS.items():
        registry.subscribe(event_name, "candidates", handler)
    if search is not None:  # the search index follows workers and jobs (docs/search.md)
        for event_name, index_handler in search_sync.handlers(search).items():
            registry.subscribe(event_name, "search", index_handler)
    # An arrears case from the jobs package becomes a rights-protection task.
    registry.subscribe("arrears.opened", "tasks", tasks.on_arrears_opened)
    # Billing: subsidies from tasks, market fees from placements (docs/billing.md).
    for event_name, handler in subsidies.HANDLERS.items():
        registry.subscribe(event_name, "billing", handler)
    registry.subscribe("placement.confirmed", "billing", fees.on_placement_confirmed)
    return registry
