"""Which handler takes which event, as a value: bootstrap subscribes from it and the service tests
deliver through it (:mod:`kyso_kit.routing`)."""

from __future__ import annotations

from kyso_contracts import AccountCreated, OrganisationRegistrationOpened
from kyso_kit.routing import Route

from .core import Otp

HANDLERS: tuple[Route[Otp], ...] = (
    Route(AccountCreated, lambda o: o.sms.when_account_created_remember_phone),
    Route(OrganisationRegistrationOpened, lambda o: o.invitations.when_organisation_registration_opened_invite),
)
