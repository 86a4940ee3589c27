"""HTTP plumbing of the platform client: one ``httpx.AsyncClient``, retries, error mapping.

The same code path serves both deployments: in the embedded default the bot passes
``transport=httpx.ASGITransport(app=platform_app)`` and no socket is opened; as separate
services it passes nothing and the client speaks HTTP to ``base_url``.

Every call goes out through one ``_send``, which owns the headers (service key, account token,
idempotency key), the translation of transport failures into ``PlatformUnavailable`` and the
retries: transport failures and 502/503/504 are retried (bounded, exponential backoff with
jitter, through the injected ``sleep``) only when repeating the call cannot do something twice:
idempotent methods, calls that carry an ``Idempotency-Key``, and connection failures (the
request never left). Sub-APIs use the public ``call`` / ``call_raw``; every error names the
method and path that failed. Messages here are for logs: what a user reads comes from the bot's
catalogs, keyed by the error's ``code``.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Self, TypeVar

import httpx
from pydantic import BaseModel, ValidationError

from platform_client.errors import (
    Conflict,
    Forbidden,
    InvalidInput,
    NotAuthenticated,
    NotFound,
    PlatformClientError,
    PlatformUnavailable,
    RateLimited,
    RuleViolation,
    UnexpectedResponse,
)

ACCOUNT_TOKEN_HEADER = "X-Account-Token"  # a header name, not a secret
IDEMPOTENCY_HEADER = "Idempotency-Key"
IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE"})
RETRYABLE_STATUSES = frozenset({502, 503, 504})

ModelT = TypeVar("ModelT", bound=BaseModel)
Params = Mapping[str, str | int | float | bool | None]

_KINDS: dict[str, type[PlatformClientError]] = {
    cls.kind: cls for cls in (InvalidInput, NotAuthenticated, Forbidden, NotFound, Conflict, RuleViolation)
}
_STATUSES: dict[int, type[PlatformClientError]] = {
    400: InvalidInput,
    401: NotAuthenticated,
    403: Forbidden,
    404: NotFound,
    409: Conflict,
    422: InvalidInput,
}


@dataclass(frozen=True)
class RetryPolicy:
    attempts: int = 3
    base_delay: float = 0.2
    max_delay: float = 2.0

    def delay(self, retry: int) -> float:
        # Full jitter: spread the retries of many bot workers after a platform restart.
        return random.uniform(0, min(self.max_delay, self.base_delay * 2**retry))  # noqa: S311


class PlatformTransportClient:
    """Owns the HTTP client and the request template that every sub-API goes through."""

    def __init__(
        self,
        base_url: str,
        service_key: str,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        timeout: float = 10.0,
        retry: RetryPolicy | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self._base_url = base_url.rstrip("/")
        self._service_key = service_key
        self._transport = transport
        self._timeout = timeout
        self._retry = retry or RetryPolicy()
        self._sleep = sleep
        self._http: httpx.AsyncClient | None = None

    async def initialize(self) -> None:
        if self._http is None:
            self._http = httpx.AsyncClient(
                base_url=self._base_url,
                transport=self._transport,
                timeout=self._timeout,
                headers={"Authorization": f"Bearer {self._service_key}", "Accept": "application/json"},
            )

    async def shutdown(self) -> None:
        if self._http is not None:
            http, self._http = self._http, None
            await http.aclose()

    async def __aenter__(self) -> Self:
        await self.initialize()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.shutdown()

    async def call(
        self,
        method: str,
        path: str,
        *,
        account_token: str | None = None,
        json: Any = None,
        params: Params | None = None,
        idempotency_key: str | None = None,
    ) -> Any:
        """One JSON API call; returns its decoded body (``None`` for 204)."""
        query = {k: v for k, v in (params or {}).items() if v is not None}
        response = await self._send(
            method,
            path,
            account_token=account_token,
            idempotency_key=idempotency_key,
            json=json,
            params=query,
        )
        return self._decode(response, method.upper(), path)

    async def call_raw(
        self,
        method: str,
        path: str,
        *,
        account_token: str | None = None,
        headers: Mapping[str, str] | None = None,
        json: Any = None,
        data: Mapping[str, str] | None = None,
        files: Mapping[str, tuple[str, bytes, str]] | None = None,
        params: Mapping[str, str] | None = None,
    ) -> httpx.Response:
        """One call with a multipart body or a non-JSON answer (uploads, PDFs, images).

        An upload (POST) is not repeated; a download (GET) is, like any idempotent call.
        Errors are mapped exactly as for JSON calls.
        """
        response = await self._send(
            method,
            path,
            account_token=account_token,
            headers=headers,
            json=json,
            data=data,
            files=files,
            params=params,
        )
        if not response.is_success:
            raise self._error(response, method.upper(), path)
        return response

    async def _send(
        self,
        method: str,
        path: str,
        *,
        account_token: str | None = None,
        idempotency_key: str | None = None,
        headers: Mapping[str, str] | None = None,
        **content: Any,
    ) -> httpx.Response:
        """The one way out: headers, retries of what is safe to repeat, transport errors.

        Returns the last answer, whatever its status (the callers map error statuses); a call
        that got no answer raises ``PlatformUnavailable`` naming the method and path.
        """
        if self._http is None:
            raise RuntimeError("platform client used before initialize()")
        method = method.upper()
        sent_headers = dict(headers or {})
        if account_token is not None:
            sent_headers[ACCOUNT_TOKEN_HEADER] = account_token
        if idempotency_key is not None:
            sent_headers[IDEMPOTENCY_HEADER] = idempotency_key
        repeatable = method in IDEMPOTENT_METHODS or idempotency_key is not None
        attempt = 0
        while True:
            attempt += 1
            last = attempt >= self._retry.attempts
            try:
                response = await self._http.request(method, path, headers=sent_headers, **content)
            except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
                # The request never left: repeating it cannot do anything twice.
                if last:
                    raise _unreachable(method, path) from exc
            except httpx.TransportError as exc:
                if last or not repeatable:
                    raise _unreachable(method, path) from exc
            else:
                if response.status_code in RETRYABLE_STATUSES and repeatable and not last:
                    await response.aclose()
                else:
                    return response
            await self._sleep(self._retry.delay(attempt - 1))

    def _decode(self, response: httpx.Response, method: str, path: str) -> Any:
        if response.is_success:
            if response.status_code == 204 or not response.content:
                return None
            try:
                return response.json()
            except ValueError as exc:
                raise UnexpectedResponse(
                    "platform answered with a body that is not JSON",
                    status=response.status_code,
                    method=method,
                    path=path,
                ) from exc
        raise self._error(response, method, path)

    @staticmethod
    def _error(response: httpx.Response, method: str, path: str) -> PlatformClientError:
        status = response.status_code
        try:
            body = response.json()
        except ValueError:
            body = None
        code: str | None = None
        message = f"platform answered HTTP {status}"
        details: dict[str, Any] = {}
        kind: str | None = None
        if isinstance(body, dict) and isinstance(body.get("code"), str):
            code = body["code"]
            message = str(body.get("message") or message)
            raw_details = body.get("details")
            details = raw_details if isinstance(raw_details, dict) else {}
            kind = body.get("kind") if isinstance(body.get("kind"), str) else None
        elif isinstance(body, dict) and "detail" in body:
            # FastAPI's own request validation answer.
            code, message, details = (
                "invalid_request",
                "request does not match the API schema",
                {"errors": body["detail"]},
            )
        if status == 429:
            return RateLimited(
                message,
                code=code,
                details=details,
                status=status,
                retry_after=_retry_after(response, details),
                method=method,
                path=path,
            )
        if status >= 500:
            return PlatformUnavailable(
                message,
                code=code or "platform_unavailable",
                details=details,
                status=status,
                method=method,
                path=path,
            )
        error_class = (
            _KINDS.get(kind or "")
            or (RuleViolation if status == 409 and code == RuleViolation.kind else _STATUSES.get(status))
            or PlatformClientError
        )
        return error_class(message, code=code, details=details, status=status, method=method, path=path)


def _unreachable(method: str, path: str) -> PlatformUnavailable:
    return PlatformUnavailable("platform unreachable", code="platform_unreachable", method=method, path=path)


def _retry_after(response: httpx.Response, details: Mapping[str, Any]) -> float | None:
    for raw in (details.get("retry_after"), response.headers.get("Retry-After")):
        try:
            return float(raw) if raw is not None else None
        except (TypeError, ValueError):
            continue
    return None


class SubAPI:
    """Base of ``client.accounts``, ``client.events``, ...: one group of endpoints."""

    def __init__(self, transport: PlatformTransportClient) -> None:
        self._transport = transport

    async def _request(
        self,
        method: str,
        path: str,
        *,
        account_token: str | None = None,
        json: Any = None,
        params: Params | None = None,
        idempotency_key: str | None = None,
    ) -> Any:
        return await self._transport.call(
            method,
            path,
            account_token=account_token,
            json=json,
            params=params,
            idempotency_key=idempotency_key,
        )

    @staticmethod
    def _parse(model: type[ModelT], data: Any) -> ModelT:
        try:
            return model.model_validate(data)
        except ValidationError as exc:
            raise UnexpectedResponse(f"platform answer is not a valid {model.__name__}") from exc
