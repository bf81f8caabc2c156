"""What the chart deploys: components, hooks, scaling, observability, configuration files."""

from __future__ import annotations

import json
from typing import Any

import pytest
import yaml

from tests.helm.chart import CHART_DIR, Rendered, environment, load_values, render
from waypost.runtime.loading import load_agents
from waypost.topics import Topics

HOOK = "helm.sh/hook"


def _container(manifest: dict[str, Any]) -> dict[str, Any]:
    containers: list[dict[str, Any]] = manifest["spec"]["template"]["spec"]["containers"]
    (container,) = containers
    return container


def _weight(manifest: dict[str, Any]) -> int:
    return int(manifest["metadata"]["annotations"].get("helm.sh/hook-weight", "0"))


def test_one_deployment_per_component_and_agent_pool(default_render: Rendered) -> None:
    deployments = {d["metadata"]["name"]: d for d in default_render.of_kind("Deployment")}

    assert set(deployments) == {
        "release-waypost-orchestrator",
        "release-waypost-indexer",
        "release-waypost-console",
        "release-waypost-agent-support",
        "release-waypost-agent-billing",
        "release-waypost-agent-onboarding",
    }
    assert _container(deployments["release-waypost-agent-billing"])["args"] == [
        "agent",
        "run",
        "agents.billing",
    ]


def test_the_default_pools_name_the_capabilities_their_modules_serve() -> None:
    for pool in load_values(CHART_DIR / "values.yaml")["agents"]:
        served = {agent.capability for agent in load_agents([pool["module"]])}
        assert set(pool["capabilities"]) == served, pool["name"]


@pytest.mark.parametrize("values_name", ["default", "maximal"])
def test_the_hook_jobs_have_what_they_need_before_anything_else_exists(
    values_name: str, default_render: Rendered, maximal_render: Rendered
) -> None:
    rendered = default_render if values_name == "default" else maximal_render
    jobs = {job["metadata"]["name"].rsplit("-", 1)[1]: job for job in rendered.of_kind("Job")}
    assert set(jobs) == {"migrate", "topics"}
    hooks = [m for m in rendered.manifests if HOOK in m["metadata"].get("annotations", {})]
    assert _container(jobs["migrate"])["args"] == ["migrate"]
    # The topics come after the migration (a database too old fails first).
    assert _weight(jobs["migrate"]) < _weight(jobs["topics"])
    for job in jobs.values():
        pod = job["spec"]["template"]["spec"]
        assert job["metadata"]["annotations"][HOOK] == "pre-install,pre-upgrade"
        # Hooks run before the release's other objects are created, so whatever the
        # Job refers to that the chart makes must be an earlier hook too.
        earlier = {
            (m["kind"], m["metadata"]["name"])
            for m in hooks
            if m is not job
            and m["metadata"]["annotations"][HOOK] == "pre-install,pre-upgrade"
            and _weight(m) < _weight(job)
        }
        made = {(m["kind"], m["metadata"]["name"]) for m in rendered.manifests}
        needed = {("ServiceAccount", pod["serviceAccountName"])}
        needed |= {
            ("Secret", v["valueFrom"]["secretKeyRef"]["name"])
            for v in _container(job)["env"]
            if "secretKeyRef" in v.get("valueFrom", {})
        }
        needed |= {
            ("ConfigMap", v["configMap"]["name"]) for v in pod["volumes"] if "configMap" in v
        }
        needed |= {("Secret", v["secret"]["secretName"]) for v in pod["volumes"] if "secret" in v}
        assert needed & made <= earlier
        assert ("ServiceAccount", pod["serviceAccountName"]) in made


def test_the_topic_job_creates_the_topics_of_every_pool_with_the_kafka_settings(
    maximal_render: Rendered, maximal_values: dict[str, Any]
) -> None:
    (job,) = [j for j in maximal_render.of_kind("Job") if j["metadata"]["name"].endswith("-topics")]
    container = _container(job)
    modules = [pool["module"] for pool in maximal_values["agents"]]
    assert container["args"] == [
        "topics",
        "--create",
        *[arg for module in modules for arg in ("--agents", module)],
    ]
    env = environment(container)
    assert env["WAYPOST_KAFKA_BOOTSTRAP"] == maximal_values["kafka"]["bootstrap"]
    assert env["WAYPOST_TOPIC_PARTITIONS"] == str(maximal_values["config"]["topic_partitions"])
    assert (
        json.loads(env["WAYPOST_TOPIC_PARTITION_OVERRIDES"])
        == (maximal_values["config"]["topic_partition_overrides"])
    )
    without = render({"topics": {"enabled": False}}).of_kind("Job")
    assert [job["metadata"]["name"] for job in without] == ["release-waypost-migrate"]


def test_the_database_url_comes_from_an_existing_secret_by_default(
    default_render: Rendered,
) -> None:
    env = environment(_container(default_render.get("Deployment", "release-waypost-console")))

    assert env["WAYPOST_DATABASE_URL"] == "<secret waypost-database/url>"
    assert default_render.of_kind("Secret") == []


def test_a_client_config_secret_replaces_client_config_and_sasl() -> None:
    rendered = render(
        {
            "kafka": {
                "clientConfig": {"security.protocol": "SASL_SSL"},
                "sasl": {"existingSecret": "kafka-user"},
                "clientConfigSecret": {"name": "kafka-client", "key": "config.json"},
            }
        }
    )
    env = environment(_container(rendered.get("Deployment", "release-waypost-orchestrator")))

    assert env["WAYPOST_KAFKA_CLIENT_CONFIG"] == "<secret kafka-client/config.json>"
    assert not {"KAFKA_SASL_USERNAME", "KAFKA_SASL_PASSWORD"} & env.keys()


def test_kafka_tls_files_are_mounted_where_client_config_points(
    maximal_render: Rendered, maximal_values: dict[str, Any]
) -> None:
    location = maximal_values["kafka"]["clientConfig"]["ssl.ca.location"]
    for deployment in maximal_render.of_kind("Deployment"):
        mounts = {m["mountPath"] for m in _container(deployment)["volumeMounts"]}
        assert location.rsplit("/", 1)[0] in mounts, deployment["metadata"]["name"]


def test_playbook_and_policy_directories_are_mounted_config_maps(
    maximal_render: Rendered, maximal_values: dict[str, Any]
) -> None:
    made = {m["metadata"]["name"] for m in maximal_render.of_kind("ConfigMap")}
    existing = {
        *maximal_values["playbooks"]["existingConfigMaps"],
        *maximal_values["policies"]["existingConfigMaps"],
        *(
            name
            for pool in maximal_values["agents"]
            for name in pool.get("policies", {}).get("existingConfigMaps", [])
        ),
    }
    for deployment in maximal_render.of_kind("Deployment"):
        container = _container(deployment)
        env = environment(container)
        pod = deployment["spec"]["template"]["spec"]
        volumes = {v["name"]: v for v in pod["volumes"]}
        mounts = {m["mountPath"]: volumes[m["name"]] for m in container["volumeMounts"]}
        for variable in ("WAYPOST_PLAYBOOK_DIRS", "WAYPOST_POLICY_DIRS"):
            directories = env[variable].split(",") if variable in env else []
            for directory in directories:
                assert mounts[directory]["configMap"]["name"] in made | existing, directory

    orchestrator = environment(_container(maximal_render.get("Deployment", "wp-orchestrator")))
    support = environment(_container(maximal_render.get("Deployment", "wp-agent-support")))
    billing = environment(_container(maximal_render.get("Deployment", "wp-agent-billing")))
    assert orchestrator["WAYPOST_PLAYBOOK_DIRS"].split(",") == [
        "/etc/waypost/playbooks/chart",
        "/etc/waypost/playbooks/configmap-team-playbooks",
    ]
    # The support pool has policies of its own besides the shared ones.
    assert len(support["WAYPOST_POLICY_DIRS"].split(",")) == 4
    assert len(billing["WAYPOST_POLICY_DIRS"].split(",")) == 2


def test_config_map_files_are_yaml_however_they_were_given(
    maximal_render: Rendered,
) -> None:
    playbooks = maximal_render.get("ConfigMap", "wp-playbooks")["data"]

    assert yaml.safe_load(playbooks["escalation.yaml"]) == {
        "type": "escalation.review",
        "version": 2,
    }
    assert yaml.safe_load(playbooks["refund.yaml"]) == {"type": "refund.request", "version": 1}


def test_every_deployment_has_a_disruption_budget(rendered: Rendered) -> None:
    budgets = [
        b["spec"]["selector"]["matchLabels"] for b in rendered.of_kind("PodDisruptionBudget")
    ]
    for deployment in rendered.of_kind("Deployment"):
        assert deployment["spec"]["selector"]["matchLabels"] in budgets


def test_autoscaled_deployments_leave_replicas_to_the_autoscaler(
    maximal_render: Rendered,
) -> None:
    scaled = {
        h["spec"]["scaleTargetRef"]["name"]
        for h in maximal_render.of_kind("HorizontalPodAutoscaler")
    }
    scaled |= {s["spec"]["scaleTargetRef"]["name"] for s in maximal_render.of_kind("ScaledObject")}
    deployments = {d["metadata"]["name"]: d for d in maximal_render.of_kind("Deployment")}

    assert scaled == {
        "wp-orchestrator",
        "wp-indexer",
        "wp-console",
        "wp-agent-support",
        "wp-agent-onboarding",
    }
    for name, deployment in deployments.items():
        assert ("replicas" in deployment["spec"]) == (name not in scaled), name
    assert deployments["wp-agent-billing"]["spec"]["replicas"] == 4


def test_keda_scales_a_pool_on_the_lag_of_each_of_its_capabilities(
    maximal_render: Rendered, maximal_values: dict[str, Any]
) -> None:
    (scaled,) = maximal_render.of_kind("ScaledObject")
    topics = Topics(maximal_values["config"]["namespace"])

    assert scaled["spec"]["scaleTargetRef"] == {"name": "wp-agent-support"}
    assert (scaled["spec"]["minReplicaCount"], scaled["spec"]["maxReplicaCount"]) == (1, 12)
    assert [
        (t["type"], t["metadata"]["consumerGroup"], t["metadata"]["topic"])
        for t in scaled["spec"]["triggers"]
    ] == [
        ("kafka", topics.agent_group(c), topics.tasks(c)) for c in ("triage", "knowledge", "reply")
    ]
    for trigger in scaled["spec"]["triggers"]:
        assert trigger["metadata"]["bootstrapServers"] == maximal_values["kafka"]["bootstrap"]
        assert trigger["metadata"]["lagThreshold"] == "100"
        assert trigger["authenticationRef"] == {"name": "waypost-kafka-auth"}


def test_agents_get_time_to_finish_their_tasks_before_being_killed(
    default_render: Rendered, maximal_render: Rendered
) -> None:
    def grace(rendered: Rendered, name: str) -> int:
        deployment = rendered.get("Deployment", name)
        return int(deployment["spec"]["template"]["spec"]["terminationGracePeriodSeconds"])

    assert grace(default_render, "release-waypost-agent-support") == 30
    # agent_shutdown_grace_s 25 plus 20 s to publish and commit.
    assert grace(maximal_render, "wp-agent-support") == 45
    assert grace(maximal_render, "wp-agent-billing") == 120


def test_workers_are_named_after_their_pods(maximal_render: Rendered) -> None:
    env = environment(_container(maximal_render.get("Deployment", "wp-agent-billing")))

    assert env["WAYPOST_AGENT_INSTANCE"] == "pod-0"


def test_the_console_is_published_through_an_ingress_with_tls(
    maximal_render: Rendered,
) -> None:
    ingress = maximal_render.get("Ingress", "wp-console")
    service = maximal_render.get("Service", "wp-console")
    (rule,) = ingress["spec"]["rules"]
    backend = rule["http"]["paths"][0]["backend"]["service"]

    assert ingress["spec"]["tls"] == [
        {"hosts": ["review.example.com"], "secretName": "review-example-com-tls"}
    ]
    assert backend == {"name": "wp-console", "port": {"name": "http"}}
    assert [p["name"] for p in service["spec"]["ports"]] == ["http"]


def test_behind_an_ingress_the_console_knows_its_public_origin() -> None:
    values = {
        "console": {
            "ingress": {
                "enabled": True,
                "hosts": [
                    {"host": "review.example.com", "paths": [{"path": "/", "pathType": "Prefix"}]}
                ],
                "tls": [{"secretName": "tls", "hosts": ["review.example.com"]}],
            }
        }
    }
    console = render(values).get("Deployment", "release-waypost-console")

    assert environment(_container(console))["WAYPOST_HTTP_PUBLIC_ORIGIN"] == (
        "https://review.example.com"
    )


def test_the_service_monitor_scrapes_every_component(maximal_render: Rendered) -> None:
    (monitor,) = maximal_render.of_kind("ServiceMonitor")
    selector = monitor["spec"]["selector"]["matchLabels"]
    ports = {e["port"] for e in monitor["spec"]["endpoints"]}
    selected = [
        s
        for s in maximal_render.of_kind("Service")
        if selector.items() <= s["metadata"]["labels"].items()
    ]
    scraped = {
        s["spec"]["selector"]["app.kubernetes.io/component"]
        for s in selected
        if {p["name"] for p in s["spec"]["ports"]} & ports
    }
    components = {
        d["spec"]["selector"]["matchLabels"]["app.kubernetes.io/component"]
        for d in maximal_render.of_kind("Deployment")
    }

    assert monitor["metadata"]["labels"]["release"] == "prometheus"
    assert scraped == components
    assert {e["path"] for e in monitor["spec"]["endpoints"]} == {"/metrics"}


def test_the_dashboard_config_map_holds_every_dashboard_file(
    maximal_render: Rendered,
) -> None:
    files = sorted(p.name for p in (CHART_DIR / "dashboards").glob("*.json"))
    maps = [
        m for m in maximal_render.of_kind("ConfigMap") if m["metadata"]["name"] == "wp-dashboards"
    ]

    if not files:  # no dashboard shipped yet: nothing to make
        assert maps == []
        return
    (dashboards,) = maps
    assert sorted(dashboards["data"]) == files
    assert dashboards["metadata"]["namespace"] == "monitoring"
    assert dashboards["metadata"]["labels"]["grafana_dashboard"] == "1"
    for name, text in dashboards["data"].items():
        assert json.loads(text) == json.loads((CHART_DIR / "dashboards" / name).read_text())


def test_the_network_policy_opens_only_the_console_and_metrics_ports(
    maximal_render: Rendered,
) -> None:
    (policy,) = maximal_render.of_kind("NetworkPolicy")

    assert [r["ports"] for r in policy["spec"]["ingress"]] == [
        [{"port": "http", "protocol": "TCP"}],
        [{"port": "metrics", "protocol": "TCP"}],
    ]
    assert policy["spec"]["policyTypes"] == ["Ingress", "Egress"]
    assert policy["spec"]["egress"][0]["ports"][0] == {"port": 53, "protocol": "UDP"}


def test_tracing_is_configured_per_component(maximal_render: Rendered) -> None:
    names = {
        d["metadata"]["name"]: environment(_container(d))["OTEL_SERVICE_NAME"]
        for d in maximal_render.of_kind("Deployment")
    }

    assert names == {
        "wp-orchestrator": "acme-waypost-orchestrator",
        "wp-indexer": "acme-waypost-indexer",
        "wp-console": "acme-waypost-http",
        "wp-agent-support": "acme-waypost-agents",
        "wp-agent-billing": "acme-waypost-agents",
        "wp-agent-onboarding": "acme-waypost-agents",
    }


def test_the_notes_tell_how_to_log_in(default_render: Rendered, maximal_render: Rendered) -> None:
    assert (
        "kubectl --namespace waypost exec -it deploy/release-waypost-console -- \\\n"
        "       waypost user add admin --role admin" in default_render.notes
    )
    assert "port-forward svc/release-waypost-console 8080:80" in default_render.notes
    assert "https://review.example.com/" in maximal_render.notes
    assert "WARNING: the database URL was given as database.url" in maximal_render.notes


def test_the_console_trusts_the_forwarded_client_address_only_of_the_proxies_named(
    default_render: Rendered, maximal_render: Rendered
) -> None:
    # Login throttling counts failures per client address: behind an ingress the console
    # must take it from X-Forwarded-For, and only from the proxies the operator names.
    def forwarded(rendered: Rendered) -> list[str]:
        (console,) = [
            d for d in rendered.of_kind("Deployment") if d["metadata"]["name"].endswith("-console")
        ]
        env = _container(console)["env"]
        return [v["value"] for v in env if v["name"] == "FORWARDED_ALLOW_IPS"]

    assert forwarded(default_render) == []  # uvicorn's default: loopback only
    assert forwarded(maximal_render) == ["10.0.0.0/8"]
