"""Every handler module, gathered for the composition root: flows, menu, intents, catalogs."""

from __future__ import annotations

from pathlib import Path
from types import ModuleType

from bot.engine.flow import Flow, FlowRegistry
from handlers import accounts
from handlers.menu import Home, MenuItem

LOCALES = Path(__file__).parent / "locales"

MODULES: tuple[ModuleType, ...] = (accounts,)


def flows() -> FlowRegistry:
    collected: list[Flow] = [flow for module in MODULES for flow in module.FLOWS]
    return FlowRegistry(collected)


def home() -> Home:
    items: list[MenuItem] = [item for module in MODULES for item in module.MENU]
    intents: dict[str, tuple[str, ...]] = {}
    for module in MODULES:
        intents.update(module.INTENTS)
    return Home(items, intents)
