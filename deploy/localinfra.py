#!/usr/bin/env python3
"""Provision, start, check and stop a real local Kafka broker and a MongoDB-wire database.

There is no Docker engine on our build machines and Debian packages neither Kafka nor MongoDB, so
the project assembles both from package registries it can reach:

* Apache Kafka 4.1.x (KRaft, single node) from Maven Central, run on the machine's Java.
* FerretDB v1.24.x on SQLite, built from the Go module proxy (pure Go, no cgo).

Built artefacts are cached under ``$XDG_CACHE_HOME/kyso`` (default ``~/.cache/kyso``) keyed by
version, so only the first run on a machine pays for downloads and compilation. Every start uses
free loopback ports and its own data directory; processes are stopped by PID.

If ``KAFKA_BOOTSTRAP_SERVERS`` and ``MONGODB_URL`` are both set, nothing is started: the caller
uses those servers (docker-compose, a real MongoDB) instead.

This file uses only the standard library so that CI can run it before any dependency exists.

    python deploy/localinfra.py provision           # download and build once (cached)
    python deploy/localinfra.py up [--dir D]        # start both, wait until ready, print env
    python deploy/localinfra.py status [--dir D]    # readiness of a running pair
    python deploy/localinfra.py down [--dir D]      # stop what `up` started
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import json
import os
import re
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import asdict, dataclass
from pathlib import Path

KAFKA_VERSION = "4.1.1"
LOG4J_VERSION = "2.24.3"
FERRETDB_VERSION = "v1.24.2"
FERRETDB_MODULE = "github.com/FerretDB/FerretDB"
# Our patch level of the FerretDB build (part of the cache key): see FERRETDB_PATCHES.
FERRETDB_PATCH = "kyso4"

STATE_FILE = "localinfra.json"

# WAL with synchronous=NORMAL: a killed FerretDB or service loses nothing (the WAL survives a
# process crash); only a power loss of this machine can drop the last commits. The default (FULL)
# costs an fsync per write — 15–20 ms here, which made every guarded update that slow. Production
# runs on MongoDB (see docker-compose.yml), where durability is MongoDB's journal's job.
SQLITE_PRAGMAS = "_pragma=busy_timeout(10000)&_pragma=journal_mode(wal)&_pragma=synchronous(normal)"


def cache_root() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "kyso"


def log(msg: str) -> None:
    print(f"[localinfra] {msg}", file=sys.stderr, flush=True)


# --------------------------------------------------------------------------- provisioning


def kafka_home() -> Path:
    return cache_root() / f"kafka-{KAFKA_VERSION}"


def ferretdb_binary() -> Path:
    return cache_root() / f"ferretdb-{FERRETDB_VERSION}-{FERRETDB_PATCH}" / "ferretdb"


_POM = """<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>dev.kyso</groupId>
  <artifactId>local-kafka</artifactId>
  <version>1</version>
  <packaging>pom</packaging>
  <dependencies>
    <dependency><groupId>org.apache.kafka</groupId><artifactId>kafka_2.13</artifactId>
      <version>{kafka}</version></dependency>
    <dependency><groupId>org.apache.logging.log4j</groupId><artifactId>log4j-slf4j-impl</artifactId>
      <version>{log4j}</version></dependency>
    <dependency><groupId>org.apache.logging.log4j</groupId><artifactId>log4j-core</artifactId>
      <version>{log4j}</version></dependency>
    <dependency><groupId>org.apache.logging.log4j</groupId><artifactId>log4j-api</artifactId>
      <version>{log4j}</version></dependency>
  </dependencies>
</project>
"""

_LOG4J2 = """<?xml version="1.0" encoding="UTF-8"?>
<Configuration status="WARN">
  <Appenders>
    <Console name="out" target="SYSTEM_OUT">
      <PatternLayout pattern="%d{ISO8601} %-5p [%c{1}] %m%n"/>
    </Console>
  </Appenders>
  <Loggers>
    <Logger name="kafka" level="WARN"/>
    <Logger name="org.apache.kafka" level="WARN"/>
    <Logger name="state.change.logger" level="WARN"/>
    <Root level="WARN"><AppenderRef ref="out"/></Root>
  </Loggers>
</Configuration>
"""


def provision_kafka() -> Path:
    home = kafka_home()
    done = home / ".complete"
    if done.exists():
        return home
    log(f"provisioning Apache Kafka {KAFKA_VERSION} from Maven Central (first run only)")
    if not shutil.which("mvn") or not shutil.which("java"):
        raise SystemExit("Kafka needs `java` (17+) and `mvn` on PATH")
    staging = Path(tempfile.mkdtemp(prefix="kafka-", dir=str(cache_root())))
    (staging / "pom.xml").write_text(_POM.format(kafka=KAFKA_VERSION, log4j=LOG4J_VERSION))
    subprocess.run(
        [
            "mvn",
            "-B",
            "-q",
            "-f",
            str(staging / "pom.xml"),
            "org.apache.maven.plugins:maven-dependency-plugin:3.6.1:copy-dependencies",
            "-DincludeScope=runtime",
            f"-DoutputDirectory={staging / 'libs'}",
        ],
        check=True,
    )
    (staging / "log4j2.xml").write_text(_LOG4J2)
    (staging / ".complete").write_text(KAFKA_VERSION)
    if home.exists():
        shutil.rmtree(home)
    staging.rename(home)
    return home


def provision_ferretdb() -> Path:
    binary = ferretdb_binary()
    if binary.exists():
        return binary
    log(f"building FerretDB {FERRETDB_VERSION} from the Go module proxy (first run only)")
    if not shutil.which("go"):
        raise SystemExit("FerretDB needs `go` on PATH")
    env = {**os.environ, "CGO_ENABLED": "0"}
    info = json.loads(
        subprocess.run(
            ["go", "mod", "download", "-json", f"{FERRETDB_MODULE}@{FERRETDB_VERSION}"],
            check=True,
            capture_output=True,
            text=True,
            env=env,
        ).stdout
    )
    src = Path(tempfile.mkdtemp(prefix="ferretdb-src-", dir=str(cache_root())))
    try:
        # The module cache is read-only and lacks the generated version file the binary needs.
        shutil.copytree(info["Dir"], src / "m", copy_function=shutil.copy)
        mod = src / "m"
        for p in mod.rglob("*"):
            p.chmod(0o755 if p.is_dir() else 0o644)
        (mod / "build" / "version" / "version.txt").write_text(FERRETDB_VERSION + "\n")
        (mod / "build" / "version" / "package.txt").write_text("kyso-local\n")
        _patch_ferretdb(mod)
        binary.parent.mkdir(parents=True, exist_ok=True)
        tmp_bin = binary.with_suffix(".tmp")
        subprocess.run(
            ["go", "build", "-trimpath", "-o", str(tmp_bin), "./cmd/ferretdb"],
            cwd=mod,
            check=True,
            env=env,
        )
        tmp_bin.rename(binary)
    finally:
        shutil.rmtree(src, ignore_errors=True)
    return binary


PATCHES_DIR = Path(__file__).resolve().parent / "patches"
FERRETDB_PATCHES = (
    "ferretdb-write-lock.patch",  # the atomicity kyso_kit.store relies on (its docstring names this file)
    "ferretdb-id-pushdown.patch",
    "ferretdb-indexed-equality.patch",
    "ferretdb-id-index-expression.patch",
)
"""Applied in this order to the FerretDB module source; each file says why. Changing their effect on
the source changes the binary: bump :data:`FERRETDB_PATCH` then (the cache key)."""


def _patch_ferretdb(mod: Path) -> None:
    """Apply :data:`FERRETDB_PATCHES` (unified diffs in ``deploy/patches``) to the module source at ``mod``."""
    for name in FERRETDB_PATCHES:
        apply_patch(mod, (PATCHES_DIR / name).read_text(), name)


_HUNK = re.compile(r"^@@ -(\d+)(?:,(\d+))? \+(\d+)(?:,(\d+))? @@")


def apply_patch(root: Path, text: str, name: str = "patch") -> None:
    """Apply a unified diff (``diff -ruN a b``; text before the first ``---`` is its description) to the
    tree at ``root``, strictly: every context and removed line must be where the hunk says, else
    RuntimeError (upstream changed: the patch must be redone, never applied approximately)."""
    lines = text.splitlines(keepends=True)
    i = 0
    while i < len(lines):
        if not (lines[i].startswith("--- ") and i + 1 < len(lines) and lines[i + 1].startswith("+++ ")):
            i += 1
            continue
        rel = lines[i + 1][4:].strip().split("/", 1)[1]
        path = root / rel
        i += 2
        hunks: list[tuple[int, int, list[str]]] = []
        while i < len(lines) and (m := _HUNK.match(lines[i])):
            old_start, old_len = int(m.group(1)), int(m.group(2) or 1)
            old_left, new_left = old_len, int(m.group(4) or 1)
            body: list[str] = []
            i += 1
            while old_left or new_left:  # a hunk is exactly as long as its header says
                line = lines[i]
                i += 1
                if line.startswith("\\"):  # "\ No newline at end of file"
                    continue
                if line[0] not in " -+":
                    raise RuntimeError(f"{name}: malformed hunk in {rel}")
                old_left -= line[0] in " -"
                new_left -= line[0] in " +"
                body.append(line)
            hunks.append((old_start, old_len, body))
        new_file = len(hunks) == 1 and hunks[0][0] == 0 and hunks[0][1] == 0
        if new_file and path.exists():
            raise RuntimeError(f"{name}: {rel} exists already")
        src = [] if new_file else path.read_text().splitlines(keepends=True)
        out: list[str] = []
        at = 0
        for old_start, _old_len, body in hunks:
            start = max(old_start - 1, 0)
            out.extend(src[at:start])
            at = start
            for line in body:
                if line[0] in " -":
                    if at >= len(src) or src[at] != line[1:]:
                        raise RuntimeError(f"{name}: {rel} does not match at line {at + 1}")
                    at += 1
                if line[0] in " +":
                    out.append(line[1:])
        out.extend(src[at:])
        path.write_text("".join(out))


def provision() -> None:
    cache_root().mkdir(parents=True, exist_ok=True)
    t0 = time.monotonic()
    provision_kafka()
    provision_ferretdb()
    log(f"provisioned in {time.monotonic() - t0:.1f}s (cache: {cache_root()})")


# --------------------------------------------------------------------------- readiness probes


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def free_ports(n: int) -> list[int]:
    """``n`` distinct free ports (asked one by one, the OS may hand the same one out twice)."""
    ports: list[int] = []
    while len(ports) < n:
        port = free_port()
        if port not in ports:
            ports.append(port)
    return ports


def _recv_exact(sock: socket.socket, n: int) -> bytes:
    buf = b""
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            raise ConnectionError("closed")
        buf += chunk
    return buf


def kafka_metadata_ok(host: str, port: int, timeout: float = 2.0) -> bool:
    """A Metadata v0 request that lists at least one broker: the broker is serving, not booting."""
    client_id = b"kyso-localinfra"
    body = struct.pack(">hhih", 3, 0, 1, len(client_id)) + client_id + struct.pack(">i", 0)
    try:
        with socket.create_connection((host, port), timeout=timeout) as s:
            s.settimeout(timeout)
            s.sendall(struct.pack(">i", len(body)) + body)
            (size,) = struct.unpack(">i", _recv_exact(s, 4))
            payload = _recv_exact(s, size)
    except OSError:
        return False
    (corr, n_brokers) = struct.unpack(">ii", payload[:8])
    return bool(corr == 1 and n_brokers >= 1)


def _bson_ping() -> bytes:
    # {"ping": 1, "$db": "admin"} as an OP_MSG with one body section.
    def cstr(s: str) -> bytes:
        return s.encode() + b"\x00"

    elems = b"\x10" + cstr("ping") + struct.pack("<i", 1)
    elems += b"\x02" + cstr("$db") + struct.pack("<i", 6) + cstr("admin")
    doc = struct.pack("<i", len(elems) + 5) + elems + b"\x00"
    msg = struct.pack("<I", 0) + b"\x00" + doc
    header = struct.pack("<iiii", 16 + len(msg), 1, 0, 2013)
    return header + msg


def mongo_ping_ok(host: str, port: int, timeout: float = 2.0) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout) as s:
            s.settimeout(timeout)
            s.sendall(_bson_ping())
            (length,) = struct.unpack("<i", _recv_exact(s, 4))
            reply = _recv_exact(s, length - 4)
    except OSError:
        return False
    # The reply document carries "ok": 1.0 (a double) when the server is serving.
    return b"\x01ok\x00" + struct.pack("<d", 1.0) in reply


# --------------------------------------------------------------------------- running


@dataclass
class Running:
    dir: str
    kafka_port: int
    controller_port: int
    mongo_port: int
    kafka_pid: int
    ferretdb_pid: int

    @property
    def kafka_bootstrap(self) -> str:
        return f"127.0.0.1:{self.kafka_port}"

    @property
    def mongodb_url(self) -> str:
        return f"mongodb://127.0.0.1:{self.mongo_port}/"

    def env(self) -> dict[str, str]:
        return {"KAFKA_BOOTSTRAP_SERVERS": self.kafka_bootstrap, "MONGODB_URL": self.mongodb_url}

    def ready(self) -> bool:
        return kafka_metadata_ok("127.0.0.1", self.kafka_port) and mongo_ping_ok("127.0.0.1", self.mongo_port)


def _kafka_properties(data: Path, port: int, cport: int) -> str:
    props = {
        "process.roles": "broker,controller",
        "node.id": "1",
        "controller.quorum.voters": f"1@127.0.0.1:{cport}",
        "listeners": f"PLAINTEXT://127.0.0.1:{port},CONTROLLER://127.0.0.1:{cport}",
        "advertised.listeners": f"PLAINTEXT://127.0.0.1:{port}",
        "controller.listener.names": "CONTROLLER",
        "inter.broker.listener.name": "PLAINTEXT",
        "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
        "offsets.topic.replication.factor": "1",
        "offsets.topic.num.partitions": "3",
        "transaction.state.log.replication.factor": "1",
        "transaction.state.log.min.isr": "1",
        "share.coordinator.state.topic.replication.factor": "1",
        "share.coordinator.state.topic.min.isr": "1",
        "group.initial.rebalance.delay.ms": "0",
        # topics auto-created by a client get as many partitions as kyso creates its own with
        # (KAFKA_TOPIC_PARTITIONS): up to 12 instances of one service share its events
        "num.partitions": "12",
        "auto.create.topics.enable": "true",
        "log.dirs": str(data / "kafka-logs"),
    }
    return "".join(f"{k}={v}\n" for k, v in props.items())


def _spawn(cmd: list[str], logfile: Path, env: dict[str, str] | None = None) -> int:
    with open(logfile, "ab") as out:
        proc = subprocess.Popen(
            cmd,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            env=env,
        )
    return proc.pid


def new_cluster_id() -> str:
    """A Kafka cluster id: 16 random bytes, base64url. Like Kafka's own Uuid.randomUuid(), never one that
    starts with "-" — StorageTool would read it as an option (1 start in 64 failed before this)."""
    while True:
        cid = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not cid.startswith("-"):
            return cid


def _java_common(home: Path) -> list[str]:
    return ["java", "-cp", f"{home / 'libs'}/*", f"-Dlog4j2.configurationFile={home / 'log4j2.xml'}"]


def _spawn_kafka(run_dir: Path) -> int:
    return _spawn(
        ["java", "-Xms256m", "-Xmx512m", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1",
         *_java_common(kafka_home())[1:], "kafka.Kafka", str(run_dir / "server.properties")],
        run_dir / "kafka.log",
    )  # fmt: skip


def _spawn_ferretdb(run_dir: Path, port: int) -> int:
    sqlite_dir = run_dir / "ferretdb"
    sqlite_dir.mkdir(exist_ok=True)
    return _spawn(
        [str(ferretdb_binary()), "--handler=sqlite", f"--sqlite-url=file:{sqlite_dir}/?{SQLITE_PRAGMAS}",
         f"--listen-addr=127.0.0.1:{port}", "--state-dir=-", "--debug-addr=-", "--telemetry=disable",
         "--log-level=warn"],
        run_dir / "ferretdb.log",
        # One Go scheduler thread: writes are serialised and SQLite has one writer anyway, and with the
        # default (one per core) idle threads spin for work between requests. Measured with the OTP part
        # of bench/perf.py: 1.6 → 1.26 ms of database CPU per verification, throughput up 8 %.
        env=os.environ | {"GOMAXPROCS": "1"},
    )  # fmt: skip


def crash_and_restart(running: Running, server: str, down_seconds: float = 0.0, timeout: float = 90.0) -> None:
    """Kill one server with SIGKILL (a crash, not a shutdown) and start it again on the same port and
    data directory. For fault-injection tests; updates ``running`` and its state file."""
    run_dir = Path(running.dir)
    if server == "kafka":
        _terminate(running.kafka_pid, grace=0, sig=signal.SIGKILL)
        time.sleep(down_seconds)
        running.kafka_pid = _spawn_kafka(run_dir)
    elif server == "ferretdb":
        _terminate(running.ferretdb_pid, grace=0, sig=signal.SIGKILL)
        time.sleep(down_seconds)
        running.ferretdb_pid = _spawn_ferretdb(run_dir, running.mongo_port)
    else:
        raise ValueError(server)
    (run_dir / STATE_FILE).write_text(json.dumps(asdict(running)))
    deadline = time.monotonic() + timeout
    while not running.ready():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{server} not ready again after {timeout}s")
        time.sleep(0.3)


def start(run_dir: Path | None = None, timeout: float = 120.0) -> Running:
    """Start both servers in ``run_dir`` (fresh temp dir by default) and wait until ready."""
    provision()
    run_dir = Path(run_dir) if run_dir else Path(tempfile.mkdtemp(prefix="kyso-infra-"))
    run_dir.mkdir(parents=True, exist_ok=True)
    home = kafka_home()
    kport, cport, mport = free_ports(3)

    props = run_dir / "server.properties"
    props.write_text(_kafka_properties(run_dir, kport, cport))
    # A run directory keeps its cluster id, so `up` after `down` restarts the same broker and data.
    cid_file = run_dir / "cluster.id"
    if not cid_file.exists():
        cid_file.write_text(new_cluster_id())
    cid = cid_file.read_text().strip()
    subprocess.run(
        [*_java_common(home), "kafka.tools.StorageTool", "format", "-t", cid, "-c", str(props), "--ignore-formatted"],
        check=True,
        stdout=subprocess.DEVNULL,
    )
    kafka_pid = _spawn_kafka(run_dir)
    ferret_pid = _spawn_ferretdb(run_dir, mport)
    running = Running(str(run_dir), kport, cport, mport, kafka_pid, ferret_pid)
    (run_dir / STATE_FILE).write_text(json.dumps(asdict(running)))

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for name, pid in (("kafka", kafka_pid), ("ferretdb", ferret_pid)):
            if not _alive(pid):
                stop(running)
                tail = (run_dir / f"{name}.log").read_text(errors="replace")[-3000:]
                raise RuntimeError(f"{name} exited during start-up:\n{tail}")
        if running.ready():
            return running
        time.sleep(0.3)
    stop(running)
    raise TimeoutError(f"local infrastructure not ready after {timeout}s (logs in {run_dir})")


def _alive(pid: int) -> bool:
    try:
        waited, _ = os.waitpid(pid, os.WNOHANG)
        if waited == pid:
            return False
    except ChildProcessError:
        pass
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def _terminate(pid: int, grace: float = 15.0, sig: int = signal.SIGTERM) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, sig)
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline and _alive(pid):
        time.sleep(0.1)
    if _alive(pid):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and _alive(pid):
        time.sleep(0.05)


def stop(running: Running) -> None:
    _terminate(running.kafka_pid)
    _terminate(running.ferretdb_pid)


def load(run_dir: Path) -> Running:
    return Running(**json.loads((Path(run_dir) / STATE_FILE).read_text()))


def default_dir() -> Path:
    return cache_root() / "run"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("command", choices=["provision", "up", "status", "down", "env"])
    parser.add_argument("--dir", type=Path, default=None, help="run directory (default: cache/run)")
    args = parser.parse_args(argv)
    run_dir = args.dir or default_dir()

    if args.command == "provision":
        provision()
        return 0
    if args.command == "up":
        if (run_dir / STATE_FILE).exists():
            existing = load(run_dir)
            if existing.ready():
                print(json.dumps(existing.env()))
                return 0
            stop(existing)
            shutil.rmtree(run_dir, ignore_errors=True)
        t0 = time.monotonic()
        running = start(run_dir)
        log(f"ready in {time.monotonic() - t0:.1f}s: {running.env()}")
        print(json.dumps(running.env()))
        return 0
    if not (run_dir / STATE_FILE).exists():
        log(f"nothing running in {run_dir}")
        return 1
    running = load(run_dir)
    if args.command == "status":
        ok = running.ready()
        print(json.dumps({"ready": ok, **running.env()}))
        return 0 if ok else 1
    if args.command == "env":
        for k, v in running.env().items():
            print(f"export {k}={v}")
        return 0
    stop(running)
    (run_dir / STATE_FILE).unlink(missing_ok=True)
    log("stopped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
