"""Reference agents of the built-in workflows, written on the public SDK only.

Each module declares one concept's capabilities; the host modules gather a workflow's
agents so that one worker serves them: ``agents.support`` (``support.ticket``: triage,
knowledge, reply), ``agents.billing`` (``billing.anomaly``) and ``agents.onboarding``
(``employee.onboarding``). ``waypost up`` runs all three.
"""
