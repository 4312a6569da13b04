"""The `helpdesk` command."""

from helpdesk.cli.main import app

__all__ = ["app"]
