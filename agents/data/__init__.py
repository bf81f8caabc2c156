"""Data shipped inside the wheel with the reference agents.

``triage_examples.json`` holds hand-labelled support tickets; ``kb_articles.jsonl`` holds
the help-centre articles the knowledge agent searches; ``billing_ledger.json`` the demo
accounts and charge histories of ``billing.anomaly``; ``onboarding_catalogue.json`` the
roles and offices of ``employee.onboarding``.
"""

from __future__ import annotations

from importlib.resources import files


def read_text(name: str) -> str:
    """The text of a data file of the ``agents`` package (UTF-8)."""
    return (files("agents") / "data" / name).read_text(encoding="utf-8")
