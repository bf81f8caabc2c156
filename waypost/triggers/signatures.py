"""Webhook signatures: is a delivery signed with the hook's secret, and recent? (pure)

Three schemes, all HMAC-SHA256 with a shared secret:

- ``github``: ``X-Hub-Signature-256: sha256=<hex HMAC of the raw body>``. GitHub signs no
  timestamp, so there is nothing to be stale.
- ``stripe``: ``Stripe-Signature: t=<unix seconds>,v1=<hex HMAC of "<t>.<body>">`` (several
  ``v1`` entries while a secret rolls over: one matching is enough).
- ``hmac-sha256``: a header of the hook's choosing holding the hex HMAC (``sha256=`` in
  front is accepted); with a timestamp header, the signed text is ``<timestamp>.<body>``
  as for Stripe.

The signature is checked before the timestamp: a caller without the secret learns only
"bad signature", and "stale" means a genuine delivery that is too old (a replay, or a
clock far off). Digests are compared in constant time.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from dataclasses import dataclass
from enum import Enum
from typing import Literal

SchemeName = Literal["github", "stripe", "hmac-sha256"]
GITHUB_HEADER = "X-Hub-Signature-256"
STRIPE_HEADER = "Stripe-Signature"


@dataclass(frozen=True, slots=True)
class Scheme:
    """How a hook's deliveries are signed: ``timestamp_header`` only for ``hmac-sha256``
    (Stripe's timestamp is inside its signature header); ``tolerance_s`` bounds how far a
    signed timestamp may be from now, either way."""

    name: SchemeName
    signature_header: str
    timestamp_header: str | None = None
    tolerance_s: float = 300.0

    @property
    def timestamped(self) -> bool:
        """Whether deliveries carry a signed timestamp."""
        return self.name == "stripe" or self.timestamp_header is not None


class Outcome(Enum):
    """What a signature check found."""

    VALID = "valid"
    BAD_SIGNATURE = "bad signature"
    STALE = "stale timestamp"


@dataclass(frozen=True, slots=True)
class Verdict:
    """The outcome of a check and, when refused, why (safe to show the sender: it never
    holds the secret or the expected digest)."""

    outcome: Outcome
    detail: str = ""

    @property
    def valid(self) -> bool:
        """Whether the delivery is signed with the secret (and recent, if timestamped)."""
        return self.outcome is Outcome.VALID


VALID = Verdict(Outcome.VALID)


def digest(secret: bytes, text: bytes) -> str:
    """The hex HMAC-SHA256 of ``text``."""
    return hmac.new(secret, text, hashlib.sha256).hexdigest()


def github_signature(secret: bytes, body: bytes) -> str:
    """The ``X-Hub-Signature-256`` value GitHub sends for ``body``."""
    return "sha256=" + digest(secret, body)


def stripe_signature(secret: bytes, body: bytes, timestamp: int) -> str:
    """The ``Stripe-Signature`` value Stripe sends for ``body`` at ``timestamp``."""
    return f"t={timestamp},v1={digest(secret, _timestamped(str(timestamp), body))}"


def hmac_signature(secret: bytes, body: bytes, timestamp: int | None = None) -> str:
    """The signature header value of the generic scheme (hex, no prefix)."""
    text = body if timestamp is None else _timestamped(str(timestamp), body)
    return digest(secret, text)


def check(
    scheme: Scheme, *, secret: bytes, body: bytes, headers: Mapping[str, str], now: float
) -> Verdict:
    """Whether a delivery (its raw ``body``, its ``headers`` with lower-case names) is
    signed with ``secret`` and, for a timestamped scheme, within the tolerance of ``now``
    (unix seconds)."""
    header = headers.get(scheme.signature_header.lower())
    if header is None:
        return _bad(f"the {scheme.signature_header} header is missing")
    if scheme.name == "stripe":
        return _check_stripe(scheme, secret, body, header, now)
    given = header.strip().removeprefix("sha256=")
    if scheme.name == "github" and not header.strip().startswith("sha256="):
        return _bad(f"{scheme.signature_header} must be sha256=<hex digest>")
    if scheme.timestamp_header is None:
        return VALID if _same(given, digest(secret, body)) else _bad(_MISMATCH)
    stamp = headers.get(scheme.timestamp_header.lower())
    if stamp is None:
        return _bad(f"the {scheme.timestamp_header} header is missing")
    if not _same(given, digest(secret, _timestamped(stamp, body))):
        return _bad(_MISMATCH)
    return _fresh(scheme, stamp, now)


_MISMATCH = "the signature does not match the body and the hook's secret"


def _check_stripe(scheme: Scheme, secret: bytes, body: bytes, header: str, now: float) -> Verdict:
    stamps: list[str] = []
    signatures: list[str] = []
    for item in header.split(","):
        key, _, value = item.strip().partition("=")
        if key == "t":
            stamps.append(value)
        elif key == "v1":
            signatures.append(value)
    if len(stamps) != 1 or not signatures:
        return _bad(f"{scheme.signature_header} must be t=<unix seconds>,v1=<hex digest>")
    expected = digest(secret, _timestamped(stamps[0], body))
    # Every candidate is compared, so the time taken does not say which one matched.
    if not sum(_same(given, expected) for given in signatures):
        return _bad(_MISMATCH)
    return _fresh(scheme, stamps[0], now)


def _fresh(scheme: Scheme, stamp: str, now: float) -> Verdict:
    # The timestamp was signed, so a malformed one is the sender's bug, not an attack.
    if not stamp.isascii() or not stamp.isdigit() or len(stamp) > 12:
        return _bad("the signed timestamp is not a unix time in whole seconds")
    off = now - int(stamp)
    if abs(off) > scheme.tolerance_s:
        return Verdict(
            Outcome.STALE,
            f"the delivery was signed {abs(off):.0f} s {'ago' if off > 0 else 'in the future'}; "
            f"the hook accepts {scheme.tolerance_s:.0f} s either way (a replayed delivery, "
            "or a clock that is off)",
        )
    return VALID


def _timestamped(stamp: str, body: bytes) -> bytes:
    return stamp.encode("utf-8", "surrogateescape") + b"." + body


def _same(given: str, expected: str) -> bool:
    return hmac.compare_digest(given.strip().lower().encode("utf-8", "replace"), expected.encode())


def _bad(detail: str) -> Verdict:
    return Verdict(Outcome.BAD_SIGNATURE, detail)
