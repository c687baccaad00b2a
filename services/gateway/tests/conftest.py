"""Tokens shaped like identity's, for the gateway's tests."""

from __future__ import annotations

import pytest

from petportal_devkit.tokens import TokenMinter


@pytest.fixture(scope="session")
def keys() -> TokenMinter:
    return TokenMinter()
