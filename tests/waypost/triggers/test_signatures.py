"""Webhook signatures: GitHub-style, Stripe-style and generic HMAC-SHA256 (pure)."""

from __future__ import annotations

import pytest

from waypost.triggers.signatures import (
    Outcome,
    Scheme,
    check,
    github_signature,
    hmac_signature,
    stripe_signature,
)

SECRET = b"It's a Secret to Everybody"
BODY = b'{"id": "evt_1", "issue": {"title": "Charged twice"}}'
NOW = 1_767_225_600.0  # 2026-01-01T00:00:00Z
GITHUB = Scheme("github", "X-Hub-Signature-256")
STRIPE = Scheme("stripe", "Stripe-Signature", tolerance_s=300)
GENERIC = Scheme("hmac-sha256", "X-Signature")
GENERIC_TIMED = Scheme("hmac-sha256", "X-Signature", "X-Timestamp", tolerance_s=60)


def test_the_github_signature_is_the_one_in_githubs_documentation() -> None:
    # https://docs.github.com/en/webhooks/using-webhooks/validating-webhook-deliveries
    assert github_signature(SECRET, b"Hello, World!") == (
        "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"
    )


def test_a_github_delivery_signed_with_the_secret_is_valid_and_any_change_is_not() -> None:
    signed = {"x-hub-signature-256": github_signature(SECRET, BODY)}

    assert check(GITHUB, secret=SECRET, body=BODY, headers=signed, now=NOW).valid
    # Hex digits in capitals are still the same digest.
    upper = {"x-hub-signature-256": "sha256=" + signed["x-hub-signature-256"][7:].upper()}
    assert check(GITHUB, secret=SECRET, body=BODY, headers=upper, now=NOW).valid
    for body, secret, headers in [
        (BODY + b" ", SECRET, signed),  # the body changed
        (BODY, b"another secret", signed),  # signed with another secret
        (BODY, SECRET, {}),  # not signed
        (BODY, SECRET, {"x-hub-signature-256": signed["x-hub-signature-256"][7:]}),  # no prefix
        (BODY, SECRET, {"x-hub-signature-256": "sha256=zz"}),
    ]:
        verdict = check(GITHUB, secret=secret, body=body, headers=headers, now=NOW)
        assert verdict.outcome is Outcome.BAD_SIGNATURE, (body, headers)
        assert verdict.detail
        assert SECRET.decode() not in verdict.detail


def test_github_has_no_timestamp_so_an_old_delivery_is_still_valid() -> None:
    signed = {"x-hub-signature-256": github_signature(SECRET, BODY)}

    assert check(GITHUB, secret=SECRET, body=BODY, headers=signed, now=NOW + 10**9).valid


def test_a_stripe_delivery_is_valid_within_the_tolerance_and_stale_outside_it() -> None:
    def at(signed_at: float, now: float) -> Outcome:
        header = {"stripe-signature": stripe_signature(SECRET, BODY, int(signed_at))}
        return check(STRIPE, secret=SECRET, body=BODY, headers=header, now=now).outcome

    assert at(NOW, NOW) is Outcome.VALID
    assert at(NOW - 300, NOW) is Outcome.VALID
    assert at(NOW - 301, NOW) is Outcome.STALE
    assert at(NOW + 301, NOW) is Outcome.STALE  # a clock ahead is refused too


def test_the_stale_verdict_says_how_old_and_the_tolerance() -> None:
    header = {"stripe-signature": stripe_signature(SECRET, BODY, int(NOW) - 3600)}

    verdict = check(STRIPE, secret=SECRET, body=BODY, headers=header, now=NOW)

    assert verdict.outcome is Outcome.STALE
    assert "3600 s ago" in verdict.detail
    assert "300 s" in verdict.detail


def test_a_stale_timestamp_with_a_wrong_signature_is_a_bad_signature() -> None:
    # Without the secret a caller learns nothing about the tolerance.
    header = {"stripe-signature": stripe_signature(b"wrong", BODY, int(NOW) - 3600)}

    verdict = check(STRIPE, secret=SECRET, body=BODY, headers=header, now=NOW)

    assert verdict.outcome is Outcome.BAD_SIGNATURE


def test_stripe_signs_the_timestamp_so_changing_it_breaks_the_signature() -> None:
    old = stripe_signature(SECRET, BODY, int(NOW) - 3600)
    moved = old.replace(f"t={int(NOW) - 3600}", f"t={int(NOW)}")

    verdict = check(STRIPE, secret=SECRET, body=BODY, headers={"stripe-signature": moved}, now=NOW)

    assert verdict.outcome is Outcome.BAD_SIGNATURE


def test_stripe_accepts_any_matching_v1_entry_while_a_secret_rolls_over() -> None:
    current = stripe_signature(SECRET, BODY, int(NOW))
    rolled = stripe_signature(b"old secret", BODY, int(NOW))
    header = f"{rolled},v1={current.split('v1=')[1]},v0=ignored"

    assert check(
        STRIPE, secret=SECRET, body=BODY, headers={"stripe-signature": header}, now=NOW
    ).valid
    assert check(
        STRIPE, secret=b"old secret", body=BODY, headers={"stripe-signature": header}, now=NOW
    ).valid


@pytest.mark.parametrize(
    "header",
    ["", "v1=abc", "t=1767225600", "t=1,t=2,v1=abc", "garbage", "t=abc,v1=def"],
)
def test_a_malformed_stripe_header_is_a_bad_signature(header: str) -> None:
    verdict = check(STRIPE, secret=SECRET, body=BODY, headers={"stripe-signature": header}, now=NOW)

    assert verdict.outcome is Outcome.BAD_SIGNATURE


def test_the_generic_scheme_without_a_timestamp_signs_the_body() -> None:
    good = {"x-signature": hmac_signature(SECRET, BODY)}
    prefixed = {"x-signature": "sha256=" + hmac_signature(SECRET, BODY)}

    assert check(GENERIC, secret=SECRET, body=BODY, headers=good, now=NOW).valid
    assert check(GENERIC, secret=SECRET, body=BODY, headers=prefixed, now=NOW).valid
    assert not check(GENERIC, secret=SECRET, body=b"{}", headers=good, now=NOW).valid


def test_the_generic_scheme_with_a_timestamp_signs_both_and_checks_the_age() -> None:
    def headers(signed_at: int, sent_at: int | None = None) -> dict[str, str]:
        return {
            "x-signature": hmac_signature(SECRET, BODY, signed_at),
            "x-timestamp": str(signed_at if sent_at is None else sent_at),
        }

    def outcome(h: dict[str, str]) -> Outcome:
        return check(GENERIC_TIMED, secret=SECRET, body=BODY, headers=h, now=NOW).outcome

    assert outcome(headers(int(NOW) - 60)) is Outcome.VALID
    assert outcome(headers(int(NOW) - 61)) is Outcome.STALE
    assert outcome(headers(int(NOW) - 3600, int(NOW))) is Outcome.BAD_SIGNATURE
    no_timestamp = {"x-signature": hmac_signature(SECRET, BODY, int(NOW))}
    assert outcome(no_timestamp) is Outcome.BAD_SIGNATURE
    # Signed without the timestamp although the hook expects one.
    assert outcome({**headers(int(NOW)), "x-signature": hmac_signature(SECRET, BODY)}) is (
        Outcome.BAD_SIGNATURE
    )


def test_a_signed_timestamp_that_is_not_unix_seconds_is_refused() -> None:
    stamp = "2026-01-01T00:00:00Z"
    signature = hmac_signature(SECRET, stamp.encode() + b"." + BODY)
    headers = {"x-signature": signature, "x-timestamp": stamp}

    verdict = check(GENERIC_TIMED, secret=SECRET, body=BODY, headers=headers, now=NOW)

    assert verdict.outcome is Outcome.BAD_SIGNATURE
    assert "unix time" in verdict.detail
