"""/healthz (the process answers) and /readyz (broker and database reachable)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from review_ui.deps import StateDep
from review_ui.openapi import problems
from review_ui.problems import problem_response
from waypost.db import ping

router = APIRouter(tags=["health"])


@router.get("/healthz")
def healthz() -> dict[str, str]:
    """Liveness: the process is up and serving."""
    return {"status": "ok"}


@router.get(
    "/readyz",
    response_model=None,
    responses=problems(503, why={503: "The broker or the database does not answer (`checks`)."}),
)
def readyz(state: StateDep, request: Request) -> JSONResponse | dict[str, object]:
    """Readiness: the broker and the database both answer."""
    checks = {
        "database": ping(state.engine),
        "broker": state.admin.ping(timeout_s=2.0),
    }
    for dependency, ok in checks.items():
        if ok:
            state.outages.recovered(dependency)
    if all(checks.values()):
        return {"status": "ready", "checks": checks}
    down = ", ".join(name for name, ok in checks.items() if not ok)
    return problem_response(
        503,
        "Not ready",
        f"unreachable: {down}",
        request,
        headers={"Retry-After": "5"},
        checks=checks,
    )
