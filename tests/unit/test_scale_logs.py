"""Ordinary consumer-group events (rebalances, a group's first start) do not reach ERROR in the logs;
aiokafka's real faults still do."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest
from aiokafka.errors import GroupCoordinatorNotAvailableError, IllegalGenerationError, KafkaConnectionError

from kyso_kit.logs import configure


@pytest.fixture
def lines(monkeypatch: pytest.MonkeyPatch) -> Iterator[io.StringIO]:
    out = io.StringIO()
    monkeypatch.setattr("sys.stdout", out)
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    configure("scaletest", "INFO")
    try:
        yield out
    finally:
        root.handlers[:] = handlers
        root.setLevel(level)


def levels(out: io.StringIO) -> list[tuple[str, str]]:
    return [(d["level"], d["msg"]) for d in map(json.loads, out.getvalue().splitlines())]


def test_rebalance_and_first_start_messages_of_aiokafka_are_not_errors(lines: io.StringIO) -> None:
    coordinator = logging.getLogger("aiokafka.consumer.group_coordinator")
    # verbatim formats of aiokafka 0.14 (group_coordinator.py)
    coordinator.error(
        "OffsetCommit failed for group %s due to group error (%s), will rejoin", "kyso-signing",
        IllegalGenerationError("kyso-signing"),
    )  # fmt: skip
    coordinator.error("Group Coordinator Request failed: %s", GroupCoordinatorNotAvailableError())
    coordinator.warning("Heartbeat failed for group %s because it is rebalancing", "kyso-signing")
    assert levels(lines) == [
        ("WARNING", f"Group Coordinator Request failed: {GroupCoordinatorNotAvailableError()}")
    ]  # the commit refused by a rebalance is INFO (aiokafka logs at WARNING and up), the heartbeat too


def test_other_aiokafka_errors_keep_their_level(lines: io.StringIO) -> None:
    logging.getLogger("aiokafka.consumer.group_coordinator").error(
        "OffsetCommit failed for group %s on partition %s with offset %s: %s", "g", "t-0", 5, "CorruptRecord"
    )
    logging.getLogger("aiokafka.client").error("Unable connect to node with id %s: %s", 1, KafkaConnectionError())
    logging.getLogger("kyso_kit.broker").error("OffsetCommit failed for group g due to group error (Illegal"
                                               "GenerationError), will rejoin")  # fmt: skip
    assert [level for level, _ in levels(lines)] == ["ERROR", "ERROR", "ERROR"]
