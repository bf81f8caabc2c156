"""Every rendered object is valid Kubernetes, checked by kubernetes-validate --strict
(unknown fields are errors) against the oldest and newest Kubernetes the chart supports."""

from __future__ import annotations

import pytest
from kubernetes_validate import utils as kubernetes_validate

from tests.helm.chart import CUSTOM_KINDS, Rendered

KUBERNETES = ["1.29", "1.37"]


@pytest.mark.parametrize("version", KUBERNETES)
def test_every_manifest_validates_strictly(rendered: Rendered, version: str) -> None:
    problems, unknown = [], set()
    for manifest in rendered.manifests:
        try:
            kubernetes_validate.validate(manifest, version, strict=True)
        except kubernetes_validate.ValidationError as exc:
            where = ".".join(str(p) for p in exc.path)
            name = f"{manifest['kind']} {manifest['metadata']['name']}"
            problems.append(f"{name}: {where}: {exc.message}")
        except kubernetes_validate.SchemaNotFoundError:
            unknown.add((manifest["apiVersion"], manifest["kind"]))

    assert problems == []
    # Only the CRD kinds of KEDA and the Prometheus Operator go unchecked.
    assert unknown <= CUSTOM_KINDS


def test_the_maximal_values_make_both_custom_resources(maximal_render: Rendered) -> None:
    kinds = {(m["apiVersion"], m["kind"]) for m in maximal_render.manifests}

    assert kinds >= CUSTOM_KINDS


def test_object_names_are_unique(rendered: Rendered) -> None:
    keys = [(m["kind"], m["metadata"]["name"]) for m in rendered.manifests]

    assert sorted(keys) == sorted(set(keys))


def test_names_and_labels_fit_kubernetes_limits(rendered: Rendered) -> None:
    for manifest in rendered.manifests:
        name = manifest["metadata"]["name"]
        assert len(name) <= 63, name
        for key, value in manifest["metadata"].get("labels", {}).items():
            assert len(str(value)) <= 63, (name, key)
