"""Every user-facing string exists in both languages with the same placeholders."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.engine.i18n import DEFAULT_LOCALE, Catalog

REPO = Path(__file__).resolve().parents[2]
SKIP = {".venv", "node_modules", ".git", "var", "build", "dist"}


def catalog_directories() -> list[Path]:
    """Every ``locales`` directory of the repository that holds a zh-CN catalog."""
    found = []
    for path in sorted(REPO.rglob("locales")):
        if SKIP & set(path.relative_to(REPO).parts):
            continue
        if (path / DEFAULT_LOCALE).is_dir():
            found.append(path)
    return found


def test_the_known_catalog_directories_are_found() -> None:
    found = {p.relative_to(REPO).as_posix() for p in catalog_directories()}
    assert {"bot/locales", "tests/engine/locales"} <= found
    if (REPO / "handlers" / "locales").is_dir():
        assert "handlers/locales" in found


@pytest.mark.parametrize("directory", catalog_directories(), ids=lambda p: p.relative_to(REPO).as_posix())
def test_every_chinese_key_exists_in_english_with_the_same_placeholders(directory: Path) -> None:
    catalog = Catalog([directory])
    zh, en = catalog.keys("zh-CN"), catalog.keys("en")
    assert zh, f"{directory} has an empty zh-CN catalog"
    assert sorted(zh - en) == [], "missing in English"
    assert sorted(en - zh) == [], "English keys without a Chinese original"
    mismatched = {
        key: (sorted(catalog.placeholders("zh-CN", key)), sorted(catalog.placeholders("en", key)))
        for key in zh
        if catalog.placeholders("zh-CN", key) != catalog.placeholders("en", key)
    }
    assert mismatched == {}


@pytest.mark.parametrize("directory", catalog_directories(), ids=lambda p: p.relative_to(REPO).as_posix())
def test_every_catalog_file_has_its_counterpart(directory: Path) -> None:
    zh = {p.name for p in (directory / "zh-CN").glob("*.toml")}
    en = {p.name for p in (directory / "en").glob("*.toml")}
    assert zh == en


def test_catalog_directories_do_not_redefine_each_others_keys() -> None:
    # Loading them together (as the bot does) raises on a key defined twice.
    Catalog(catalog_directories())
