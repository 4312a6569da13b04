"""Customers: the people who request support in a workspace."""
