"""What an operator reads when a setting does not validate: one line naming the variable.

Shared by both programs (``sealbot`` and ``sealbot-platform``), each of which raises its own
error with the line: pydantic's report is several lines long and names the field, not the
environment variable the operator set.
"""

from __future__ import annotations

from pydantic import ValidationError


def first_problem(exc: ValidationError, prefix: str) -> str:
    """``<PREFIX><FIELD>: <what is wrong>`` for the first error of ``exc``."""
    first = exc.errors()[0]
    name = prefix + str(first["loc"][0]).upper() if first["loc"] else f"{prefix.rstrip('_')} settings"
    return f"{name}: {first['msg']}"
