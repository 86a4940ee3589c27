"""Fixtures shared across test packages: one per concept (docs: tests/fixtures/)."""

pytest_plugins = ["tests.fixtures.served"]
