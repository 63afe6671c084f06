"""Liveness and readiness for load balancers and orchestration."""

from __future__ import annotations

from typing import Any

from litestar import Request, Response, get
from litestar.status_codes import HTTP_503_SERVICE_UNAVAILABLE

from web.migrate import current_revision, head_revision


@get("/healthz", tags=["运维"])
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@get("/readyz", tags=["运维"])
async def readyz(request: Request[Any, Any, Any]) -> Response[dict[str, Any]]:
    """数据库可达且迁移为最新时返回 200。"""
    try:
        current = await current_revision(request.app.state.engine)
    except Exception as exc:  # any failure to reach the database means not ready
        body = {"status": "unavailable", "detail": f"数据库不可达：{type(exc).__name__}"}
        return Response(body, status_code=HTTP_503_SERVICE_UNAVAILABLE)
    head = head_revision()
    if current != head:
        body = {"status": "unavailable", "detail": f"数据库迁移不是最新（{current} ≠ {head}）"}
        return Response(body, status_code=HTTP_503_SERVICE_UNAVAILABLE)
    return Response({"status": "ok", "revision": current})
