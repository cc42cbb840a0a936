"""The subscribers' certificate records (collection ``certificates``), owned by the credentials room: the
one place that names the collection, and the one lookup for "an issued certificate of this owner".

A record exists from the order on; it is an *issued* certificate once its ``certificate`` (the signed
certificate's facts) is there — before that, it is an order, a contract or a reserved serial, which no
one can look at as a certificate, activate, sign with or revoke.
"""

from __future__ import annotations

from kyso_kit.auth import Action, Principal, ensure_may
from kyso_kit.errors import not_found
from kyso_kit.records import Record, Repository
from kyso_kit.store import Aggregates, Doc, Store
from kyso_signing.credentials.domain import CertificateStatus

COLLECTION = "certificates"


class Certificate(Record):
    """A certificate record, typed where the credentials room decides on it: its status (the state machine
    of ``credentials.domain``) and its ``revision``, which every status change bumps (the CA registry and
    OCSP's cache key on it). Every other field is kept as read and written back only when changed."""

    status: CertificateStatus
    revision: int = 0


def repository(store: Store) -> Repository[Certificate]:
    """Typed access with ``modify`` (read, decide, write if the record did not change, else again)."""
    return Repository(store, COLLECTION, Certificate, events=True)


def certificates(store: Store) -> Aggregates:
    """The certificates' collection (its writes carry events)."""
    return store.collection(COLLECTION, events=True)


def is_issued(doc: Doc | None) -> bool:
    return doc is not None and "certificate" in doc


async def issued(certs: Aggregates, certificate_id: str, account_id: str | None = None) -> Doc | None:
    """The issued certificate ``certificate_id`` (of ``account_id``, when given), or None."""
    doc = await certs.get(certificate_id)
    if not is_issued(doc) or (account_id and doc is not None and doc["account_id"] != account_id):
        return None
    return doc


async def issued_for(certs: Aggregates, who: Principal | None, certificate_id: str, action: Action = "read") -> Doc:
    """The issued certificate ``certificate_id``, if ``who`` may do ``action`` with it (None: the service
    itself); 404 ``certificate`` if there is none, 403 if it is someone else's."""
    doc = await issued(certs, certificate_id)
    if doc is None:
        raise not_found("certificate", "chứng thư số")
    if who is not None:
        ensure_may(who, doc["account_id"], action)
    return doc
