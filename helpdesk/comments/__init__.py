"""Comments on tickets: public replies and internal notes."""
