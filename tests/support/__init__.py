"""Agents and playbooks used only by tests."""
