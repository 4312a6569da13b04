"""Tickets: the workspace's core records."""
