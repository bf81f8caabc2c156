"""PostgreSQL restarted under running services (fast shutdown, then kill -9).

Every service rides it out in place: no process exits, /readyz says why it is not ready
while the database is away, each process logs one line when the outage starts and one
when it ends (not one per attempt), and workflows complete afterwards.
"""

from __future__ import annotations

import signal
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import Engine

from tests.e2e.conftest import Platform
from tests.waiting import wait_for
from waypost.db import make_engine
from waypost.errors import StackError
from waypost.migrate import upgrade
from waypost.stack.postgres import EmbeddedPostgres
from waypost.stack.process import free_port

pytestmark = pytest.mark.e2e

SERVICES = ("orchestrator", "agents", "indexer")
OUTAGE_STARTED = "database unreachable, retrying until it is back"
OUTAGE_ENDED = "database reachable again after"


@pytest.fixture
def own_engine(own_postgres: EmbeddedPostgres, platform: Platform) -> Iterator[Engine]:
    """This test's schema, migrated, on its own PostgreSQL."""
    engine = make_engine(own_postgres.url(), schema=platform.schema, pool_size=2)
    upgrade(engine, platform.schema)
    yield engine
    engine.dispose()


def _ready(port: int) -> tuple[int, str]:
    try:
        response = httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=2)
    except httpx.HTTPError as exc:
        return 0, str(exc)
    return response.status_code, response.text


def _start_again(server: EmbeddedPostgres) -> bool:
    try:
        server.start()
    except StackError:
        return False  # the killed postmaster's children are still on their way out
    return True


def _outage_lines(logs: Path, name: str) -> tuple[int, int]:
    text = (logs / f"{name}.log").read_text(errors="replace")
    return text.count(OUTAGE_STARTED), text.count(OUTAGE_ENDED)


@pytest.mark.slow  # 8-15 s: `make test-slow` (CI runs it)
def test_every_service_rides_out_a_database_restart_in_place(
    platform: Platform, own_postgres: EmbeddedPostgres, own_engine: Engine
) -> None:
    platform.database_url = own_postgres.url()
    platform.engine = own_engine
    ports = {name: free_port() for name in (*SERVICES, "http")}
    platform.env_overrides["WAYPOST_HTTP_PORT"] = str(ports["http"])
    platform.start("orchestrator", "orchestrator", "run", metrics_port=ports["orchestrator"])
    platform.start("agents", "agent", "run", "tests.support.agents", metrics_port=ports["agents"])
    platform.start("indexer", "indexer", "run", metrics_port=ports["indexer"])
    platform.start("http", "serve")
    for name, port in ports.items():
        wait_for(lambda p=port: _ready(p)[0] == 200, timeout=60, what=f"{name} to be ready")

    token = platform.api_token()
    done = [platform.submit("test.echo", {"text": "before"})]
    wait_for(lambda: platform.statuses(done).get("completed") == 1, what="a first workflow")

    for outage, halt in (
        ("fast shutdown", own_postgres.stop),
        ("kill -9", lambda: _kill(own_postgres)),
    ):
        halt()
        _, reason = wait_for(
            lambda: (r := _ready(ports["orchestrator"]))[0] == 503 and r,
            timeout=30,
            what=f"the orchestrator to say it is not ready ({outage})",
        )
        assert "database unreachable" in reason, reason
        assert _ready(ports["http"])[0] == 503
        refused = httpx.post(
            f"http://127.0.0.1:{ports['http']}/api/v1/goals",
            json={"type": "test.echo", "input": {"text": "during"}},
            headers={"Authorization": f"Bearer {token}"},
            timeout=10,
        )
        assert refused.status_code == 503, refused.text
        assert refused.headers["Retry-After"] == "5"
        wait_for(lambda: _start_again(own_postgres), timeout=60, what="PostgreSQL to start")
        for name, port in ports.items():
            wait_for(
                lambda p=port: _ready(p)[0] == 200, timeout=60, what=f"{name} ready ({outage})"
            )
        exited = {name: p.returncode for name, p in platform.processes.items() if p.poll()}
        assert not exited, f"exited during the {outage}: {exited}"
        done.append(platform.submit("test.echo", {"text": f"after {outage}"}))
        wait_for(
            lambda: platform.statuses(done).get("completed") == len(done),
            timeout=60,
            what=f"a workflow after the {outage}",
        )

    # An outage is not a bug: no tracebacks from the HTTP app either.
    assert "Traceback" not in (platform.logs / "http.log").read_text(errors="replace")
    # One line when each outage started and one when it ended, however many attempts.
    assert _outage_lines(platform.logs, "orchestrator") == (2, 2)
    for name in ("agents", "indexer"):
        started, ended = _outage_lines(platform.logs, name)
        assert started <= 2, (name, started)
        assert ended == started, (name, started, ended)


def _kill(server: EmbeddedPostgres) -> None:
    assert server.process is not None
    server.process.send_signal(signal.SIGKILL)
    server.process.wait(10)
