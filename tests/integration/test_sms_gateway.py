"""The HTTP SMS gateway adapter against a real HTTP server on loopback."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any, ClassVar

import httpx
import pytest

from kyso_otp.delivery import HttpSmsGateway


class Gateway(BaseHTTPRequestHandler):
    received: ClassVar[list[tuple[dict[str, str], dict[str, Any]]]] = []
    fail = False

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        Gateway.received.append((dict(self.headers), body))
        self.send_response(503 if Gateway.fail else 202)
        self.end_headers()
        self.wfile.write(b"{}")

    def log_message(self, *_: Any) -> None:
        pass


@pytest.fixture
def gateway() -> Iterator[str]:
    server = HTTPServer(("127.0.0.1", 0), Gateway)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    Gateway.received.clear()
    Gateway.fail = False
    try:
        yield f"http://127.0.0.1:{server.server_port}/sms"
    finally:
        server.shutdown()


async def test_gateway_receives_the_message_with_the_credential(gateway: str) -> None:
    await HttpSmsGateway(gateway, "s3cret").send("+84912345678", "kyso: ma OTP 123456", reference="ch1")
    [(headers, body)] = Gateway.received
    assert headers["Authorization"] == "Bearer s3cret"
    assert body == {"to": "+84912345678", "text": "kyso: ma OTP 123456", "reference": "ch1"}


async def test_gateway_failure_is_an_error_not_a_silent_success(gateway: str) -> None:
    Gateway.fail = True
    with pytest.raises(httpx.HTTPStatusError):
        await HttpSmsGateway(gateway, None).send("+84912345678", "x", reference="ch2")
