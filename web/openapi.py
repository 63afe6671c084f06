"""What the OpenAPI document says about errors and authentication.

Every API answer that is not a success goes through ``web.errors`` and has one shape
(``ErrorBody``); the document declares that shape for each refusal an operation can
give, and which operations need the bearer token, so clients (and schemathesis)
can hold the API to it.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from litestar import Litestar
from litestar.handlers import HTTPRouteHandler
from litestar.openapi.datastructures import ResponseSpec
from litestar.openapi.spec import Components, SecurityScheme
from litestar.routes import HTTPRoute
from litestar.types import Empty

from web.auth import API_PREFIX, requires_login
from web.errors import STATUS_WORDS

BEARER = "BearerToken"


@dataclass
class FieldError:
    field: str
    message: str


@dataclass
class ErrorBody:
    """A refusal: ``detail`` in words, ``field`` names the input at fault if one is."""

    detail: str
    field: str | None = None
    errors: list[FieldError] = dataclasses.field(default_factory=list)


COMPONENTS = Components(
    security_schemes={
        BEARER: SecurityScheme(
            type="http", scheme="bearer", description="POST /api/v1/auth/login 返回的 access_token"
        )
    }
)

# Refusals any API operation can give: bad or oversized input (400, 413, 415, 422), no
# or a wrong credential (401: also a failed login), not allowed (403), a missing object
# (404), the method (405), a conflict or lock (409, 423), rate limits (429).
_REFUSALS = (400, 401, 403, 404, 405, 409, 413, 415, 422, 423, 429)


def _error_responses(codes: tuple[int, ...]) -> dict[int, ResponseSpec]:
    return {
        code: ResponseSpec(data_container=ErrorBody, description=STATUS_WORDS[code])
        for code in codes
    }


def document_api(app: Litestar) -> None:
    """Declare error responses and the bearer requirement on every API handler;
    called once while the app is built, before the document is first generated."""
    for route in app.routes:
        if not isinstance(route, HTTPRoute) or not route.path.startswith(API_PREFIX):
            continue
        for handler in route.route_handlers:
            if not isinstance(handler, HTTPRouteHandler):
                continue
            handler.responses = {**_error_responses(_REFUSALS), **(handler.responses or {})}
            # Guards come back wrapped (AsyncCallable) once the app has resolved them.
            guards = [getattr(g, "func", g) for g in handler.resolve_guards()]
            if requires_login in guards:
                handler.security = [{BEARER: []}]
                handler._resolved_security = Empty
