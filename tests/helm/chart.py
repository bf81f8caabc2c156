"""The chart rendered offline by the real Helm SDK, and ways to read what it made.

Nothing here contacts a cluster: ``Chart.render`` is what `helm template` does, hooks
and NOTES.txt included, after checking the values against ``values.schema.json``.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import helm_python as helm
import yaml

ROOT = Path(__file__).resolve().parents[2]
CHART_DIR = ROOT / "helm" / "waypost"
MAXIMAL_VALUES = Path(__file__).with_name("values-maximal.yaml")
RELEASE = "release"
NAMESPACE = "waypost"

Manifest = dict[str, Any]

# Kinds whose schemas come with a CRD (Prometheus Operator, KEDA) rather than with
# Kubernetes, so kubernetes-validate has none.
CUSTOM_KINDS = {
    ("monitoring.coreos.com/v1", "ServiceMonitor"),
    ("keda.sh/v1alpha1", "ScaledObject"),
}

_WORKLOADS = {"Deployment", "StatefulSet", "DaemonSet", "Job"}


@dataclass(frozen=True)
class Rendered:
    """The files of one render: template path -> text."""

    files: Mapping[str, str]

    @property
    def notes(self) -> str:
        """The rendered NOTES.txt."""
        return self.files["waypost/templates/NOTES.txt"]

    @cached_property
    def manifests(self) -> list[Manifest]:
        """Every object, in template order (parsed once; do not modify)."""
        return [
            doc
            for path, text in sorted(self.files.items())
            if not path.endswith("NOTES.txt")
            for doc in yaml.safe_load_all(text)
            if doc
        ]

    def of_kind(self, kind: str) -> list[Manifest]:
        """The objects of one kind."""
        return [m for m in self.manifests if m["kind"] == kind]

    def get(self, kind: str, name: str) -> Manifest:
        """The object of this kind and name; fails the test if there is none."""
        found = [m for m in self.of_kind(kind) if m["metadata"]["name"] == name]
        assert len(found) == 1, f"expected one {kind} {name}, found {len(found)}"
        return found[0]

    def workloads(self) -> Iterator[tuple[Manifest, dict[str, Any]]]:
        """(object, pod spec) of every object that runs pods, hooks included."""
        for manifest in self.manifests:
            if manifest["kind"] in _WORKLOADS:
                yield manifest, manifest["spec"]["template"]["spec"]


def load_values(path: Path) -> dict[str, Any]:
    """A values file as Helm reads it."""
    values: dict[str, Any] = helm.values_from_yaml(path.read_text())
    return values


def render(values: Mapping[str, Any] | None = None) -> Rendered:
    """Render the chart as an install of release ``release`` in namespace ``waypost``."""
    with helm.Chart.load(CHART_DIR) as chart:
        files = chart.render(dict(values or {}), name=RELEASE, namespace=NAMESPACE, is_install=True)
    return Rendered({path: text for path, text in files.items() if text.strip()})


def render_error(values: Mapping[str, Any]) -> str:
    """The message with which Helm refuses these values (fails the test if it does not)."""
    try:
        render(values)
    except (helm.HelmValuesError, helm.HelmRenderError) as exc:
        return str(exc)
    raise AssertionError(f"the chart accepted values it should refuse: {values!r}")


def command(container: Mapping[str, Any]) -> str:
    """The `waypost` subcommand a container runs, without its arguments
    (``agent run``, ``serve``), as `waypost.docgen.CLASSES` names commands."""
    args = [str(a) for a in container.get("args", [])]
    return " ".join(args[:2]) if args[1:2] == ["run"] else " ".join(args[:1])


_REFERENCE = re.compile(r"\$\(([A-Za-z_][A-Za-z0-9_]*)\)")


def environment(container: Mapping[str, Any], *, pod_name: str = "pod-0") -> dict[str, str]:
    """The variables the process sees, as the kubelet makes them: Secret values become
    ``<secret name/key>``, field references resolve, and ``$(VAR)`` expands to variables
    defined earlier in the list."""
    assert not container.get("envFrom"), "the chart sets variables one by one"
    seen: dict[str, str] = {}
    for variable in container.get("env", []):
        if "value" in variable:
            value = _REFERENCE.sub(
                lambda m: seen.get(m[1], m[0]),
                str(variable["value"]),
            )
        else:
            source = variable["valueFrom"]
            if "secretKeyRef" in source:
                ref = source["secretKeyRef"]
                value = f"<secret {ref['name']}/{ref['key']}>"
            else:
                path = source["fieldRef"]["fieldPath"]
                value = {"metadata.name": pod_name, "metadata.namespace": NAMESPACE}[path]
        seen[variable["name"]] = value
    return seen
