"""The agents of the ``employee.onboarding`` playbook, hosted together.

``waypost agent run agents.onboarding`` serves ``it.provision``, ``payroll.setup``,
``facilities.access`` and ``onboarding.welcome`` from one worker.
"""

from __future__ import annotations

from agents.payroll import set_up_payroll
from agents.provisioning import grant_access, provision_it
from agents.welcome import welcome

__all__ = ["grant_access", "provision_it", "set_up_payroll", "welcome"]
