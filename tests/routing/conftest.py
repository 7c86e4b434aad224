"""Fixtures of the routing tests: the faulty upstream, clean for every test."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.faulty_upstream import FaultyUpstream


@pytest.fixture(scope="session")
def faulty_server() -> Iterator[FaultyUpstream]:
    """One faulty upstream for the session."""
    server = FaultyUpstream().start()
    yield server
    server.stop()


@pytest.fixture
def faulty(faulty_server: FaultyUpstream) -> FaultyUpstream:
    """The faulty upstream with no behaviours set and an empty record."""
    faulty_server.reset()
    return faulty_server
