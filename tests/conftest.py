"""Root test configuration: hypothesis profiles and the ``needs_data`` marker.

Hypothesis profiles: ``dev`` (default: fast), ``ci`` (derandomised, ``deadline=None``,
``print_blob=True``; CI uses it so runs are reproducible and never flaky), ``thorough``
(10x the examples). Select one with ``HYPOTHESIS_PROFILE=ci`` or
``pytest --hypothesis-profile=ci``.

``@pytest.mark.needs_data("mnist")`` (or ``"fashion-mnist"``) marks a test that reads a
real dataset. Where the data is absent the test is skipped with a reason that says how to
provide it (pytest's ``-ra`` summary lists every skip); with ``BERAS_REQUIRE_DATA=1`` (CI
sets it) the same test fails instead, so CI can never pass by skipping them.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from beras.testing.strategies import register_profiles

register_profiles()

#: Where the loaders look besides ``$BERAS_DATA``: Debian's dataset packages install here.
SYSTEM_DATASETS = Path("/usr/share/datasets")

HOW_TO_PROVIDE = {
    "mnist": "set BERAS_DATA to a folder that holds mnist/ (this repository's CI uses "
    "BERAS_DATA=../shared/datasets; see the README's Development section)",
    "fashion-mnist": "install Debian's dataset-fashion-mnist package (it fills "
    f"{SYSTEM_DATASETS}/fashion-mnist) or put fashion-mnist/ in the folder BERAS_DATA names",
}


def dataset_dir(name: str) -> Path | None:
    """The folder holding the real dataset ``name``, as the loaders would find it, or None."""
    roots = [Path(p) for p in os.environ.get("BERAS_DATA", "").split(os.pathsep) if p]
    for root in [*roots, SYSTEM_DATASETS]:
        if (root / name).is_dir():
            return root / name
    return None


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "needs_data(name): the test reads the real dataset `name` (mnist or fashion-mnist); "
        "skipped with a how-to where absent, failed instead when BERAS_REQUIRE_DATA=1",
    )


def _missing_data(item: pytest.Item) -> str | None:
    for marker in item.iter_markers("needs_data"):
        name = marker.args[0]
        if dataset_dir(name) is None:
            return f"real {name} not found: {HOW_TO_PROVIDE[name]}"
    return None


def _is_property_test(item: pytest.Item) -> bool:
    return "tests/property/" in item.nodeid.replace(os.sep, "/")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    # The fast example tests run before the hypothesis property tests, whatever order the
    # tests were named in (mutation testing names each mutant's tests in no fixed order and
    # stops at the first failure). A stable sort: the usual `tests/unit tests/property`
    # order is unchanged.
    items.sort(key=_is_property_test)
    # A skip marker (not pytest.skip() at set-up) so the -ra summary names each test.
    if os.environ.get("BERAS_REQUIRE_DATA") == "1":
        return
    for item in items:
        reason = _missing_data(item)
        if reason is not None:
            item.add_marker(pytest.mark.skip(reason=reason))


def pytest_runtest_setup(item: pytest.Item) -> None:
    reason = _missing_data(item)
    if reason is not None:  # only reached with BERAS_REQUIRE_DATA=1
        pytest.fail(f"BERAS_REQUIRE_DATA=1 but {reason}", pytrace=False)
