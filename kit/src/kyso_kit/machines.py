"""State machines as tables: ``{(status, action): frozenset(targets)}``, one per record type, in each
service's ``domain.py``. Use cases do not re-derive what a table allows: the statuses a write's filter
accepts come from the table (:func:`sources`), and so does the next status (:func:`step`);
``tests/unit/test_state_machines.py`` checks the tables and that the filters agree with them."""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from typing import TypeVar

from .errors import IllegalTransition

S = TypeVar("S", bound=StrEnum)
Table = Mapping[tuple[S, str], frozenset[S]]


def allowed(table: Table[S], status: S, action: str) -> frozenset[S]:
    """Where ``action`` may take a record in ``status`` (empty: it may not)."""
    return table.get((status, action), frozenset())


def sources(table: Table[S], action: str) -> list[str]:
    """The statuses (stored values, sorted) from which ``action`` is allowed: a write's status filter."""
    return sorted(s.value for (s, a) in table if a == action)


def step(table: Table[S], machine: str, status: S, action: str, to: S | None = None) -> S:
    """The status after ``action`` (``to`` chooses among several targets), or :class:`IllegalTransition`."""
    targets = allowed(table, status, action)
    if to is None and len(targets) == 1:
        (to,) = targets
    if to is None or to not in targets:
        raise IllegalTransition(machine, status.value, action)
    return to
