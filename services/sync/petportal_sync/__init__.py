"""Pet Portal sync service."""
