"""Security headers of the bot's pages: the shared middleware (``observability.security_headers``),
which the separately run platform uses too."""

from observability.security_headers import DEFAULT_CSP, SecurityHeaders, security_headers

__all__ = ["DEFAULT_CSP", "SecurityHeaders", "security_headers"]
