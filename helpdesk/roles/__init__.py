"""Built-in and custom roles of a workspace."""
