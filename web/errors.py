"""One place that turns errors into responses: JSON for the API, pages for people.

Every 4xx body says in words what was wrong and, where a field is at fault, which.
A refused write by a known user is audited in its own transaction (the request's
own transaction has been rolled back).
"""

from __future__ import annotations

import logging
import re
from typing import Any
from urllib.parse import quote

from litestar import MediaType, Request, Response
from litestar.exceptions import (
    HTTPException,
    NotAuthorizedException,
    PermissionDeniedException,
    ValidationException,
)
from litestar.response import Redirect, Template
from litestar.status_codes import HTTP_500_INTERNAL_SERVER_ERROR
from litestar.types import Scope
from sqlalchemy.exc import DBAPIError

from marketplace import audit
from marketplace.db import unit_of_work
from marketplace.errors import DomainError
from web.auth import API_PREFIX, Principal

log = logging.getLogger(__name__)

STATUS_WORDS = {
    400: "请求有误",
    401: "请先登录",
    403: "无权进行此操作",
    404: "未找到",
    405: "不支持此请求方法",
    409: "与现有数据冲突",
    413: "上传内容过大",
    415: "不支持的内容类型",
    422: "输入有误",
    423: "账号已锁定",
    429: "请求过于频繁，请稍后再试",
}


# Litestar's own English phrases (routing, body parsing), said in Chinese.
LITESTAR_PHRASES = {
    "JSON is malformed": "请求体不是有效的 JSON",
    "Not Found": "未找到",
    "Method Not Allowed": "不支持此请求方法",
    "Request Entity Too Large": "上传内容过大",
    "Unsupported Media Type": "不支持的内容类型",
}

_NUMBER = r"(-?[\d.]+)"
# Validation messages from pydantic (bodies) and msgspec (query and path parameters),
# by pattern; the field name is reported beside the message, never inside it.
VALIDATION_PHRASES: list[tuple[re.Pattern[str], str]] = [
    (re.compile(p), words)
    for p, words in [
        (r"^Field required", "必填"),
        (r"^Missing required", "必填"),
        (r"^String should have at least (\d+) characters?", "至少 {0} 个字符"),
        (r"^String should have at most (\d+) characters?", "最多 {0} 个字符"),
        (r"^Expected `str` of length >= (\d+)", "至少 {0} 个字符"),
        (r"^Expected `str` of length <= (\d+)", "最多 {0} 个字符"),
        (r"^(String should match pattern|Expected `str` matching regex)", "格式不正确"),
        (rf"^Input should be greater than or equal to {_NUMBER}", "不能小于 {0}"),
        (rf"^Input should be greater than {_NUMBER}", "必须大于 {0}"),
        (rf"^Input should be less than or equal to {_NUMBER}", "不能大于 {0}"),
        (rf"^Input should be less than {_NUMBER}", "必须小于 {0}"),
        (rf"^Expected `(?:int|float)` >= {_NUMBER}", "不能小于 {0}"),
        (rf"^Expected `(?:int|float)` > {_NUMBER}", "必须大于 {0}"),
        (rf"^Expected `(?:int|float)` <= {_NUMBER}", "不能大于 {0}"),
        (rf"^Expected `(?:int|float)` < {_NUMBER}", "必须小于 {0}"),
        (r"^(Input should be a valid integer|Expected `int`)", "应为整数"),
        (r"^(Input should be a valid number|Expected `float`)", "应为数字"),
        (r"^(Input should be a valid boolean|Expected `bool`)", "应为 true 或 false"),
        (r"^(Input should be a valid string|Expected `str`)", "应为文本"),
        (r"^(Input should be a valid list|Expected `array`)", "应为列表"),
        (r"^Input should be a valid (datetime|date)", "应为日期时间（ISO 8601）"),
        (r"^Input should be a valid dictionary", "应为 JSON 对象"),
        (r"^Input should be ('.+)$", "应为以下之一：{0}"),
        (r"^Extra inputs are not permitted", "不允许此字段"),
        (r"^Value error, (.+)$", "{0}"),
    ]
]


def translate_validation(message: str) -> str:
    """A pydantic or msgspec message in Chinese; unknown English keeps its words."""
    for pattern, words in VALIDATION_PHRASES:
        match = pattern.search(message)
        if match:
            return words.format(*match.groups())
    return message if not message.isascii() else f"格式有误（{message}）"


def _wants_json(request: Request[Any, Any, Any]) -> bool:
    return request.url.path.startswith(API_PREFIX) or request.url.path in ("/healthz", "/readyz")


def _respond(
    request: Request[Any, Any, Any],
    status: int,
    detail: str,
    field: str | None = None,
    extra: dict[str, Any] | None = None,
) -> Response[Any]:
    if _wants_json(request):
        body: dict[str, Any] = {"detail": detail}
        if field:
            body["field"] = field
        if extra:
            body.update(extra)
        return Response(body, status_code=status, media_type=MediaType.JSON)
    if status == 401:
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        return Redirect(f"/login?next={quote(target)}")
    return Template(
        "error.html",
        context={"status": status, "detail": detail, "field": field},
        status_code=status,
    )


REFUSALS = {
    401: "unauthenticated",
    403: "forbidden",
    404: "not_found",
    409: "conflict",
    422: "invalid",
    423: "locked",
    503: "busy",
}


async def audit_refusal(exc: Exception, scope: Scope) -> None:
    """after_exception hook: record a refused write by a known user, in its own
    transaction (the request's own one has been rolled back)."""
    principal = scope.get("user")
    if scope.get("method") in ("GET", "HEAD", "OPTIONS") or not isinstance(principal, Principal):
        return
    if isinstance(exc, DomainError):
        status = exc.status
    elif isinstance(exc, HTTPException):
        status = exc.status_code
    elif isinstance(exc, DBAPIError) and is_busy(exc):
        status = 503
    else:
        status = 500
    if getattr(exc, "keep_changes", False):
        return  # already audited by the domain (failed logins)
    route = scope.get("path_template") or scope.get("path", "")
    params = scope.get("path_params") or {}
    object_id = str(next(iter(params.values()))) if params else None
    try:
        async with unit_of_work(scope["litestar_app"].state.sessions) as session:
            await audit.record(
                session=session,
                actor=principal.actor,
                action=f"{scope.get('method')} {route}"[:64],
                object_type="http",
                object_id=object_id,
                region_code=principal.actor.region_code,
                outcome=REFUSALS.get(status, "error"),
                detail={"status": status},
            )
    except Exception:  # auditing a refusal must never turn it into a 500
        log.exception("could not audit refused request")


def domain_error(request: Request[Any, Any, Any], exc: DomainError) -> Response[Any]:
    return _respond(request, exc.status, exc.message, exc.field)


def _validation_item(error: dict[str, Any]) -> dict[str, str]:
    field = str(error.get("key") or error.get("source") or "")
    message = str(error.get("message", ""))
    if field == "data" and message.strip("'\"") == "data":
        # Litestar's words for a request without a body.
        return {"field": "", "message": "请求体不能为空，应为 JSON 对象"}
    return {"field": field, "message": translate_validation(message)}


def validation_error(request: Request[Any, Any, Any], exc: ValidationException) -> Response[Any]:
    errors = exc.extra if isinstance(exc.extra, list) else []
    items = [_validation_item(e) for e in errors if isinstance(e, dict)]
    field = items[0]["field"] if items else None
    if items:
        detail = "；".join(f"{i['field'] or '请求体'}: {i['message']}" for i in items)
    else:
        detail = exc.detail if exc.detail and not exc.detail.isascii() else "输入有误"
    return _respond(request, 422, detail, field, {"errors": items})


def not_authorized(request: Request[Any, Any, Any], exc: NotAuthorizedException) -> Response[Any]:
    detail = exc.detail if exc.detail and exc.detail != "Unauthorized" else "请先登录"
    response = _respond(request, 401, detail)
    if _wants_json(request):
        response.headers["WWW-Authenticate"] = "Bearer"
    return response


def permission_denied(
    request: Request[Any, Any, Any], exc: PermissionDeniedException
) -> Response[Any]:
    detail = exc.detail
    if "CSRF" in (detail or ""):
        detail = "页面已过期或请求来源不明（CSRF 校验失败），请刷新页面后重试"
    elif not detail or detail == "Forbidden":
        detail = STATUS_WORDS[403]
    return _respond(request, 403, detail)


def http_error(request: Request[Any, Any, Any], exc: HTTPException) -> Response[Any]:
    status = exc.status_code
    if status >= 500:
        log.error("HTTP %s on %s: %s", status, request.url.path, exc.detail)
        return _respond(request, status, "服务暂时不可用，请稍后再试")
    detail = exc.detail
    if not detail or detail.isascii():
        detail = next(
            (
                words
                for phrase, words in LITESTAR_PHRASES.items()
                if (detail or "").startswith(phrase)
            ),
            STATUS_WORDS.get(status, "请求有误"),
        )
    response = _respond(request, status, detail)
    for name, value in (exc.headers or {}).items():
        response.headers[name] = value  # Retry-After on a 429, Allow on a 405
    return response


# PostgreSQL's "character not in repertoire": text holding a NUL (\0), which
# PostgreSQL cannot store and SQLite can. Found by fuzzing: any text field, query or
# login name with a \0 was a 500 on PostgreSQL.
_NUL_SQLSTATE = "22021"


# A write that could not get its lock in time, or lost a conflict, was rolled back
# whole: saying "busy, try again" is the truth and retrying is safe. SQLite says
# "database is locked" once its busy timeout runs out (several writers at once, found
# by tests/resilience); PostgreSQL reports lock timeouts (55P03), serialization
# failures (40001) and deadlocks (40P01).
_BUSY_SQLSTATES = frozenset({"55P03", "40001", "40P01"})
_BUSY_SQLITE = ("database is locked", "database table is locked", "database is busy")
RETRY_AFTER_BUSY = 1  # seconds


def is_busy(exc: DBAPIError) -> bool:
    if getattr(exc.orig, "sqlstate", None) in _BUSY_SQLSTATES:
        return True
    return any(words in str(exc.orig).lower() for words in _BUSY_SQLITE)


def database_error(request: Request[Any, Any, Any], exc: DBAPIError) -> Response[Any]:
    if getattr(exc.orig, "sqlstate", None) == _NUL_SQLSTATE:
        return _respond(request, 422, "输入中含有空字符（\\0）或无效字符，请删除后重试")
    if is_busy(exc):
        log.warning("database busy on %s %s: %s", request.method, request.url.path, exc.orig)
        response = _respond(request, 503, "系统繁忙，本次操作未保存，请稍后重试")
        response.headers["Retry-After"] = str(RETRY_AFTER_BUSY)
        return response
    return server_error(request, exc)


def server_error(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    log.exception("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    return _respond(request, HTTP_500_INTERNAL_SERVER_ERROR, "服务器内部错误，已记录，请稍后再试")


EXCEPTION_HANDLERS: dict[Any, Any] = {
    DomainError: domain_error,
    ValidationException: validation_error,
    NotAuthorizedException: not_authorized,
    PermissionDeniedException: permission_denied,
    HTTPException: http_error,
    DBAPIError: database_error,
    Exception: server_error,
}
