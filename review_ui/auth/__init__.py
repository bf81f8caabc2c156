"""Who may use the HTTP app: users with passwords, sessions, API tokens, roles."""
