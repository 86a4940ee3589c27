"""Message catalogs: every user-facing string lives in TOML files, zh-CN first, English second.

A catalog directory holds one folder per locale (``zh-CN``, ``en``) with one TOML file per
namespace; ``flow.ask_phone`` is key ``ask_phone`` of ``flow.toml``. Several directories can be
loaded (the engine's own, the handlers'), so each package keeps its text next to its code.
A key missing in English falls back to Chinese; a key missing everywhere is a bug and raises in
tests (``strict``) while production shows the key rather than crash a conversation.
"""

from __future__ import annotations

import tomllib
from collections.abc import Iterable
from pathlib import Path
from string import Formatter
from typing import Any

DEFAULT_LOCALE = "zh-CN"
LOCALES = ("zh-CN", "en")


def normalise_locale(hint: str | None) -> str:
    """Map a channel's language hint (``en-US``, ``zh_CN``, ``zh-hans``) to a catalog locale."""
    if not hint:
        return DEFAULT_LOCALE
    return "en" if hint.lower().replace("_", "-").startswith("en") else DEFAULT_LOCALE


class MissingMessage(KeyError):
    pass


class Catalog:
    def __init__(self, directories: Iterable[Path], *, strict: bool = False) -> None:
        self.strict = strict
        self._messages: dict[str, dict[str, str]] = {loc: {} for loc in LOCALES}
        for directory in directories:
            self._load(directory)

    def _load(self, directory: Path) -> None:
        for locale in LOCALES:
            folder = directory / locale
            if not folder.is_dir():
                continue
            for path in sorted(folder.glob("*.toml")):
                with path.open("rb") as fh:
                    table = tomllib.load(fh)
                for key, value in _flatten(table):
                    full = f"{path.stem}.{key}"
                    if full in self._messages[locale]:
                        raise ValueError(f"duplicate catalog key {full} in {path}")
                    self._messages[locale][full] = value

    def has(self, key: str) -> bool:
        return key in self._messages[DEFAULT_LOCALE]

    def keys(self, locale: str = DEFAULT_LOCALE) -> set[str]:
        return set(self._messages[locale])

    def get(self, locale: str, key: str, **params: Any) -> str:
        template = self._messages.get(locale, {}).get(key) or self._messages[DEFAULT_LOCALE].get(key)
        if template is None:
            if self.strict:
                raise MissingMessage(key)
            return key
        if not params:
            return template
        try:
            return template.format(**params)
        except (KeyError, IndexError, ValueError) as exc:
            if self.strict:
                raise MissingMessage(f"{key}: bad parameters {sorted(params)}") from exc
            return template

    def placeholders(self, locale: str, key: str) -> set[str]:
        template = self._messages[locale].get(key, "")
        return {name for _, name, _, _ in Formatter().parse(template) if name}


def _flatten(table: dict[str, Any], prefix: str = "") -> Iterable[tuple[str, str]]:
    for key, value in table.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            yield from _flatten(value, f"{name}.")
        else:
            yield name, str(value)


class Translator:
    """The catalog bound to one user's locale; what flow code calls as ``ctx.t``."""

    def __init__(self, catalog: Catalog, locale: str) -> None:
        self.catalog = catalog
        self.locale = locale

    def __call__(self, key: str, **params: Any) -> str:
        return self.catalog.get(self.locale, key, **params)
