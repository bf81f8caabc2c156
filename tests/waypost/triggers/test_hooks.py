"""Hook files: presets, secrets from the environment only, and reloading without a restart."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from waypost.triggers.errors import HookConfigError
from waypost.triggers.hooks import HookSet, load_text
from waypost.triggers.signatures import Scheme

ENV = {"GITHUB_HOOK_SECRET": "gh-secret", "STRIPE_HOOK_SECRET": "whsec_1"}
GITHUB = """\
hooks:
  github-issues:
    secret: ${GITHUB_HOOK_SECRET}
    scheme: github
    when: {X-GitHub-Event: issues}
    goal:
      type: support.ticket
      input: {subject: "${/issue/title}", delivery: "${delivery_id}", hook: "${hook}"}
"""
STRIPE = """\
hooks:
  payments:
    secret: ${STRIPE_HOOK_SECRET}
    scheme: stripe
    tolerance: 2m
    goal: {type: billing.event, input: {event: "${/type}"}}
"""


def test_presets_fix_the_headers_and_the_delivery_id() -> None:
    github = load_text(GITHUB, environ=ENV)["github-issues"]
    stripe = load_text(STRIPE, environ=ENV)["payments"]

    assert github.secret == b"gh-secret"
    assert github.hook.signing() == Scheme("github", "X-Hub-Signature-256", None, 300.0)
    assert github.hook.delivery() == ("header", "X-GitHub-Delivery")
    assert github.hook.when == {"X-GitHub-Event": ("issues",)}
    assert stripe.hook.signing() == Scheme("stripe", "Stripe-Signature", None, 120.0)
    assert stripe.hook.delivery() == ("body", "/id")


def test_the_secret_is_not_in_the_repr() -> None:
    github = load_text(GITHUB, environ=ENV)["github-issues"]

    assert "gh-secret" not in repr(github)
    assert "gh-secret" not in str(github.hook)


def test_a_generic_hook_names_its_headers() -> None:
    text = """\
hooks:
  crm:
    secret: ${CRM}
    scheme: hmac-sha256
    signature_header: X-Crm-Signature
    timestamp_header: X-Crm-Timestamp
    delivery_id: /event/id
    goal: {type: crm.changed, input: {at: "${received_at}"}}
"""
    crm = load_text(text, environ={"CRM": "s"})["crm"].hook

    assert crm.signing() == Scheme("hmac-sha256", "X-Crm-Signature", "X-Crm-Timestamp", 300.0)
    assert crm.delivery() == ("body", "/event/id")


@pytest.mark.parametrize(
    ("change", "field", "message"),
    [
        (("${GITHUB_HOOK_SECRET}", "gh-secret"), "hooks.github-issues.secret", "never the secret"),
        (("${GITHUB_HOOK_SECRET}", "${UNSET_VAR}"), "hooks.github-issues.secret", "UNSET_VAR"),
        (("scheme: github", "scheme: md5"), "hooks.github-issues.scheme", "github"),
        (("${delivery_id}", "${fire_time}"), "hooks.github-issues", "fire_time"),
        (("type: support.ticket", "type: Support"), "hooks.github-issues", "goal type"),
        (
            ("scheme: github", "scheme: github\n    signature_header: X-Sig"),
            "hooks.github-issues",
            "remove signature_header",
        ),
        (("scheme: github", "scheme: hmac-sha256"), "hooks.github-issues", "signature_header"),
        (("github-issues:", "GitHub:"), "hooks.GitHub", "not a hook name"),
    ],
)
def test_an_invalid_file_names_the_field_and_why(
    change: tuple[str, str], field: str, message: str
) -> None:
    with pytest.raises(HookConfigError) as raised:
        load_text(GITHUB.replace(*change), environ=ENV, source="hooks/github.yaml")

    assert [p.field for p in raised.value.problems] == [field]
    assert message in str(raised.value)
    assert "gh-secret" not in str(raised.value) or change[1] == "gh-secret"


def test_a_generic_hook_needs_exactly_one_delivery_id() -> None:
    text = """\
hooks:
  crm:
    secret: ${CRM}
    scheme: hmac-sha256
    signature_header: X-Sig
    goal: {type: crm.changed}
"""
    with pytest.raises(HookConfigError, match="exactly one of delivery_id_header"):
        load_text(text, environ={"CRM": "s"})


def test_changed_files_apply_without_a_restart_and_a_broken_one_keeps_its_last_version(
    tmp_path: Path,
) -> None:
    clock = [0.0]
    (tmp_path / "github.yaml").write_text(GITHUB)
    hooks = HookSet([tmp_path], environ=ENV, check_interval_s=2.0, monotonic=lambda: clock[0])
    assert hooks.names() == ["github-issues"]
    assert hooks.errors == []

    (tmp_path / "stripe.yml").write_text(STRIPE)
    assert hooks.get("payments") is None  # not looked at before the interval passed
    clock[0] = 2.0
    assert hooks.get("payments") is not None

    broken = tmp_path / "github.yaml"
    broken.write_text(GITHUB.replace("scheme: github", "scheme: nope"))
    os.utime(broken, ns=(1, 1))  # a different stat, whatever the file system's tick
    errors = hooks.reload()
    assert [e.source for e in errors] == [str(broken)]
    kept = hooks.get("github-issues")
    assert kept is not None
    assert kept.hook.scheme == "github"

    (tmp_path / "stripe.yml").unlink()
    hooks.reload()
    assert hooks.names() == ["github-issues"]


def test_a_missing_directory_and_a_name_defined_twice_are_errors(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text(GITHUB)
    (tmp_path / "b.yaml").write_text(GITHUB)

    hooks = HookSet([tmp_path, tmp_path / "missing"], environ=ENV)

    assert hooks.names() == ["github-issues"]
    assert hooks.get("github-issues").hook.source == str(tmp_path / "a.yaml")  # type: ignore[union-attr]
    assert sorted(e.source for e in hooks.errors) == [
        str(tmp_path / "b.yaml"),
        str(tmp_path / "missing"),
    ]
