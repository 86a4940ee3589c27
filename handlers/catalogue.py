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


def home() -> Home:
    items: list[MenuItem] = [item for module in modules() for item in getattr(module, "MENU", ())]
    intents: dict[str, tuple[str, ...]] = {}
    for module in modules():
        for flow, phrases in getattr(module, "INTENTS", {}).items():
            intents[flow] = (*intents.get(flow, ()), *phrases)
    return Home(items, intents)


def event_handlers() -> dict[str, Callable[..., Awaitable[Any]]]:
    """Status pushes for events no waiting flow consumed, by event type."""
    found: dict[str, Callable[..., Awaitable[Any]]] = {}
    for module in modules():
        for event_type, handler in getattr(module, "EVENT_HANDLERS", {}).items():
            if event_type in found:
                raise ValueError(f"two handler modules push {event_type}")
            found[event_type] = handler
    return found
