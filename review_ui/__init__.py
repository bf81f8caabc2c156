"""The HTTP app: JSON API (and, later, the review console)."""
