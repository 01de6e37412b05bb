"""Suite-wide hooks."""

from __future__ import annotations

import gc

import pytest


@pytest.hookimpl(trylast=True)
def pytest_collection_finish(session: pytest.Session) -> None:
    """Moves what importing and collecting created out of the collector's reach.

    Thousands of tests start and stop servers; every full collection would otherwise walk
    the modules, protobuf descriptors and collected items again.
    """
    gc.collect()
    gc.freeze()
