"""Reference agents of the ``support.ticket`` workflow: triage, knowledge and reply.

Each module declares one capability on the public SDK; ``agents.support`` gathers all
three so that ``waypost agent run agents.support`` hosts them in one worker.
"""
