"""Pet Portal identity service."""
