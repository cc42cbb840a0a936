"""Where SMS codes go: a real HTTP SMS gateway, or the development inbox."""

from __future__ import annotations

import logging
import uuid
from typing import Any, Protocol

import httpx

from kyso_kit.clock import Clock
from kyso_kit.store import Aggregates

log = logging.getLogger(__name__)


class SmsSender(Protocol):
    async def send(self, phone: str, text: str, *, reference: str) -> None: ...


class DevInbox:
    """Persists messages so the demo and tests can read them; exposed only in the development profile."""

    def __init__(self, coll: Aggregates, clock: Clock) -> None:
        self._coll = coll
        self._clock = clock

    async def send(self, phone: str, text: str, *, reference: str) -> None:
        # One challenge may be sent several times (resend): each message is its own document.
        await self._coll.insert(
            {
                "_id": uuid.uuid4().hex,
                "reference": reference,
                "phone": phone,
                "text": text,
                "sent_at": self._clock.now(),
            }
        )

    async def messages(self, phone: str, limit: int = 20) -> list[dict[str, Any]]:
        found = await self._coll.find({"phone": phone}, sort=("sent_at", -1), limit=limit)
        return [
            {"id": d["reference"], "phone": d["phone"], "text": d["text"], "sent_at": d["sent_at"].isoformat()}
            for d in found
        ]


class HttpSmsGateway:
    """POSTs ``{to, text, reference}`` as JSON with a bearer credential; a non-2xx answer is a failure."""

    def __init__(self, url: str, token: str | None, timeout: float = 5.0) -> None:
        self._url = url
        self._headers = {"Authorization": f"Bearer {token}"} if token else {}
        self._timeout = timeout

    async def send(self, phone: str, text: str, *, reference: str) -> None:
        async with httpx.AsyncClient(timeout=self._timeout) as client:
            resp = await client.post(
                self._url, json={"to": phone, "text": text, "reference": reference}, headers=self._headers
            )
            resp.raise_for_status()
        log.info("sms handed to gateway", extra={"reference": reference})
