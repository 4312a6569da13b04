"""Workspace membership as a tenant admin manages it."""
