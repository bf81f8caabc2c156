"""The chart's README documents every value, and the values files the documentation
shows are ones the chart accepts."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import helm_python as helm
import pytest
from kubernetes_validate import utils as kubernetes_validate

from tests.helm.chart import CHART_DIR, CUSTOM_KINDS, ROOT, load_values, render

README = CHART_DIR / "README.md"
# Values documented as a whole rather than key by key.
WHOLE = {"resources", "labels"}


def _leaves(node: dict[str, Any], prefix: str = "") -> Iterator[str]:
    for key, value in node.items():
        if isinstance(value, dict) and value and key not in WHOLE:
            yield from _leaves(value, f"{prefix}{key}.")
        else:
            yield f"{prefix}{key}"


def test_the_readme_documents_every_value() -> None:
    values = set(_leaves(load_values(CHART_DIR / "values.yaml")))
    documented = set(re.findall(r"^\| `([a-z][\w.]*)` \|", README.read_text(), re.M))
    pool_keys = {"name", "module", "capabilities"}

    assert values - documented == set(), "values missing from the README's table"
    assert documented - values - pool_keys == set(), "README rows for values that do not exist"


def _values_examples() -> Iterator[Any]:
    for path in (ROOT / "docs" / "deploy.md", README):
        text = path.read_text()
        for block in re.findall(r"```yaml\n(# [\w-]*values\.yaml\n.*?)```", text, re.S):
            name = block.splitlines()[0].removeprefix("# ")
            yield pytest.param(block, id=f"{path.name}:{name}")


@pytest.mark.parametrize("example", list(_values_examples()))
def test_documented_values_files_render_valid_manifests(example: str) -> None:
    rendered = render(helm.values_from_yaml(example))

    for manifest in rendered.manifests:
        if (manifest["apiVersion"], manifest["kind"]) not in CUSTOM_KINDS:
            kubernetes_validate.validate(manifest, "1.29", strict=True)


def test_the_examples_are_found() -> None:
    ids = {p.id for p in _values_examples()}

    assert {"deploy.md:waypost-values.yaml", "deploy.md:keda-values.yaml"} <= ids
