"""No Docker engine here: check docker-compose.yml against the services' own settings instead."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from kyso_contracts import topics
from kyso_kit.settings import ServiceSettings
from kyso_otp.settings import OtpSettings
from kyso_payment.settings import PaymentSettings
from kyso_registration.settings import RegistrationSettings
from kyso_signing.settings import SigningSettings

ROOT = Path(__file__).resolve().parents[2]
SETTINGS: dict[str, type[ServiceSettings]] = {
    "registration": RegistrationSettings, "payment": PaymentSettings, "signing": SigningSettings, "otp": OtpSettings,
}  # fmt: skip


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    doc: dict[str, Any] = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    return doc


def env_names(cls: type[ServiceSettings]) -> set[str]:
    return {str(f.validation_alias) for f in cls.model_fields.values() if f.validation_alias}


def test_the_four_services_and_the_infrastructure_are_declared(compose: dict[str, Any]) -> None:
    assert set(SETTINGS) | {"kafka", "kafka-init", "mongo"} <= set(compose["services"])
    assert compose["services"]["kafka"]["image"].startswith("apache/kafka:4.1")
    assert compose["services"]["kafka"]["environment"]["KAFKA_PROCESS_ROLES"] == "broker,controller"  # KRaft
    assert "--replSet" in compose["services"]["mongo"]["command"]


@pytest.mark.parametrize("name", sorted(SETTINGS))
def test_service_matches_its_settings(compose: dict[str, Any], name: str) -> None:
    svc = compose["services"][name]
    cls = SETTINGS[name]
    env = {k: str(v) for k, v in svc["environment"].items()}
    unknown = set(env) - env_names(cls)
    assert not unknown, f"{name}: compose sets variables the service does not read: {unknown}"
    default_port = cls.model_fields["http_port"].default
    assert env["HTTP_PORT"] == str(default_port)
    assert svc["ports"] == [f"{default_port}:{default_port}"]
    assert env["KAFKA_BOOTSTRAP_SERVERS"].split(":")[0] == "kafka"
    assert env["MONGODB_URL"].startswith("mongodb://mongo:27017")
    test = " ".join(svc["healthcheck"]["test"])
    assert re.search(rf"127\.0\.0\.1:{default_port}/(ready|health)", test)
    assert svc["depends_on"]["kafka-init"]["condition"] == "service_completed_successfully"
    assert svc["depends_on"]["mongo"]["condition"] == "service_healthy"
    assert svc["build"]["dockerfile"] == "deploy/Dockerfile"  # one recipe for the four services
    assert svc["build"]["args"] == {"SERVICE": name, "PORT": str(default_port)}


def test_the_one_dockerfile_builds_and_starts_the_service_named_at_build_time() -> None:
    text = (ROOT / "deploy" / "Dockerfile").read_text()
    assert 'uv sync --frozen --no-dev --package "kyso-$SERVICE"' in text
    assert "exec kyso-$KYSO_SERVICE" in text and "KYSO_SERVICE=$SERVICE" in text
    assert not list((ROOT / "services").glob("*/Dockerfile"))


def test_topic_creation_covers_every_topic_and_dead_letter_topic(compose: dict[str, Any]) -> None:
    script = compose["services"]["kafka-init"]["command"][0]
    for t in topics.ALL:
        assert t in script
    assert '"$$t.dlq"' in script and topics.dead_letter("x") == "x.dlq"
    assert compose["services"]["kafka-init"]["depends_on"]["kafka"]["condition"] == "service_healthy"


def test_every_service_has_a_script_entry_point() -> None:
    import tomllib

    for name in SETTINGS:
        project = tomllib.loads((ROOT / "services" / name / "pyproject.toml").read_text())["project"]
        assert project["scripts"][f"kyso-{name}"] == f"kyso_{name}.__main__:main"
