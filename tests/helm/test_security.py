"""Invariants of every pod the chart runs, hooks included, whatever the values."""

from __future__ import annotations

from collections import Counter
from typing import Any

from tests.helm.chart import Rendered

Pod = dict[str, Any]


def _containers(pod: Pod) -> list[dict[str, Any]]:
    return [*pod.get("initContainers", []), *pod["containers"]]


def _each_pod(rendered: Rendered) -> list[tuple[str, str, Pod]]:
    pods = [(m["kind"], m["metadata"]["name"], pod) for m, pod in rendered.workloads()]
    assert pods, "the chart rendered no pods"
    return pods


def test_the_migration_hook_is_among_the_pods_checked(rendered: Rendered) -> None:
    kinds = {kind for kind, _, _ in _each_pod(rendered)}

    assert kinds == {"Deployment", "Job"}


def test_pods_run_as_non_root_with_the_runtime_default_seccomp_profile(
    rendered: Rendered,
) -> None:
    for kind, name, pod in _each_pod(rendered):
        context = pod["securityContext"]
        assert context["runAsNonRoot"] is True, (kind, name)
        assert context["seccompProfile"] == {"type": "RuntimeDefault"}, (kind, name)
        assert context.get("runAsUser", 1) != 0, (kind, name)
        for host in ("hostNetwork", "hostPID", "hostIPC"):
            assert not pod.get(host), (kind, name, host)
        # Waypost never calls the Kubernetes API: no token in the pod.
        assert pod["automountServiceAccountToken"] is False, (kind, name)


def test_containers_are_locked_down(rendered: Rendered) -> None:
    for kind, name, pod in _each_pod(rendered):
        for container in _containers(pod):
            where = (kind, name, container["name"])
            context = container["securityContext"]
            assert context["runAsNonRoot"] is True, where
            assert context["readOnlyRootFilesystem"] is True, where
            assert context["allowPrivilegeEscalation"] is False, where
            assert context["privileged"] is False, where
            assert context["capabilities"] == {"drop": ["ALL"]}, where
            assert context["seccompProfile"] == {"type": "RuntimeDefault"}, where


def test_tmp_is_a_writable_empty_dir(rendered: Rendered) -> None:
    for kind, name, pod in _each_pod(rendered):
        volumes = {v["name"]: v for v in pod["volumes"]}
        for container in _containers(pod):
            mounts = {m["mountPath"]: m for m in container["volumeMounts"]}
            assert "/tmp" in mounts, (kind, name, container["name"])
            tmp = mounts["/tmp"]
            assert "emptyDir" in volumes[tmp["name"]], (kind, name)
            assert not tmp.get("readOnly"), (kind, name)


def test_every_container_has_requests_and_a_memory_limit(rendered: Rendered) -> None:
    for kind, name, pod in _each_pod(rendered):
        for container in _containers(pod):
            resources = container["resources"]
            where = (kind, name, container["name"])
            assert {"cpu", "memory"} <= resources["requests"].keys(), where
            assert "memory" in resources["limits"], where


def test_long_running_containers_have_health_probes(rendered: Rendered) -> None:
    for kind, name, pod in _each_pod(rendered):
        if kind != "Deployment":
            continue
        for container in pod["containers"]:
            ports = {p["name"] for p in container["ports"]}
            where = (name, container["name"])
            probes = {
                probe: container[probe]["httpGet"]
                for probe in ("startupProbe", "livenessProbe", "readinessProbe")
            }
            assert probes["livenessProbe"]["path"] == "/healthz", where
            assert probes["startupProbe"]["path"] == "/healthz", where
            assert probes["readinessProbe"]["path"] == "/readyz", where
            for check in probes.values():
                assert check["port"] in ports, where


def test_the_image_is_pinned(rendered: Rendered) -> None:
    for _, name, pod in _each_pod(rendered):
        for container in _containers(pod):
            image = container["image"]
            assert "@sha256:" in image or not image.endswith((":latest", ":")), (name, image)


def test_no_variable_is_set_twice(rendered: Rendered) -> None:
    # Server-side apply (Helm 4's default) refuses duplicate names in env.
    for _, name, pod in _each_pod(rendered):
        for container in _containers(pod):
            counts = Counter(v["name"] for v in container.get("env", []))
            assert [n for n, c in counts.items() if c > 1] == [], (name, container["name"])


def test_secrets_reach_pods_only_by_reference(
    maximal_render: Rendered, maximal_values: dict[str, Any]
) -> None:
    url = maximal_values["database"]["url"]
    secrets = [m for m in maximal_render.manifests if m["kind"] == "Secret"]
    others = [m for m in maximal_render.manifests if m["kind"] != "Secret"]

    assert [s["metadata"]["name"] for s in secrets] == ["wp-database"]
    assert url not in str(others)
