"""Workspace lifecycle as the platform operator sees it: create, list, suspend, resume, delete."""
