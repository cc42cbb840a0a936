"""Several instances of every kyso service on this machine, each service behind one address: a small
round-robin TCP proxy on loopback in front of its instances, as a load balancer would be.

Built on :class:`stack.Stack` (its infrastructure, environment and readiness checks); used by the
scale-out test (``tests/e2e/test_scale_out.py``) and benchmark (``bench/scale_out.py``).

Every instance gets ``KAFKA_GROUP_INSTANCE_ID=<service>-<n>`` (static membership: a restarted instance
takes its partitions back without a rebalance of its group) and keeps its port across restarts.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Coroutine
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import localinfra
from stack import PEERS, SERVICES, ServiceProcess, Stack

IDLE_SECONDS = 0.2  # a connection with no byte either way for this long after a response is between requests


@dataclass(eq=False)
class _Conn:
    client: asyncio.StreamWriter
    backend: asyncio.StreamWriter
    awaiting_response: bool = False
    last_activity: float = field(default_factory=time.monotonic)

    def close(self) -> None:
        for w in (self.client, self.backend):
            with contextlib.suppress(Exception):
                w.close()


class RoundRobin:
    """A round-robin TCP proxy on 127.0.0.1 in a thread of its own: each new connection goes to the next
    instance that accepts it (one that refuses — stopped, restarting — is skipped). ``drain`` takes an
    instance out of rotation and closes its connections as they fall idle, as a load balancer does before
    an instance is stopped."""

    def __init__(self, name: str, backends: list[int]) -> None:
        self.name = name
        self.backends = backends
        self.port = localinfra.free_port()
        self.drained: set[int] = set()
        self.conns: dict[int, set[_Conn]] = {p: set() for p in backends}
        self.served: dict[int, int] = dict.fromkeys(backends, 0)
        self._turn = itertools.cycle(range(len(backends)))
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name=f"rr-{name}", daemon=True)
        self._server: asyncio.Server | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _call(self, coro: Coroutine[Any, Any, Any], timeout: float = 60.0) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout)

    def start(self) -> RoundRobin:
        self._thread.start()

        async def listen() -> None:
            self._server = await asyncio.start_server(self._serve, "127.0.0.1", self.port)

        self._call(listen())
        return self

    def stop(self) -> None:
        async def close() -> None:
            if self._server is not None:
                self._server.close()
            for conns in self.conns.values():
                for c in conns:
                    c.close()

        with contextlib.suppress(Exception):
            self._call(close(), timeout=5)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=5)

    def drain(self, port: int, timeout: float = 20.0) -> None:
        """Send no new connection to ``port``; close its connections once idle (in-flight requests and
        long-polls end first). Returns when none is left, or after ``timeout``."""

        async def run() -> None:
            self.drained.add(port)
            deadline = time.monotonic() + timeout
            while self.conns[port] and time.monotonic() < deadline:
                now = time.monotonic()
                for c in list(self.conns[port]):
                    if not c.awaiting_response and now - c.last_activity >= IDLE_SECONDS:
                        c.close()
                        self.conns[port].discard(c)
                await asyncio.sleep(0.05)

        self._call(run(), timeout=timeout + 5)

    def restore(self, port: int) -> None:
        self._loop.call_soon_threadsafe(self.drained.discard, port)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        for _ in range(len(self.backends) * 3):
            port = self.backends[next(self._turn)]
            if port in self.drained:
                continue
            try:
                b_reader, b_writer = await asyncio.open_connection("127.0.0.1", port)
            except OSError:
                continue
            break
        else:
            writer.close()
            return
        conn = _Conn(writer, b_writer)
        self.conns[port].add(conn)
        self.served[port] += 1
        try:
            await asyncio.gather(self._pipe(reader, b_writer, conn, True), self._pipe(b_reader, writer, conn, False))
        finally:
            self.conns[port].discard(conn)
            conn.close()

    @staticmethod
    async def _pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter, conn: _Conn, upstream: bool) -> None:
        try:
            while data := await src.read(65536):
                conn.awaiting_response = upstream
                conn.last_activity = time.monotonic()
                dst.write(data)
                await dst.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            conn.close()


@dataclass
class Cluster:
    """``instances`` processes of each service (``only``: of these), each service behind a RoundRobin."""

    instances: int = 2
    stack: Stack = field(default_factory=Stack)
    only: tuple[str, ...] = SERVICES
    procs: dict[tuple[str, int], ServiceProcess] = field(default_factory=dict)
    fronts: dict[str, RoundRobin] = field(default_factory=dict)
    peers: dict[str, ServiceProcess] = field(default_factory=dict)
    extra_env: dict[str, str] = field(default_factory=dict)

    def start(self, timeout: float = 120.0, running: int | None = None) -> Cluster:
        """Start the infrastructure (unless given), the proxies and ``running`` (default: all) instances of
        each service; the others can be started later with :meth:`start_instance`."""
        self.stack.run_dir.mkdir(parents=True, exist_ok=True)
        self.stack.start_infra()
        for name in self.only:
            self.fronts[name] = RoundRobin(name, localinfra.free_ports(self.instances)).start()
        if "payment" in self.only:
            for peer in PEERS:
                self.peers[peer] = self.stack.start_service(peer, localinfra.free_port(), self._front_ports())
        for name in self.only:
            for i in range(self.instances if running is None else running):
                self.start_instance(name, i)
        for sp in [*self.peers.values(), *self.procs.values()]:
            self.stack.wait_ready(sp, timeout)
        return self

    def _front_ports(self) -> dict[str, int]:
        ports = {n: rr.port for n, rr in self.fronts.items()}
        ports.update({n: sp.port for n, sp in self.peers.items()})
        return ports

    def start_instance(self, name: str, i: int) -> ServiceProcess:
        port = self.fronts[name].backends[i]
        label = f"{name}-{i}"
        env = self.stack.service_env(name, port, self._front_ports())
        env.update(KAFKA_GROUP_INSTANCE_ID=label, **self.extra_env)
        log_path = self.stack.run_dir / f"{label}.log"
        out = open(log_path, "ab")  # noqa: SIM115 - handed to the child process
        proc = subprocess.Popen(
            [sys.executable, "-m", f"kyso_{name}"],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        sp = ServiceProcess(label, port, proc, log_path)
        self.procs[(name, i)] = sp
        return sp

    def url(self, name: str) -> str:
        return self.fronts[name].url

    def stop_instance(self, name: str, i: int, sig: int = signal.SIGTERM, drain: bool = True) -> float:
        """Take instance ``i`` out of rotation (``drain``), then signal it; seconds until it exited."""
        sp = self.procs[(name, i)]
        assert sp.proc is not None
        if drain:
            self.fronts[name].drain(sp.port)
        started = time.monotonic()
        with contextlib.suppress(ProcessLookupError):
            os.killpg(sp.proc.pid, sig)
        sp.proc.wait(timeout=60)
        return time.monotonic() - started

    def restart_instance(self, name: str, i: int, sig: int = signal.SIGTERM) -> tuple[float, float]:
        """Stop (``sig``) and start instance ``i`` again on its port: (seconds to exit, seconds to ready)."""
        stopped = self.stop_instance(name, i, sig)
        started = time.monotonic()
        sp = self.start_instance(name, i)
        self.stack.wait_ready(sp)
        self.fronts[name].restore(sp.port)
        return stopped, time.monotonic() - started

    def log_text(self) -> dict[str, str]:
        """Every instance's log (all its runs), by ``<service>-<n>``."""
        return {p.stem: p.read_text(errors="replace") for p in sorted(Path(self.stack.run_dir).glob("*-[0-9]*.log"))}

    def stop(self) -> None:
        owned = [sp.proc for sp in [*self.procs.values(), *self.peers.values()] if sp.proc is not None]
        for proc in owned:
            if proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGTERM)
        for proc in owned:
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=10)
        for rr in self.fronts.values():
            rr.stop()
        self.stack.stop()  # the infrastructure it started, if any

    def __enter__(self) -> Cluster:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()
