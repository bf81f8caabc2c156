"""The HTTP app's request metrics label requests by route template, never by id."""

from __future__ import annotations

from typing import Any

from review_ui.metrics import route_template


def scope(path: str, **params: str) -> dict[str, Any]:
    return {"path": path, "route": object(), "path_params": params}


def test_ids_in_paths_become_their_parameter_names() -> None:
    assert (
        route_template(scope("/api/v1/escalations/abc-1/decision", escalation_id="abc-1"))
        == "/api/v1/escalations/{escalation_id}/decision"
    )
    assert route_template(scope("/api/v1/goals")) == "/api/v1/goals"


def test_unmatched_paths_and_static_files_share_one_label() -> None:
    assert route_template({"path": "/wp-admin/x.php"}) == "unmatched"
    assert route_template({"path": "/static/htmx.min.js"}) == "/static"
