"""Signing in and out: login, token refresh, logout and "who am I"."""
