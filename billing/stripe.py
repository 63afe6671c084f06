"""Stripe's REST API spoken directly with httpx (no SDK), and webhook signatures.

- Parameters are form-encoded the way Stripe expects nested values:
  ``metadata[placement_id]=3``, ``items[0][price]=…``, booleans as ``true``/``false``.
- Every POST carries an ``Idempotency-Key`` (given, or generated once per call and
  reused by its retries), so a retried request never charges twice.
- Retries with jittered exponential backoff on connection errors and timeouts, 409
  (a concurrent request with the same key), 429 and 5xx — unless Stripe answers
  ``Stripe-Should-Retry: false``; ``Stripe-Should-Retry: true`` retries any status.
- Webhooks: ``Stripe-Signature: t=…,v1=…`` is HMAC-SHA256 over ``{t}.{payload}``
  with the endpoint secret, compared in constant time, refused outside 300 s.

Nothing here knows about workers: callers send amounts, currency and our own ids.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import random
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import httpx

DEFAULT_TOLERANCE = 300
RETRY_STATUSES = frozenset({409, 429})


class StripeError(Exception):
    """Stripe refused or could not be reached; ``status`` is None for network errors."""

    def __init__(self, message: str, *, status: int | None = None, code: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code


class SignatureError(ValueError):
    """A webhook whose signature does not check out."""


def encode_form(params: Mapping[str, Any], prefix: str = "") -> list[tuple[str, str]]:
    """Nested dicts and lists as Stripe's bracketed form keys; None is left out."""
    pairs: list[tuple[str, str]] = []
    for key, value in params.items():
        name = f"{prefix}[{key}]" if prefix else str(key)
        pairs.extend(_encode_value(name, value))
    return pairs


def _encode_value(name: str, value: Any) -> list[tuple[str, str]]:
    if value is None:
        return []
    if isinstance(value, Mapping):
        return encode_form(value, name)
    if isinstance(value, list | tuple):
        out: list[tuple[str, str]] = []
        for i, item in enumerate(value):
            out.extend(_encode_value(f"{name}[{i}]", item))
        return out
    if isinstance(value, bool):
        return [(name, "true" if value else "false")]
    return [(name, str(value))]


@dataclass(frozen=True)
class RetryPolicy:
    max_retries: int = 3
    base_delay: float = 0.5
    max_delay: float = 8.0

    def delay(self, attempt: int, rng: Callable[[], float] = random.random) -> float:
        """Full-range jitter between half and all of the exponential step."""
        step = min(self.max_delay, self.base_delay * (2**attempt))
        return step * (0.5 + rng() / 2)


class StripeClient:
    def __init__(
        self,
        *,
        api_key: str,
        api_base: str = "https://api.stripe.com",
        timeout: float = 20.0,
        retry: RetryPolicy | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self._client = httpx.AsyncClient(
            base_url=api_base.rstrip("/"),
            auth=(api_key, ""),
            timeout=httpx.Timeout(timeout, connect=min(timeout, 5.0)),
            transport=transport,
            headers={"Stripe-Version": "2024-06-20"},
        )
        self._retry = retry or RetryPolicy()
        self._sleep = sleep

    async def aclose(self) -> None:
        await self._client.aclose()

    async def __aenter__(self) -> StripeClient:
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.aclose()

    async def request(
        self,
        method: str,
        path: str,
        params: Mapping[str, Any] | None = None,
        *,
        idempotency_key: str | None = None,
    ) -> dict[str, Any]:
        headers = {}
        form = encode_form(params or {})
        query = httpx.QueryParams(urlencode(form))
        if method == "POST":
            headers["Idempotency-Key"] = idempotency_key or str(uuid.uuid4())
        attempt = 0
        while True:
            try:
                if method == "GET":
                    response = await self._client.get(path, params=query, headers=headers)
                else:
                    response = await self._client.request(
                        method,
                        path,
                        content=urlencode(form).encode(),
                        headers={**headers, "Content-Type": "application/x-www-form-urlencoded"},
                    )
            except httpx.TransportError as exc:  # connection refused, reset, timeouts
                if attempt >= self._retry.max_retries:
                    raise StripeError(f"Stripe 无法连接：{exc!r}") from exc
                await self._sleep(self._retry.delay(attempt))
                attempt += 1
                continue
            if response.status_code < 300:
                body: dict[str, Any] = response.json()
                return body
            if attempt < self._retry.max_retries and _should_retry(response):
                await self._sleep(self._retry.delay(attempt))
                attempt += 1
                continue
            raise _error(response)

    # --- the calls we use --------------------------------------------------------------

    async def create_payment_intent(
        self, params: Mapping[str, Any], *, idempotency_key: str
    ) -> dict[str, Any]:
        return await self.request(
            "POST", "/v1/payment_intents", params, idempotency_key=idempotency_key
        )

    async def retrieve_payment_intent(self, intent_id: str) -> dict[str, Any]:
        return await self.request("GET", f"/v1/payment_intents/{intent_id}")

    async def create_refund(
        self, payment_intent: str, amount: int, *, idempotency_key: str
    ) -> dict[str, Any]:
        return await self.request(
            "POST",
            "/v1/refunds",
            {"payment_intent": payment_intent, "amount": amount},
            idempotency_key=idempotency_key,
        )

    async def update_payment_intent(
        self, intent_id: str, params: Mapping[str, Any], *, idempotency_key: str
    ) -> dict[str, Any]:
        return await self.request(
            "POST", f"/v1/payment_intents/{intent_id}", params, idempotency_key=idempotency_key
        )

    async def confirm_payment_intent(
        self, intent_id: str, *, idempotency_key: str
    ) -> dict[str, Any]:
        return await self.request(
            "POST", f"/v1/payment_intents/{intent_id}/confirm", idempotency_key=idempotency_key
        )

    async def create_customer(
        self, params: Mapping[str, Any], *, idempotency_key: str
    ) -> dict[str, Any]:
        return await self.request("POST", "/v1/customers", params, idempotency_key=idempotency_key)

    async def create_setup_intent(
        self, params: Mapping[str, Any], *, idempotency_key: str
    ) -> dict[str, Any]:
        return await self.request(
            "POST", "/v1/setup_intents", params, idempotency_key=idempotency_key
        )

    async def retrieve_setup_intent(self, setup_intent_id: str) -> dict[str, Any]:
        return await self.request("GET", f"/v1/setup_intents/{setup_intent_id}")

    async def retrieve_charge(self, charge_id: str) -> dict[str, Any]:
        return await self.request("GET", f"/v1/charges/{charge_id}")

    async def charge_refunds(self, charge_id: str) -> list[dict[str, Any]]:
        """Every refund of one charge (a charge has few: one page of 100)."""
        page = await self.request("GET", "/v1/refunds", {"charge": charge_id, "limit": 100})
        return list(page.get("data", []))

    async def balance_transactions(
        self, *, created_gte: int, created_lt: int, page_size: int = 100
    ) -> AsyncIterator[dict[str, Any]]:
        """Every balance transaction created in [gte, lt). Lists come newest first, so
        paging stops at the first one older than ``gte``; the window is filtered here
        (localstripe does not know the ``created`` filter)."""
        after: str | None = None
        while True:
            page = await self.request(
                "GET",
                "/v1/balance_transactions",
                {"limit": page_size, "starting_after": after},
            )
            items = page.get("data", [])
            for item in items:
                created = int(item.get("created") or 0)
                if created < created_gte:
                    return
                if created < created_lt:
                    yield item
            if not page.get("has_more") or not items:
                return
            after = items[-1]["id"]


def _should_retry(response: httpx.Response) -> bool:
    hint = response.headers.get("Stripe-Should-Retry")
    if hint == "true":
        return True
    if hint == "false":
        return False
    return response.status_code in RETRY_STATUSES or response.status_code >= 500


def _error(response: httpx.Response) -> StripeError:
    try:
        err = response.json().get("error", {})
    except ValueError:
        err = {}
    return StripeError(
        str(err.get("message") or f"Stripe 返回 {response.status_code}"),
        status=response.status_code,
        code=err.get("code"),
    )


def sign(payload: bytes, secret: str, timestamp: int) -> str:
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + payload, hashlib.sha256)
    return f"t={timestamp},v1={mac.hexdigest()}"


def verify(
    payload: bytes,
    header: str | None,
    secret: str,
    *,
    tolerance: int = DEFAULT_TOLERANCE,
    now: float | None = None,
) -> dict[str, Any]:
    """The event, if ``header`` signs ``payload`` with ``secret`` within ``tolerance``."""
    if not header:
        raise SignatureError("缺少 Stripe-Signature 请求头")
    timestamp: int | None = None
    signatures: list[str] = []
    for part in header.split(","):
        key, _, value = part.strip().partition("=")
        if key == "t" and value.isdigit():
            timestamp = int(value)
        elif key == "v1":
            signatures.append(value)
    if timestamp is None or not signatures:
        raise SignatureError("Stripe-Signature 格式不对")
    expected = hmac.new(
        secret.encode(), f"{timestamp}.".encode() + payload, hashlib.sha256
    ).hexdigest()
    if not any(hmac.compare_digest(expected, s) for s in signatures):
        raise SignatureError("Stripe-Signature 签名不符")
    current = time.time() if now is None else now
    if abs(current - timestamp) > tolerance:
        raise SignatureError("Stripe-Signature 时间戳超出允许范围")
    try:
        event: dict[str, Any] = json.loads(payload)
    except ValueError as exc:
        raise SignatureError("事件内容不是 JSON") from exc
    return event
