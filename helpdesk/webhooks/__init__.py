"""Webhook subscriptions of a workspace."""
