"""Fixtures shared by the unit tests."""

from __future__ import annotations

import pytest

from beras import config


@pytest.fixture
def float64():
    """Weights created as float64 for the test (the float type restored after it)."""
    previous = config.floatx()
    config.set_floatx("float64")
    yield
    config.set_floatx(previous)
