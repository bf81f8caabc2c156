"""Finding the HTTP app: --url, WAYPOST_HTTP_URL, or the running `waypost up` stack."""

from __future__ import annotations

import os

from waypost.cli.client import Client
from waypost.endpoints import HTTP, read_cli_token, resolve
from waypost.settings import CommonSettings, load


def client_for(url: str | None) -> Client:
    """A client for the HTTP app the user means, with its API token."""
    # The CLI is a main(): reading its client-only variables here keeps them out of the
    # settings classes the services use.
    explicit = url or os.environ.get("WAYPOST_HTTP_URL")
    settings = load(CommonSettings)
    found = resolve(settings, need=(HTTP,), http_url=explicit)
    token = os.environ.get("WAYPOST_API_TOKEN") or read_cli_token(settings.data_dir)
    return Client(found.http_url, token=token)
