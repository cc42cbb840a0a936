"""Shared fixtures. Real servers come from `KAFKA_BOOTSTRAP_SERVERS`/`MONGODB_URL` when both are set,
otherwise from `deploy/localinfra.py`, started once per test session and stopped at the end."""

from __future__ import annotations

import os
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

import localinfra

_DIR_MARKERS = {"unit": "unit", "service": "service", "integration": "infra", "e2e": "e2e"}


_LAYER_ORDER = ["unit", "service", "integration", "e2e"]


def pytest_configure(config: pytest.Config) -> None:
    from kyso_signing import patches

    patches.apply()  # as bootstrap.build() does at start-up: the third-party patches, once, before any test


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        part = Path(str(item.fspath)).parent.name
        marker = _DIR_MARKERS.get(part)
        if marker:
            item.add_marker(getattr(pytest.mark, marker))

    # Fast layers first, so a failure shows early: pure code, then fakes, then real servers.
    def layer(item: pytest.Item) -> int:
        part = Path(str(item.fspath)).parent.name
        return _LAYER_ORDER.index(part) if part in _LAYER_ORDER else len(_LAYER_ORDER)

    items.sort(key=layer)


@dataclass(frozen=True)
class Servers:
    kafka_bootstrap: str
    mongodb_url: str


@pytest.fixture(scope="session")
def servers() -> Iterator[Servers]:
    kafka, mongo = os.environ.get("KAFKA_BOOTSTRAP_SERVERS"), os.environ.get("MONGODB_URL")
    if kafka and mongo:
        yield Servers(kafka, mongo)
        return
    running = localinfra.start(Path(tempfile.mkdtemp(prefix="kyso-test-infra-")))
    try:
        yield Servers(running.kafka_bootstrap, running.mongodb_url)
    finally:
        localinfra.stop(running)


@pytest.fixture
def unique() -> str:
    """A random id per test, so tests share one database server without clean-up."""
    return uuid.uuid4().hex[:12]
