"""Internal: the cli layer (see docs/contributing.md)."""
