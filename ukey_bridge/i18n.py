"""The bridge's own texts in Simplified Chinese (default) and English, from TOML catalogs
shipped inside the package (``ukey_bridge/locales``); the bridge imports nothing else of the
project, so it carries its own small catalog."""

from __future__ import annotations

import os
import tomllib
from functools import cache
from pathlib import Path

LANGUAGES = ("zh-CN", "en")
DEFAULT_LANGUAGE = "zh-CN"


def pick_language(explicit: str | None = None) -> str:
    """--lang, else UKEY_BRIDGE_LANG, else an English system locale, else Chinese."""
    for value in (explicit, os.environ.get("UKEY_BRIDGE_LANG")):
        if value:
            return "en" if value.lower().startswith("en") else DEFAULT_LANGUAGE
    system = os.environ.get("LC_ALL") or os.environ.get("LANG") or ""
    return "en" if system.lower().startswith("en") else DEFAULT_LANGUAGE


@cache
def _catalog(language: str) -> dict[str, str]:
    path = Path(__file__).parent / "locales" / language / "bridge.toml"
    return {k: str(v) for k, v in tomllib.loads(path.read_text("utf-8")).items()}


class Texts:
    def __init__(self, language: str) -> None:
        self.language = language if language in LANGUAGES else DEFAULT_LANGUAGE

    def __call__(self, key: str, **params: object) -> str:
        return _catalog(self.language)[key].format(**params)


CHINESE = Texts(DEFAULT_LANGUAGE)  # what a component speaks unless it is given the user's choice
