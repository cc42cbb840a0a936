"""Routing as data: a service's event → handler table is a value (cosmicpython's ``EVENT_HANDLERS``),
read by its bootstrap to subscribe (:func:`wire`) and by its service tests to deliver (:func:`deliver`),
so the tests exercise the routing production uses instead of re-implementing it.

Each :class:`Route` names the payload type, how to find the handler on the service's core (the object
its core builder returns) and, optionally, which payloads the service wants at all (an SMS code
verified for a purpose another service acts on costs no database round trip). No broker import here:
anything with the consumer's ``on(payload, wants=...)`` registration works.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, Generic, Protocol, TypeVar

from kyso_contracts import CloudEvent, Payload

C = TypeVar("C")
Handler = Callable[[CloudEvent[Any]], Awaitable[None]]


class Subscriber(Protocol):
    def on(
        self, payload: type[Payload], wants: Callable[[Any], bool] | None = None
    ) -> Callable[[Handler], Handler]: ...


@dataclass(frozen=True)
class Route(Generic[C]):
    """``payload`` events go to ``handler(core)``, if ``wants(core)`` accepts their data."""

    payload: type[Payload]
    handler: Callable[[C], Handler]
    wants: Callable[[C], Callable[[Any], bool]] | None = None


def wire(consumer: Subscriber, routes: Sequence[Route[C]], core: C) -> None:
    """Subscribe ``core``'s handlers as ``routes`` says (each payload type once)."""
    for r in routes:
        consumer.on(r.payload, wants=r.wants(core) if r.wants else None)(r.handler(core))


def handler_names(routes: Sequence[Route[C]], core: C) -> dict[str, str]:
    """Event type → the handler's name: what a reader of the table sees, for docs and tests."""
    return {r.payload.event_type: getattr(r.handler(core), "__name__", "?") for r in routes}


async def deliver(routes: Sequence[Route[C]], core: C, event: CloudEvent[Any]) -> bool:
    """Hand ``event`` to its handler as the consumer would (the test side of :func:`wire`); False if no
    route takes it or its route does not want it."""
    for r in routes:
        if r.payload.event_type == event.type:
            if r.wants is not None and not r.wants(core)(event.data):
                return False
            await r.handler(core)(event)
            return True
    return False
