"""Reliability campaign (issue 7, first half): injection, read-only, malformed input, secrets."""
