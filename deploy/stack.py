"""Run the whole kyso system on this machine: real Kafka + FerretDB (or servers you point at) and the
four services as separate processes on free loopback ports.

Used by the demo (`deploy/demo.py`) and the end-to-end tests.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import localinfra

SERVICES = ("registration", "payment", "signing", "otp")
# processes started beside the services: the sandbox payment gateway plays VNPay, over HTTP only
PEERS = {"gateway": "kyso_payment.sandbox_gateway"}


@dataclass
class ServiceProcess:
    name: str
    port: int
    proc: subprocess.Popen[bytes]
    log_path: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


@dataclass
class Stack:
    run_dir: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="kyso-stack-")))
    infra: localinfra.Running | None = None
    services: dict[str, ServiceProcess] = field(default_factory=dict)
    kafka_bootstrap: str = ""
    mongodb_url: str = ""
    run_id: str = field(default_factory=lambda: uuid.uuid4().hex[:8])

    def start_infra(self) -> None:
        if self.kafka_bootstrap and self.mongodb_url:
            return  # servers given by the caller
        env_kafka = os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
        env_mongo = os.environ.get("MONGODB_URL")
        if env_kafka and env_mongo:
            self.kafka_bootstrap, self.mongodb_url = env_kafka, env_mongo
            return
        self.infra = localinfra.start(self.run_dir / "infra")
        self.kafka_bootstrap, self.mongodb_url = self.infra.kafka_bootstrap, self.infra.mongodb_url

    def service_env(self, name: str, port: int, ports: dict[str, int]) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("KYSO_", "HTTP_", "MONGODB_DATABASE"))}
        env.update(
            KAFKA_BOOTSTRAP_SERVERS=self.kafka_bootstrap,
            MONGODB_URL=self.mongodb_url,
            # One database per service, and per run so runs can share one server without clean-up.
            MONGODB_DATABASE=f"kyso_{name}_{self.run_id}",
            HTTP_HOST="127.0.0.1",
            HTTP_PORT=str(port),
            KYSO_PROFILE="development",
            LOG_LEVEL=os.environ.get("LOG_LEVEL", "INFO"),
            VNPAY_PAY_URL=f"http://127.0.0.1:{ports['gateway']}/sandbox/pay",
            VNPAY_API_URL=f"http://127.0.0.1:{ports['gateway']}/merchant_webapi/api/transaction",
            VNPAY_IPN_URL=f"http://127.0.0.1:{ports['payment']}/v1/payments/vnpay/ipn",
            # a payment whose IPN never comes is asked about after 3 s here (5 minutes by default)
            RECONCILE_AFTER_SECONDS="3",
            RECONCILE_EVERY_SECONDS="1",
            # every service reads the access-token keys registration publishes (rotation without redeploys)
            AUTH_JWKS_URL=f"http://127.0.0.1:{ports['registration']}/.well-known/jwks.json",
            # where relying parties fetch CRLs, CA certificates and OCSP answers (written into certificates)
            PKI_BASE_URL=f"http://127.0.0.1:{ports['signing']}",
        )
        return env

    def start_service(self, name: str, port: int, ports: dict[str, int]) -> ServiceProcess:
        log_path = self.run_dir / f"{name}.log"
        out = open(log_path, "ab")  # noqa: SIM115 - handed to the child process
        proc = subprocess.Popen(
            [sys.executable, "-m", PEERS.get(name, f"kyso_{name}")],
            env=self.service_env(name, port, ports),
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        sp = ServiceProcess(name, port, proc, log_path)
        self.services[name] = sp
        return sp

    def start(self, timeout: float = 90.0) -> Stack:
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.start_infra()
        names = (*SERVICES, *PEERS)
        ports = dict(zip(names, localinfra.free_ports(len(names)), strict=True))
        for name in (*PEERS, *SERVICES):
            self.start_service(name, ports[name], ports)
        for sp in self.services.values():
            self.wait_ready(sp, timeout)
        return self

    def wait_ready(self, sp: ServiceProcess, timeout: float = 90.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if sp.proc.poll() is not None:
                raise RuntimeError(f"{sp.name} exited with {sp.proc.returncode}:\n{self.tail(sp.name)}")
            try:
                with urllib.request.urlopen(f"{sp.url}/ready", timeout=2) as resp:
                    if resp.status == 200:
                        return
            except OSError:
                pass
            time.sleep(0.3)
        raise TimeoutError(f"{sp.name} not ready after {timeout}s:\n{self.tail(sp.name)}")

    def tail(self, name: str, chars: int = 4000) -> str:
        path = self.run_dir / f"{name}.log"
        return path.read_text(errors="replace")[-chars:] if path.exists() else ""

    def run_tool(self, service: str, module: str, *args: str, env: dict[str, str] | None = None) -> str:
        """Run one of a service's command-line tools (``kyso-admin``, ``kyso-audit``…) against this stack's
        database, as an administrator would; its standard output."""
        full = {
            **os.environ,
            "MONGODB_URL": self.mongodb_url,
            "MONGODB_DATABASE": f"kyso_{service}_{self.run_id}",
            "KAFKA_BOOTSTRAP_SERVERS": self.kafka_bootstrap,
            "KYSO_PROFILE": "development",
            **(env or {}),
        }
        out = subprocess.run(
            [sys.executable, "-m", module, *args], env=full, capture_output=True, text=True, timeout=60, check=True
        )
        return out.stdout.strip()

    def create_operator(self, phone: str, password: str, roles: tuple[str, ...] = ("operator",)) -> str:
        """An operator (or auditor) account made with the real ``kyso-admin``; its account id."""
        args = ["create-operator", "--phone", phone]
        for role in roles:
            args += ["--role", role]
        return self.run_tool("registration", "kyso_registration.admin", *args, env={"KYSO_ADMIN_PASSWORD": password})

    def url(self, name: str) -> str:
        return self.services[name].url

    def kill_service(self, name: str, sig: int = signal.SIGKILL) -> None:
        sp = self.services[name]
        try:
            os.killpg(sp.proc.pid, sig)
        except ProcessLookupError:
            pass
        sp.proc.wait(timeout=30)

    def restart_service(self, name: str) -> None:
        sp = self.services[name]
        ports = {n: s.port for n, s in self.services.items()}
        self.start_service(name, sp.port, ports)
        self.wait_ready(self.services[name])

    def stop(self) -> None:
        for sp in self.services.values():
            if sp.proc.poll() is None:
                try:
                    os.killpg(sp.proc.pid, signal.SIGTERM)
                except ProcessLookupError:
                    continue
        for sp in self.services.values():
            try:
                sp.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(sp.proc.pid, signal.SIGKILL)
                sp.proc.wait(timeout=10)
        if self.infra is not None:
            localinfra.stop(self.infra)
            self.infra = None

    def __enter__(self) -> Stack:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()
