"""`helm lint --strict` finds nothing wrong, with the default and the maximal values."""

from __future__ import annotations

from typing import Any

import helm_python as helm
import pytest

from tests.helm.chart import CHART_DIR

KUBERNETES = ["v1.29.0", "v1.37.0"]
INFO = 1  # lint severities: 1 info, 2 warning, 3 error


@pytest.mark.parametrize("kube_version", KUBERNETES)
@pytest.mark.parametrize("values_name", ["default", "maximal"])
def test_strict_lint_passes(
    kube_version: str, values_name: str, maximal_values: dict[str, Any]
) -> None:
    values = maximal_values if values_name == "maximal" else None

    report = helm.lint(CHART_DIR, values, strict=True, kube_version=kube_version)

    assert report["errors"] == []
    assert [m for m in report["messages"] if m["severity"] > INFO] == []
    # The one remark left is that the chart has no icon (there is no Waypost logo URL).
    assert {m["error"] for m in report["messages"]} <= {"icon is recommended"}
