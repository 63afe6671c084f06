"""Search: one ``SearchBackend`` protocol, an embedded default and Meilisearch.

See docs/search.md for the engine choice, tokenisation, index sync and processes.
"""

from __future__ import annotations

from pathlib import Path

from matching.search.base import (
    JOBS,
    WORKERS,
    IndexSpec,
    SearchBackend,
    SearchDoc,
    SearchError,
    SearchHits,
    SearchQuery,
)

__all__ = [
    "JOBS",
    "WORKERS",
    "IndexSpec",
    "SearchBackend",
    "SearchDoc",
    "SearchError",
    "SearchHits",
    "SearchQuery",
    "open_backend",
]


def open_backend(*, url: str | None, api_key: str | None, var_dir: Path) -> SearchBackend:
    """Meilisearch when a URL is configured, else the embedded index under ``var_dir``."""
    if url:
        from matching.search.meili import MeilisearchBackend

        return MeilisearchBackend(url, api_key)
    from matching.search.embedded import EmbeddedBackend

    return EmbeddedBackend(var_dir / "search")
