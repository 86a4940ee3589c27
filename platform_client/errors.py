"""Exceptions of the platform client, mirroring the platform's error kinds.

Every error carries the platform's machine ``code`` (what the bot turns into user text with its
own catalogs), ``details``, the HTTP ``status`` and the ``method`` and ``path`` of the call.
Transport failures become ``PlatformUnavailable``.
"""

from __future__ import annotations

from typing import Any


class PlatformClientError(Exception):
    kind = "platform_error"

    def __init__(
        self,
        message: str,
        *,
        code: str | None = None,
        details: dict[str, Any] | None = None,
        status: int = 0,
        method: str = "",
        path: str = "",
    ) -> None:
        super().__init__(message)
        self.message = message
        self.code = code or self.kind
        self.details = details or {}
        self.status = status
        # Which call failed, for the log line (``POST /v1/accounts``).
        self.method = method
        self.path = path

    def __str__(self) -> str:
        call = f"{self.method} {self.path}: " if self.method else ""
        return f"{call}{self.message} [{self.code}]"

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(code={self.code!r}, status={self.status}, method={self.method!r}, "
            f"path={self.path!r}, message={self.message!r})"
        )


class InvalidInput(PlatformClientError):
    kind = "invalid_input"


class NotAuthenticated(PlatformClientError):
    kind = "not_authenticated"


class Forbidden(PlatformClientError):
    kind = "forbidden"


class NotFound(PlatformClientError):
    kind = "not_found"


class Conflict(PlatformClientError):
    kind = "conflict"


class RuleViolation(Conflict):
    """A business rule refused the request; a kind of conflict with the current state."""

    kind = "rule_violation"


class RateLimited(PlatformClientError):
    kind = "rate_limited"

    def __init__(
        self,
        message: str,
        *,
        code: str | None = None,
        details: dict[str, Any] | None = None,
        status: int = 429,
        retry_after: float | None = None,
        method: str = "",
        path: str = "",
    ) -> None:
        super().__init__(message, code=code, details=details, status=status, method=method, path=path)
        self.retry_after = retry_after


class PlatformUnavailable(PlatformClientError):
    """The platform could not be reached or failed; the same call may succeed later."""

    kind = "platform_unavailable"


class UnexpectedResponse(PlatformClientError):
    """The platform answered with something this client does not understand (a version skew)."""

    kind = "unexpected_response"
