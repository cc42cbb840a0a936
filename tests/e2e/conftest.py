from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest

from kyso_client.api import Endpoints, KysoApi
from kyso_client.journey import EventWatcher
from stack import Stack

from ..conftest import Servers


@pytest.fixture(scope="session")
def stack(servers: Servers) -> Iterator[Stack]:
    s = Stack(kafka_bootstrap=servers.kafka_bootstrap, mongodb_url=servers.mongodb_url)
    s.start()
    try:
        yield s
    finally:
        s.stop()


@pytest.fixture
def endpoints(stack: Stack) -> Endpoints:
    return Endpoints(*(stack.url(n) for n in ("registration", "payment", "signing", "otp")))


@pytest.fixture
async def api(endpoints: Endpoints) -> AsyncIterator[KysoApi]:
    a = KysoApi(endpoints)
    try:
        yield a
    finally:
        await a.aclose()


@pytest.fixture
async def watcher(stack: Stack) -> AsyncIterator[EventWatcher]:
    w = EventWatcher(stack.kafka_bootstrap)
    await w.start()
    try:
        yield w
    finally:
        await w.stop()
