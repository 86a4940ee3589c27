"""Fixtures shared across test packages, one per concept: the served app
(tests/fixtures/served.py), a SoftHSM2 token (tests/softhsm_fixtures.py). A staff member and a
produced seal are helpers (tests/fixtures/staff.py, tests/fixtures/seals.py ``produced_seal``)
because each package brings its own platform to make them on."""

pytest_plugins = ["tests.fixtures.served", "tests.softhsm_fixtures"]
