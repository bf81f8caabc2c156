"""Finding the HTTP app: --url, WAYPOST_HTTP_URL, or the running `waypost up` stack."""

from __future__ import annotations

import os

from waypost.cli.client import Client
from waypost.settings import CommonSettings, load
from waypost.stack import stackfile


def client_for(url: str | None) -> Client:
    """A client for the HTTP app the user means."""
    # The CLI is a main(): reading the one client-only variable here keeps it out of the
    # settings classes the services use.
    explicit = url or os.environ.get("WAYPOST_HTTP_URL")
    settings = load(CommonSettings)
    endpoints = stackfile.resolve(settings, need=("http_url",), http_url=explicit)
    return Client(endpoints.http_url)
