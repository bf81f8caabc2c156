"""Who may use the HTTP app: users with passwords, sessions, API tokens, roles, and the
throttling of failed logins and bad tokens."""
