"""The otp, registration and payment OpenAPI documents say what the server enforces, checked with an
independent JSON Schema validator (jsonschema, Draft 2020-12 as OpenAPI 3.1 uses)."""

from __future__ import annotations

import json
from typing import Any

import jsonschema

from kyso_otp.bootstrap import build as build_otp
from kyso_payment.bootstrap import build as build_payment
from kyso_registration.bootstrap import build as build_registration


def validator(doc: dict[str, Any], name: str) -> jsonschema.Draft202012Validator:
    components = doc["components"]["schemas"]
    schema = json.loads(
        json.dumps({**components[name], "$defs": components}).replace("#/components/schemas/", "#/$defs/")
    )
    return jsonschema.Draft202012Validator(schema)


def test_the_documents_are_valid_json_schema() -> None:
    for build in (build_otp, build_registration, build_payment):
        doc = build()[1].openapi()
        assert doc["openapi"].startswith("3.1")
        for schema in doc["components"]["schemas"].values():
            jsonschema.Draft202012Validator.check_schema(schema)


def test_phone_verification_declares_its_token_optional() -> None:
    doc = build_otp()[1].openapi()
    op = doc["paths"]["/v1/sms-otp/challenges"]["post"]
    assert op["security"] == [{}, {"HTTPBearer": []}]  # anonymous, or signed in (OpenAPI 3.1 §4.8.30)
    assert "x-kyso-optional-bearer" not in op
    enrol = doc["paths"]["/v1/smartotp/enrolments"]["post"]
    assert enrol["security"] == [{"HTTPBearer": []}]  # everything else keeps its token required


def test_what_the_otp_service_refuses_the_schema_refuses() -> None:
    doc = build_otp()[1].openapi()
    challenge = validator(doc, "ChallengeRequest")
    assert not challenge.is_valid({"purpose": "phone_verification", "subject": "r1"})  # 422 phone_required
    assert challenge.is_valid({"purpose": "phone_verification", "subject": "r1", "phone": "+84912345678"})
    assert not challenge.is_valid({"purpose": "contract_consent", "subject": "k1"})  # 422 account_required
    assert challenge.is_valid({"purpose": "contract_consent", "subject": "k1", "account_id": "a1"})
    enrol = validator(doc, "EnrolmentRequest")
    body = {"account_id": "a1", "terms_version": "2025-01", "sms_challenge_id": "c1"}
    assert not enrol.is_valid({**body, "terms_accepted": False})  # 422 terms_not_accepted
    assert enrol.is_valid({**body, "terms_accepted": True})
    activation = validator(doc, "ActivationRequest")
    assert not activation.is_valid({"activation_code": "0123456789", "device_id": "d"})  # names its enrolment
    assert activation.is_valid({"token_id": "t1", "activation_code": "0123456789", "device_id": "d"})


def test_the_password_rule_registration_enforces_is_in_its_schema() -> None:
    account = validator(build_registration()[1].openapi(), "AccountRequest")
    body = {"phone": "+84912345678", "email": "hoa@example.vn"}
    assert not account.is_valid({**body, "password": "short-pw1"})  # 422 weak_password
    assert not account.is_valid({**body, "password": "x" * 129})
    assert account.is_valid({**body, "password": "Ky-so an toan 2025!"})
