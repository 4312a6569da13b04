"""Workspaces: the registry in ``public``, provisioning, the tenant migration track and the
per-request tenant context."""
