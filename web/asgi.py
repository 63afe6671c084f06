"""ASGI entry point for uvicorn: ``uvicorn --factory web.asgi:build``."""

from litestar import Litestar

from web.app import create_app
from web.settings import get_settings


def build() -> Litestar:
    return create_app(get_settings())
