"""Imports every module of the bot, so that the metadata holds every table (for Alembic)."""

from __future__ import annotations

import importlib
import pkgutil

import bot

_SKIP = ("bot.migrations", "bot.testing", "bot.cli", "bot.app", "bot.__main__")


def import_all_models() -> None:
    for info in pkgutil.walk_packages(bot.__path__, "bot."):
        if info.name.startswith(_SKIP) or ".fake_server" in info.name:
            continue
        importlib.import_module(info.name)
