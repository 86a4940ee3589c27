"""Imports every module that puts tables on the bot's metadata (for Alembic): the bot
package and the scheduler, whose delivery records live in the bot's database."""

from __future__ import annotations

import importlib
import pkgutil

import bot
import scheduler

_SKIP = ("bot.migrations", "bot.testing", "bot.cli", "bot.app", "bot.__main__")


def import_all_models() -> None:
    for info in pkgutil.walk_packages(bot.__path__, "bot."):
        if info.name.startswith(_SKIP) or ".fake_server" in info.name:
            continue
        importlib.import_module(info.name)
    for info in pkgutil.walk_packages(scheduler.__path__, "scheduler."):
        if not info.name.startswith("scheduler.cli"):
            importlib.import_module(info.name)
