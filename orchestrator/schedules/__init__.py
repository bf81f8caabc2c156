"""Schedules: cron expressions and fixed intervals that submit goals (docs/triggers.md).

``timing`` and ``policy`` are the pure core (slots, next fire times, catch-up after
downtime); ``definition`` reads a schedule as YAML files and the API write it; ``files``
loads the ``schedules/`` directories of the playbook directories; ``tables`` and
``store`` hold the state in PostgreSQL; ``firing`` is the loop every orchestrator runs,
which fires each slot exactly once however many orchestrators there are.
"""
