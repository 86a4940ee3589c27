"""The platform's exception tree.

Every refusal the platform makes is a ``PlatformError`` with a stable machine code; the REST
layer turns it into a JSON problem body, and ``platform_client`` turns that body back into the
matching client exception. Outside errors (database, crypto, payment SDK) are translated at the
adapter that met them, with ``raise ... from exc``.
"""

from __future__ import annotations

from typing import Any


class PlatformError(Exception):
    """Base of every error the platform reports to a caller."""

    status_code = 400
    code = "platform_error"

    def __init__(self, message: str, *, code: str | None = None, **details: Any) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        self.details = details

    def to_problem(self) -> dict[str, Any]:
        # ``kind`` is the class's own code: two kinds share 409 (Conflict, RuleViolation), and
        # the client must tell them apart whatever the specific code is.
        return {"code": self.code, "kind": type(self).code, "message": self.message, "details": self.details}


class InvalidInput(PlatformError):
    status_code = 422
    code = "invalid_input"


class NotAuthenticated(PlatformError):
    status_code = 401
    code = "not_authenticated"


class Forbidden(PlatformError):
    status_code = 403
    code = "forbidden"


class NotFound(PlatformError):
    """Also what another account's object looks like: existence is not disclosed."""

    status_code = 404
    code = "not_found"


class Conflict(PlatformError):
    status_code = 409
    code = "conflict"


class RuleViolation(PlatformError):
    """A business rule refused the request (renewal window, forbidden transition, ...)."""

    status_code = 409
    code = "rule_violation"


class RateLimited(PlatformError):
    status_code = 429
    code = "rate_limited"


class UpstreamError(PlatformError):
    """A provider the platform depends on (payments, SMS, storage) failed."""

    status_code = 502
    code = "upstream_error"


class PlatformBusy(PlatformError):
    """Every database connection is in use: nothing was done, the same call may succeed soon."""

    status_code = 503
    code = "platform_busy"
