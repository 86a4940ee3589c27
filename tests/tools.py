"""Helpers for tests that need a tool from Debian's packages."""

from __future__ import annotations

import os
from typing import NoReturn

import pytest


def missing_tool(reason: str) -> NoReturn:
    """Skip on a developer's machine that lacks the tool; fail in CI, which installs it, so
    that a missing install step cannot turn a suite green by skipping it."""
    if os.environ.get("CI") == "true":
        pytest.fail(f"CI must install this: {reason}")
    pytest.skip(reason)
