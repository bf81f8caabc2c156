"""Decision quality: how reviewers judge each capability and agent version over time.

For every (capability, agent version) and UTC day: how many results the agent produced,
how many of them escalated, and of those a reviewer decided, how many were approved,
edited, rejected or retried; how far edits moved the output (edit distance) and how
uniformly reviewers judged (agreement). A periodic check announces a version whose
rejection or edit rate rises past a threshold (``decision_quality.drifted``).

Pure cores: ``counts`` (the numbers and their rates), ``distance`` (edit distance),
``drift`` (when a rate crossed its threshold). Adapters: ``store`` (the SQL), ``tables``
(the drift state), ``report`` (what the API, console and CLI show), ``watch`` (the
orchestrator's drift check thread) and ``metrics`` (the Prometheus gauges).
"""
