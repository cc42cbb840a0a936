"""The kit's rooms pieces with no server: routing tables that bootstrap really reads, the typed
records' write computation, and the FerretDB patch files applied strictly."""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Any

import pytest
from pydantic import Field

import localinfra
from kyso_kit.records import Record, Utc, changes
from kyso_kit.routing import Route, handler_names


@pytest.mark.parametrize("service", ["registration", "payment", "otp"])
def test_bootstrap_subscribes_exactly_the_handler_table(service: str) -> None:
    """The table is the routing: what the consumer subscribes is what the tests deliver through."""
    import importlib

    bootstrap = importlib.import_module(f"kyso_{service}.bootstrap")
    routes: tuple[Route[Any], ...] = importlib.import_module(f"kyso_{service}.handlers").HANDLERS
    rt, _app = bootstrap.build()
    subscribed = {t: getattr(h, "__name__", "?") for t, h in rt.consumer._handlers.items()}
    assert all(r.handler.__closure__ is None for r in routes)  # a table holds no state: the core is passed in
    assert len({r.payload for r in routes}) == len(routes)
    names = {r.payload.event_type: r.handler for r in routes}
    assert set(subscribed) == set(names)
    assert all(n.startswith("when_") for n in subscribed.values())


def test_handler_names_reads_the_table_for_a_newcomer() -> None:
    from kyso_contracts import CertRevoked
    from kyso_registration.handlers import HANDLERS

    class Core:
        class status:
            @staticmethod
            async def when_cert_revoked_show_revoked(event: Any) -> None: ...

    table = [r for r in HANDLERS if r.payload is CertRevoked]
    assert handler_names(table, Core) == {CertRevoked.event_type: "when_cert_revoked_show_revoked"}


class Colour(StrEnum):
    RED = "red"
    BLUE = "blue"


class Thing(Record):
    colour: Colour
    at: Utc
    tags: list[str] = Field(default_factory=list)


def test_a_decision_writes_only_the_fields_it_changed_and_never_the_id() -> None:
    before = Thing.model_validate({"_id": "t", "colour": "red", "at": datetime(2026, 1, 1), "extra": {"k": 1}})
    assert before.at.tzinfo is UTC  # naive UTC from a driver becomes aware
    assert before.to_doc()["colour"] == "red" and before.to_doc()["extra"] == {"k": 1}  # kept as stored
    after = before.model_copy(update={"colour": Colour.BLUE, "tags": ["x"]})
    assert changes(before.to_doc(), after.to_doc()) == {"$set": {"colour": "blue", "tags": ["x"]}}
    assert changes(before.to_doc(), before.to_doc()) == {}
    gone = {k: v for k, v in before.to_doc().items() if k != "extra"}
    assert changes(before.to_doc(), gone) == {"$unset": {"extra": ""}}
    with pytest.raises(ValueError):
        changes(before.to_doc(), {**before.to_doc(), "_id": "other"})


# --------------------------------------------------------------------------- the FerretDB patch files


def test_each_ferretdb_patch_file_is_named_by_the_store_and_says_why() -> None:
    import kyso_kit.store.port as port

    assert "deploy/patches/ferretdb-write-lock.patch" in (port.__doc__ or "")
    for name in localinfra.FERRETDB_PATCHES:
        text = (localinfra.PATCHES_DIR / name).read_text()
        assert text.startswith("kyso patch") and "\n--- a/internal/" in text
    assert localinfra.FERRETDB_PATCH == "kyso4"  # the built source is unchanged by moving the patches to files


def test_a_patch_applies_exactly_or_not_at_all(tmp_path: Path) -> None:
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "a.go").write_text("package pkg\n\nfunc A() {\n\treturn\n}\n")
    diff = (
        "why\n\n--- a/pkg/a.go\n+++ b/pkg/a.go\n@@ -3,3 +3,4 @@\n func A() {\n+\tlock()\n \treturn\n }\n"
        "--- a/pkg/new.go\n+++ b/pkg/new.go\n@@ -0,0 +1,2 @@\n+package pkg\n+// new\n"
    )
    localinfra.apply_patch(tmp_path, diff, "t")
    assert (tmp_path / "pkg" / "a.go").read_text() == "package pkg\n\nfunc A() {\n\tlock()\n\treturn\n}\n"
    assert (tmp_path / "pkg" / "new.go").read_text() == "package pkg\n// new\n"
    with pytest.raises(RuntimeError):  # applied twice: the new file exists, the context moved
        localinfra.apply_patch(tmp_path, diff, "t")
    (tmp_path / "pkg" / "a.go").write_text("package pkg\n\nfunc A() {\n\treturn 1\n}\n")
    (tmp_path / "pkg" / "new.go").unlink()
    with pytest.raises(RuntimeError):  # upstream changed the line the hunk expects
        localinfra.apply_patch(tmp_path, diff, "t")
