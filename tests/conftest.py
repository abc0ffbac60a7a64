"""Shared pytest configuration: command-line options and fixtures used across test directories."""

from __future__ import annotations

import pytest

# -- codegen golden files (tests/golden) ----------------------------------------------------------
# `pytest tests/golden --update-golden` rewrites the generated files next to tests/golden/decls.
# Other options go into this same pytest_addoption hook (pytest allows one per conftest).


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--update-golden", action="store_true", default=False,
                     help="rewrite the expected files of tests/golden from the current code generator")


@pytest.fixture
def update_golden(request: pytest.FixtureRequest) -> bool:
    """True when pytest runs with --update-golden."""
    return bool(request.config.getoption("--update-golden"))
