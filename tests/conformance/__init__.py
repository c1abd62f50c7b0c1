"""The conformance suite: the same behavioural tests on every engine."""
