"""The agent runtime: runs ``@agent`` handlers as consumer groups (`waypost agent run`)."""
