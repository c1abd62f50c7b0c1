"""Internal: the notebook layer (see docs/contributing.md)."""
