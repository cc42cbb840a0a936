"""deploy/stack.py: the environment each started process gets, and a stack shared with another process.

bench/otp_verify.py starts the otp service alone; `Stack.service_env` used to look up the gateway's,
payment's, registration's and signing's ports unconditionally and failed with ``KeyError: 'gateway'``.
"""

from __future__ import annotations

import pytest

from stack import PEERS, SERVICES, Stack


def test_a_service_started_alone_gets_no_address_of_absent_peers() -> None:
    stack = Stack(kafka_bootstrap="127.0.0.1:9092", mongodb_url="mongodb://127.0.0.1:27017/")
    env = stack.service_env("otp", 8123, {"otp": 8123})
    assert env["HTTP_PORT"] == "8123"
    assert env["MONGODB_DATABASE"] == f"kyso_otp_{stack.run_id}"
    assert env["KAFKA_BOOTSTRAP_SERVERS"] == "127.0.0.1:9092"
    for absent in ("VNPAY_PAY_URL", "VNPAY_API_URL", "VNPAY_IPN_URL", "AUTH_JWKS_URL", "PKI_BASE_URL"):
        assert absent not in env


def test_a_peer_that_runs_is_told_to_the_service() -> None:
    stack = Stack(kafka_bootstrap="k:1", mongodb_url="mongodb://m:2/")
    env = stack.service_env("payment", 9002, {"payment": 9002, "gateway": 9005})
    assert env["VNPAY_PAY_URL"] == "http://127.0.0.1:9005/sandbox/pay"
    assert env["VNPAY_API_URL"] == "http://127.0.0.1:9005/merchant_webapi/api/transaction"
    assert env["VNPAY_IPN_URL"] == "http://127.0.0.1:9002/v1/payments/vnpay/ipn"
    assert "AUTH_JWKS_URL" not in env and "PKI_BASE_URL" not in env


def test_the_whole_stack_gets_every_address() -> None:
    stack = Stack(kafka_bootstrap="k:1", mongodb_url="mongodb://m:2/")
    ports = {n: 9000 + i for i, n in enumerate((*SERVICES, *PEERS))}
    env = stack.service_env("signing", ports["signing"], ports)
    assert env["AUTH_JWKS_URL"] == f"http://127.0.0.1:{ports['registration']}/.well-known/jwks.json"
    assert env["PKI_BASE_URL"] == f"http://127.0.0.1:{ports['signing']}"
    assert env["VNPAY_PAY_URL"].startswith(f"http://127.0.0.1:{ports['gateway']}/")


def test_unknown_service_names_are_refused_before_anything_starts() -> None:
    stack = Stack(kafka_bootstrap="k:1", mongodb_url="mongodb://m:2/")
    with pytest.raises(ValueError, match="otpp"):
        stack.start(only=("otpp",))
    assert stack.services == {}


def test_an_attached_stack_uses_the_services_but_never_stops_them() -> None:
    owner = Stack(kafka_bootstrap="k:1", mongodb_url="mongodb://m:2/")
    attached = Stack.attach(owner.describe())
    assert (attached.run_id, attached.kafka_bootstrap, attached.mongodb_url) == (owner.run_id, "k:1", "mongodb://m:2/")
    described = (
        '{"run_id": "abc", "kafka_bootstrap": "k:1", "mongodb_url": "m", "run_dir": "/tmp/x",'
        ' "services": {"otp": {"port": 8123, "pid": 4242}}}'
    )
    attached = Stack.attach(described)
    assert attached.url("otp") == "http://127.0.0.1:8123"
    assert attached.services["otp"].pid == 4242
    attached.stop()  # nothing of its own to stop: pid 4242 is not signalled
    with pytest.raises(RuntimeError, match="attached"):
        attached.kill_service("otp")
