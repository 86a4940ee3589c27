"""Every handler module, gathered for the composition root: flows, menu, intents, catalogs.

A handler module is any module of this package that defines ``FLOWS``; it may also define
``MENU`` (menu items), ``INTENTS`` (free-text phrases per flow) and ``EVENT_HANDLERS`` (status
pushes per event type). Adding a process is adding a module, nothing else.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Awaitable, Callable
from functools import cache
from pathlib import Path
from types import ModuleType
from typing import Any

import handlers
from bot.engine.flow import Flow, FlowRegistry
from bot.engine.i18n import LOCALES as LOCALE_NAMES
from bot.engine.i18n import Catalog
from handlers.menu import Home, MenuItem

LOCALES = Path(__file__).parent / "locales"


@cache
def modules() -> tuple[ModuleType, ...]:
    found = []
    for info in sorted(pkgutil.iter_modules(handlers.__path__), key=lambda i: i.name):
        module = importlib.import_module(f"handlers.{info.name}")
        if hasattr(module, "FLOWS"):
            found.append(module)
    return tuple(found)


def flows() -> FlowRegistry:
    collected: list[Flow] = [flow for module in modules() for flow in module.FLOWS]
    return FlowRegistry(collected)


# Words people use for a process that its module does not list (the README's own "改密码").
SYNONYMS: dict[str, tuple[str, ...]] = {
    "pin_change": ("改密码", "改pin", "重设密码", "change password"),
    "apply_enterprise": ("公章", "企业章", "刻章", "get a company seal"),
    "logout": ("log me out", "退出账号"),
    "invoice": ("发票", "开发票", "要发票", "开个发票", "invoice please", "get an invoice"),
}


def intents() -> dict[str, tuple[str, ...]]:
    """Every module's phrases, the synonyms, and every menu label in every language: a label
    typed as text does what tapping it does."""
    found: dict[str, tuple[str, ...]] = {}
    for module in modules():
        for flow, phrases in getattr(module, "INTENTS", {}).items():
            found[flow] = (*found.get(flow, ()), *phrases)
    for flow, phrases in SYNONYMS.items():
        found[flow] = (*found.get(flow, ()), *phrases)
    catalog = Catalog([LOCALES])
    for item in menu_items():
        labels = {catalog.get(locale, item.label) for locale in LOCALE_NAMES}
        found[item.flow] = (*found.get(item.flow, ()), *labels)
    return found


def menu_items() -> list[MenuItem]:
    return [item for module in modules() for item in getattr(module, "MENU", ())]


def home() -> Home:
    registry = flows()
    titles = {name: flow.title for name in registry.names() if (flow := registry.get(name)) is not None}
    return Home(menu_items(), intents(), titles=titles)


def event_handlers() -> dict[str, Callable[..., Awaitable[Any]]]:
    """Status pushes for events no waiting flow consumed, by event type."""
    found: dict[str, Callable[..., Awaitable[Any]]] = {}
    for module in modules():
        for event_type, handler in getattr(module, "EVENT_HANDLERS", {}).items():
            if event_type in found:
                raise ValueError(f"two handler modules push {event_type}")
            found[event_type] = handler
    return found
