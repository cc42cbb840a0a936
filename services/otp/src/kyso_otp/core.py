"""The otp service's core: its use cases over a store, a clock and an SMS sender, built in one place.

Bootstrap builds it on the real database and clock, with the SMS gateway (or the development inbox);
the service tests on the in-memory store, a fake clock and a fake sender: one composition, not two."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from kyso_kit.clock import Clock
from kyso_kit.store import Store

from .delivery import DevInbox, HttpSmsGateway, SmsSender
from .invitations import Invitations
from .methods import OtpMethods
from .settings import OtpSettings
from .smartotp import SmartOtp
from .sms import SmsOtp


@dataclass
class Otp:
    sms: SmsOtp
    smartotp: SmartOtp
    methods: OtpMethods
    invitations: Invitations
    inbox: DevInbox | None  # development only: where codes "sent" by SMS can be read

    def inits(self) -> list[Callable[[], Awaitable[None]]]:
        """What runs once before the service takes requests (indexes)."""
        return [self.sms.init_indexes, self.smartotp.init_indexes]

    async def start(self) -> None:
        for init in self.inits():
            await init()


def build_core(store: Store, clock: Clock, settings: OtpSettings, sender: SmsSender | None = None) -> Otp:
    """``sender``: the SMS port; by default the gateway the settings name, else the development inbox."""
    inbox = DevInbox(store.collection("dev_sms_inbox"), clock) if settings.development else None
    if sender is None:
        if settings.sms_gateway_url:
            sender = HttpSmsGateway(settings.sms_gateway_url, settings.sms_gateway_token)
        else:
            assert inbox is not None
            sender = inbox
    sms = SmsOtp(store, settings, sender, clock)
    smartotp = SmartOtp(store, settings, sms, clock)
    return Otp(sms, smartotp, OtpMethods(store, sms, smartotp, clock), Invitations(store, sender, clock), inbox)
