"""The home page: what each role does first."""

from __future__ import annotations

from typing import Any

from litestar import Request, get
from litestar.response import Template

from web.auth import requires_login
from web.deps import Db
from web.pages.base import render


@get("/", guards=[requires_login], include_in_schema=False)
async def home(request: Request[Any, Any, Any], db: Db) -> Template:
    return await render(request, db, "home.html")
