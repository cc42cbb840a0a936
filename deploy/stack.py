"""Run the whole kyso system on this machine: real Kafka + FerretDB (or servers you point at) and the
four services as separate processes on free loopback ports.

Used by the demo (`deploy/demo.py`) and the end-to-end tests.
"""

from __future__ import annotations

import json
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
    # None when the process belongs to another Stack this one attached to (``Stack.attach``): it is used,
    # never stopped or restarted from here.
    proc: subprocess.Popen[bytes] | None
    log_path: Path
    pid: int = 0

    def __post_init__(self) -> None:
        if self.proc is not None:
            self.pid = self.proc.pid

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
        """The environment of service ``name`` listening on ``port``; ``ports`` holds the processes started
        beside it. A peer missing from ``ports`` (a service started alone, as bench/otp_verify.py does) gets
        no address here, so the service keeps its own development default for it — the addresses of peers
        that are not running would only point at nothing (this used to fail with ``KeyError: 'gateway'``)."""
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
            # a payment whose IPN never comes is asked about after 3 s here (5 minutes by default)
            RECONCILE_AFTER_SECONDS="3",
            RECONCILE_EVERY_SECONDS="1",
        )
        peer = {n: f"http://127.0.0.1:{p}" for n, p in ports.items()}
        if "gateway" in peer:
            env["VNPAY_PAY_URL"] = f"{peer['gateway']}/sandbox/pay"
            env["VNPAY_API_URL"] = f"{peer['gateway']}/merchant_webapi/api/transaction"
        if "payment" in peer:
            env["VNPAY_IPN_URL"] = f"{peer['payment']}/v1/payments/vnpay/ipn"
        if "registration" in peer:
            # every service reads the access-token keys registration publishes (rotation without redeploys)
            env["AUTH_JWKS_URL"] = f"{peer['registration']}/.well-known/jwks.json"
        if "signing" in peer:
            # where relying parties fetch CRLs, CA certificates and OCSP answers (written into certificates)
            env["PKI_BASE_URL"] = peer["signing"]
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

    def start(self, timeout: float = 90.0, only: tuple[str, ...] | None = None) -> Stack:
        """Start the infrastructure (unless given) and the services with their peers; ``only``: just these
        (e.g. ``("otp",)``), each told the addresses of the others started with it and no more."""
        names = tuple(n for n in (*PEERS, *SERVICES) if only is None or n in only)
        unknown = set(only or ()) - set(names)
        if unknown:
            raise ValueError(f"unknown services: {sorted(unknown)}")
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.start_infra()
        ports = dict(zip(names, localinfra.free_ports(len(names)), strict=True))
        for name in names:
            self.start_service(name, ports[name], ports)
        for sp in self.services.values():
            self.wait_ready(sp, timeout)
        return self

    def describe(self) -> str:
        """What another process needs to use this running stack (``Stack.attach``): JSON."""
        return json.dumps(
            {
                "run_id": self.run_id,
                "kafka_bootstrap": self.kafka_bootstrap,
                "mongodb_url": self.mongodb_url,
                "run_dir": str(self.run_dir),
                "services": {n: {"port": sp.port, "pid": sp.pid} for n, sp in self.services.items()},
            }
        )

    @classmethod
    def attach(cls, description: str) -> Stack:
        """A running stack started by another process (its ``describe()``), to use without owning it:
        ``stop()`` leaves its services running; ``kill_service``/``restart_service`` refuse. Lets several
        benchmarks in a row share one stack (bench/harness.py, ``KYSO_BENCH_STACK``)."""
        d = json.loads(description)
        run_dir = Path(d["run_dir"])
        stack = cls(run_dir=run_dir, kafka_bootstrap=d["kafka_bootstrap"], mongodb_url=d["mongodb_url"])
        stack.run_id = d["run_id"]
        for name, s in d["services"].items():
            stack.services[name] = ServiceProcess(name, int(s["port"]), None, run_dir / f"{name}.log", int(s["pid"]))
        return stack

    def wait_ready(self, sp: ServiceProcess, timeout: float = 90.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if sp.proc is not None and sp.proc.poll() is not None:
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

    def _owned(self, name: str) -> subprocess.Popen[bytes]:
        proc = self.services[name].proc
        if proc is None:
            raise RuntimeError(f"{name} belongs to the stack this one attached to: not stopped from here")
        return proc

    def kill_service(self, name: str, sig: int = signal.SIGKILL) -> None:
        proc = self._owned(name)
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            pass
        proc.wait(timeout=30)

    def restart_service(self, name: str) -> None:
        sp = self.services[name]
        self._owned(name)
        ports = {n: s.port for n, s in self.services.items()}
        self.start_service(name, sp.port, ports)
        self.wait_ready(self.services[name])

    def stop(self) -> None:
        owned = [sp.proc for sp in self.services.values() if sp.proc is not None]
        for proc in owned:
            if proc.poll() is None:
                try:
                    os.killpg(proc.pid, signal.SIGTERM)
                except ProcessLookupError:
                    continue
        for proc in owned:
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=10)
        if self.infra is not None:
            localinfra.stop(self.infra)
            self.infra = None

    def __enter__(self) -> Stack:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()
