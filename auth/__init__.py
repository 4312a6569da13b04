"""Identities, passwords, tokens, memberships, roles and permissions."""
