"""Audit trails: the platform's own (logins, workspace lifecycle) and each workspace's."""
