"""The conformance suite's fixtures live in ``qr_conformance`` (importable by the tests too)."""

from .qr_conformance import (  # noqa: F401
    _engines,
    engine,
    pytest_collection_modifyitems,
    pytest_configure,
)
