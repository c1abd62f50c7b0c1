"""Internal: the sql layer (see docs/contributing.md)."""
