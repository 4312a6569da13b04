"""The bottom layer every package may import: settings, database access and the error types."""
