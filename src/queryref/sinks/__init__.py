"""Internal: the sinks layer (see docs/contributing.md)."""
