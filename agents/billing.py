"""The agents of the ``billing.anomaly`` playbook, hosted together.

``waypost agent run agents.billing`` serves ``billing.detect``, ``billing.summarise``,
``billing.credit``, ``notify.ops`` and ``notify.customer`` from one worker.
"""

from __future__ import annotations

from agents.anomaly import detect_anomalies
from agents.billing_summary import summarise_detection
from agents.credit import issue_credit
from agents.notify import notify_customer, notify_ops

__all__ = [
    "detect_anomalies",
    "issue_credit",
    "notify_customer",
    "notify_ops",
    "summarise_detection",
]
