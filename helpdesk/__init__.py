"""Helpdesk: the platform package (the design card's "platform"; named so to avoid shadowing
the standard library's ``platform`` module)."""
