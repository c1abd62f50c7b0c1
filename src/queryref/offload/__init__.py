"""Internal: the offload layer (see docs/contributing.md)."""
