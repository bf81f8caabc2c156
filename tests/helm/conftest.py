"""Renders of the chart shared by the tests of a module: one per values file."""

from __future__ import annotations

from typing import Any

import pytest

from tests.helm.chart import MAXIMAL_VALUES, Rendered, load_values, render


@pytest.fixture(scope="module")
def maximal_values() -> dict[str, Any]:
    """tests/helm/values-maximal.yaml: every feature on, every setting set."""
    return load_values(MAXIMAL_VALUES)


@pytest.fixture(scope="module")
def default_render() -> Rendered:
    """The chart with its own values.yaml only."""
    return render()


@pytest.fixture(scope="module")
def maximal_render(maximal_values: dict[str, Any]) -> Rendered:
    """The chart with values-maximal.yaml."""
    return render(maximal_values)


@pytest.fixture(scope="module", params=["default", "maximal"])
def rendered(
    request: pytest.FixtureRequest, default_render: Rendered, maximal_render: Rendered
) -> Rendered:
    """Each of the two renders in turn."""
    return default_render if request.param == "default" else maximal_render
