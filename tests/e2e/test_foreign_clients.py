"""A goal from a foreign Kafka client (kcat) runs the real support.ticket workflow."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import confluent_kafka
import pytest

from tests.e2e.conftest import Platform
from tests.waiting import wait_for
from waypost.bus.kafka import KafkaBus
from waypost.events import new_id

KCAT = shutil.which("kcat")


def kcat_env(tmp_path: Path) -> dict[str, str]:
    """Run kcat on the librdkafka of the confluent-kafka wheel (2.x, current).

    Debian's kcat is built on librdkafka 2.0.2, which cannot parse the ApiVersions v3
    response of the embedded Tansu broker ("Read underflow ... at 274/279"); kcat links
    librdkafka dynamically and librdkafka keeps its ABI, so a newer one fixes it.
    """
    libs = Path(confluent_kafka.__file__).parent.parent / "confluent_kafka.libs"
    found = sorted(libs.glob("librdkafka*.so*"))
    if not found:
        pytest.skip(f"no bundled librdkafka in {libs} to run kcat against Tansu")
    (tmp_path / "lib").mkdir()
    (tmp_path / "lib" / "librdkafka.so.1").symlink_to(found[0])
    return {**os.environ, "LD_LIBRARY_PATH": str(tmp_path / "lib")}


@pytest.mark.skipif(
    KCAT is None, reason="kcat is not installed (`apt-get install kcat`; .ci/run installs it)"
)
def test_a_goal_produced_by_kcat_with_cloudevents_headers_completes(
    platform: Platform, tmp_path: Path
) -> None:
    assert KCAT is not None
    platform.start_orchestrator()
    platform.start_agents(module="agents.support")
    admin = KafkaBus(platform.bootstrap, platform.settings()).admin()
    wait_for(lambda: platform.topics.goals in admin.list_topics(), timeout=30, what="topics")
    goal_id = new_id()
    ticket = {
        "subject": "Charged twice for my subscription",
        "body": "My card was charged twice for the May invoice. Please refund one payment.",
        "customer": "Dana",
    }

    subprocess.run(
        [
            KCAT,
            "-P",
            "-b",
            platform.bootstrap,
            "-t",
            platform.topics.goals,
            "-k",
            goal_id,
            "-H",
            "ce_specversion=1.0",
            "-H",
            f"ce_id={goal_id}",
            "-H",
            "ce_type=waypost.goal.submitted",
            "-H",
            "ce_source=kcat",
            "-H",
            "content-type=application/json",
        ],
        input=json.dumps({"type": "support.ticket", "input": ticket}).encode(),
        env=kcat_env(tmp_path),
        check=True,
        timeout=30,
    )

    def finished() -> object:
        state = platform.workflow(goal_id)
        return state if state is not None and state.status.finished else None

    state = wait_for(finished, timeout=90, what="the kcat goal's workflow")
    assert state.status.value == "completed", state.reason
    output = state.output
    assert output is not None
    assert output["triage"]["category"] == "billing"
    assert output["knowledge"]["articles"], "no article found"
    reply = output["reply"]
    assert reply["subject"] == "Re: Charged twice for my subscription"
    assert reply["body"].startswith("Hi Dana,")
    assert set(reply["cited_articles"]) <= {a["id"] for a in output["knowledge"]["articles"]}
