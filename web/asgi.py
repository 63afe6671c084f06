"""ASGI entry point for uvicorn: ``uvicorn --factory web.asgi:build``."""

from litestar import Litestar

from web.app import create_app
from web.ops.observability import configure_logging
from web.settings import get_settings


def build() -> Litestar:
    configure_logging(force=False)  # also in each process uvicorn spawns for --workers
    return create_app(get_settings())
