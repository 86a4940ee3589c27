"""The deployment recipe in deploy/ stays in step with the package and its settings.

Docker cannot run on the CI machine, so the image is not built here; what can drift is checked
by reading the files: the Dockerfile installs the package the tests install (every package
directory, the project itself, the Debian font scripts/serve installs), and every setting the
compose file and the systemd units set is one the services read.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import yaml

from bot.settings import Settings
from seal_platform.settings import PlatformSettings

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"


def _pyproject() -> dict[str, object]:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


def _packages() -> list[str]:
    include = _pyproject()["tool"]["setuptools"]["packages"]["find"]["include"]  # type: ignore[index]
    return sorted(pattern.rstrip("*") for pattern in include)


def test_the_image_copies_every_package_and_installs_the_project() -> None:
    dockerfile = (DEPLOY / "Dockerfile").read_text()
    copied = set(re.findall(r"^COPY (\w+) \./\1$", dockerfile, flags=re.MULTILINE))
    assert copied == set(_packages())
    assert "COPY pyproject.toml README.md ./" in dockerfile
    assert "pip wheel --no-cache-dir --wheel-dir /wheels ." in dockerfile
    assert "pip install --no-cache-dir /wheels/*.whl" in dockerfile


def test_the_image_has_the_debian_packages_the_service_needs() -> None:
    serve = (ROOT / "scripts" / "serve").read_text()
    needed = re.search(r"system-deps\.sh (.+)$", serve, flags=re.MULTILINE)
    assert needed is not None
    dockerfile = (DEPLOY / "Dockerfile").read_text()
    for package in needed.group(1).split():
        assert package in dockerfile, f"{package} is installed by scripts/serve but not in the image"


def test_the_commands_the_recipe_runs_are_entry_points_of_the_package() -> None:
    scripts = _pyproject()["project"]["scripts"]  # type: ignore[index]
    compose = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    commands = {service["command"][0] for service in compose["services"].values() if "command" in service}
    units = [path.read_text() for path in (DEPLOY / "systemd").glob("*.service")]
    commands |= {m.split("/")[-1] for unit in units for m in re.findall(r"^ExecStart=(\S+)", unit, re.M)}
    commands -= {"redis-server", "sh"}
    assert commands <= set(scripts), commands - set(scripts)  # type: ignore[arg-type]


def _known(prefix: str) -> set[str]:
    model = Settings if prefix == "SEALBOT_" else PlatformSettings
    return {prefix + name.upper() for name in model.model_fields}


def _recipe_settings() -> set[str]:
    """Every SEALBOT_/PLATFORM_ setting the compose file, the units, the image and the example
    environment file set."""
    compose = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    names = {name for service in compose["services"].values() for name in service.get("environment") or {}}
    names |= set(compose["x-bot-env"])
    for unit in (DEPLOY / "systemd").glob("*.service"):
        names |= set(re.findall(r"^Environment=(\w+)=", unit.read_text(), flags=re.MULTILINE))
    names |= set(re.findall(r"\b((?:SEALBOT|PLATFORM)_\w+)=", (DEPLOY / "Dockerfile").read_text()))
    names |= set(re.findall(r"^(\w+)=", (DEPLOY / "sealbot.env.example").read_text(), flags=re.MULTILINE))
    return {name for name in names if name.startswith(("SEALBOT_", "PLATFORM_"))}


def test_the_deploy_page_names_every_setting_a_multi_host_deployment_needs() -> None:
    page = (ROOT / "docs" / "deploy.md").read_text()
    named = set(re.findall(r"`((?:SEALBOT|PLATFORM)_[A-Z0-9_]+)`", page))
    # What the recipes set, and what makes files and the CA shared (not set by the recipes,
    # because "auto" picks the database on PostgreSQL).
    needed = _recipe_settings() | {
        "SEALBOT_STORAGE_BACKEND",
        "PLATFORM_STORAGE_BACKEND",
        "SEALBOT_SECRET_KEY",
        "PLATFORM_SECRET_KEY",
    }
    needed |= {
        f"{prefix}_S3_{part}"
        for prefix in ("SEALBOT", "PLATFORM")
        for part in ("ENDPOINT_URL", "BUCKET", "REGION", "ACCESS_KEY", "SECRET_KEY")
    }
    assert needed - named == set()
    assert named - _known("SEALBOT_") - _known("PLATFORM_") == set(), "the page names a setting nobody reads"


def test_every_setting_the_recipe_sets_is_read_by_the_services() -> None:
    compose = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    names = {name for service in compose["services"].values() for name in service.get("environment") or {}}
    names |= set(compose["x-bot-env"])
    for unit in (DEPLOY / "systemd").glob("*.service"):
        names |= set(re.findall(r"^Environment=(\w+)=", unit.read_text(), flags=re.MULTILINE))
    dockerfile = (DEPLOY / "Dockerfile").read_text()
    names |= set(re.findall(r"\b((?:SEALBOT|PLATFORM)_\w+)=", dockerfile))
    ours = {name for name in names if name.startswith(("SEALBOT_", "PLATFORM_"))}
    unknown = ours - _known("SEALBOT_") - _known("PLATFORM_")
    assert unknown == set()
