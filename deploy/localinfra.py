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
# Our patch level of the FerretDB build (part of the cache key): see _patch_ferretdb.
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


_WRITE_COMMANDS = ("MsgUpdate", "MsgFindAndModify", "MsgDelete", "MsgInsert")

_PUSHDOWN_GO = """package sqlite

import (
\t"fmt"
\t"strings"

\t"github.com/FerretDB/FerretDB/internal/backends/sqlite/metadata"
\t"github.com/FerretDB/FerretDB/internal/handler/sjson"
\t"github.com/FerretDB/FerretDB/internal/types"
\t"github.com/FerretDB/FerretDB/internal/util/must"
)

// kysoIndexedEquality narrows a query to what an index finds (kyso patch): the first top-level
// filter field compared by equality with a string or a boolean that leads an index. The handler
// re-applies the whole filter to the rows returned, so this only has to keep every match.
func kysoIndexedEquality(meta *metadata.Collection, filter *types.Document) (string, []any) {
\tfor _, key := range filter.Keys() {
\t\tif key == "" || strings.ContainsAny(key, ".$") {
\t\t\tcontinue
\t\t}
\t\tv, _ := filter.Get(key)
\t\tswitch v.(type) {
\t\tcase string, bool:
\t\tdefault:
\t\t\tcontinue
\t\t}
\t\tfor _, index := range meta.Settings.Indexes {
\t\t\tif len(index.Key) == 0 || index.Key[0].Field != key {
\t\t\t\tcontinue
\t\t\t}
\t\t\tcolumn := fmt.Sprintf("%s->%q", metadata.DefaultColumn, key)
\t\t\treturn fmt.Sprintf(" WHERE %s = ?", column), []any{string(must.NotFail(sjson.MarshalSingleValue(v)))}
\t\t}
\t}
\treturn "", nil
}
"""


def _patch_ferretdb(mod: Path) -> None:
    """Serialise write commands inside the FerretDB process.

    FerretDB v1 runs update, findAndModify and delete as "query, then write" without a transaction
    or row lock, so two concurrent conditional updates of one document can both succeed and
    concurrent $inc lose increments (we measured 18 of 20 trials with two compare-and-set winners).
    MongoDB makes every single-document write atomic, and our outbox, idempotency guards and
    attempt counters rely on that. One process-wide mutex around write commands restores it;
    SQLite allows one writer at a time anyway, so the cost is small.
    """
    handler = mod / "internal" / "handler"
    (handler / "kyso_write_lock.go").write_text(
        'package handler\n\nimport "sync"\n\n'
        "// kysoWriteMu makes each write command atomic with respect to other writes (kyso patch).\n"
        "var kysoWriteMu sync.Mutex\n"
    )
    for name in _WRITE_COMMANDS:
        path = handler / f"msg_{name[3:].lower()}.go"
        src = path.read_text()
        sig = f"func (h *Handler) {name}(connCtx context.Context, msg *wire.OpMsg) (*wire.OpMsg, error) {{\n"
        if sig not in src:
            raise RuntimeError(f"cannot patch {path.name}: signature not found")
        path.write_text(src.replace(sig, sig + "\tkysoWriteMu.Lock()\n\tdefer kysoWriteMu.Unlock()\n\n", 1))

    # The SQLite backend uses the primary key only when the filter is exactly {_id: v}; a guarded
    # update such as {_id: v, status: "pending"} scanned and JSON-decoded the whole collection
    # (~0.5 s per request at a few thousand documents). The handler re-applies the full filter to
    # whatever the backend returns, so narrowing by _id whenever the filter has one is safe.
    coll = mod / "internal" / "backends" / "sqlite" / "collection.go"
    src = coll.read_text()
    narrow = '\tif params.Filter.Len() == 1 {\n\t\tv, _ := params.Filter.Get("_id")'
    query_fn = src.find("func (c *collection) Query(")
    at = src.find(narrow, query_fn)
    if query_fn < 0 or at < 0:
        raise RuntimeError("cannot patch sqlite/collection.go: _id pushdown in Query not found")
    src = src[:at] + narrow.replace("Len() == 1", "Len() >= 1") + src[at + len(narrow) :]

    # Any other lookup scanned and JSON-decoded the whole collection (~0.6 ms per document: 250 ms
    # at 5,000 documents) although an index on the field existed. When no _id narrows the query,
    # narrow it by the first top-level field compared by equality with a string or boolean that
    # leads an index, using the index's own expression so SQLite searches the index. Safe for the
    # same reason as above; it assumes indexed fields hold scalars (an array holding the value
    # would be missed), which is how the project indexes.
    q_end = src.find("\tq += whereClause\n", query_fn)
    if q_end < 0:
        raise RuntimeError("cannot patch sqlite/collection.go: whereClause use in Query not found")
    src = (
        src[:q_end]
        + '\tif whereClause == "" && params.Filter != nil {\n'
        + "\t\twhereClause, args = kysoIndexedEquality(meta, params.Filter)\n\t}\n\n"
        + src[q_end:]
    )
    coll.write_text(src)
    (coll.parent / "kyso_pushdown.go").write_text(_PUSHDOWN_GO)

    # …and even {_id: v} scanned: the unique _id index is built on `sjson->"_id"` while queries,
    # updates and deletes compare `sjson->'$._id'`, an expression SQLite does not match to the index
    # (EXPLAIN QUERY PLAN: SCAN instead of SEARCH USING INDEX). Use the index's own expression.
    meta = mod / "internal" / "backends" / "sqlite" / "metadata" / "metadata.go"
    src = meta.read_text()
    old_id = "IDColumn = DefaultColumn + \"->'$._id'\""
    if src.count(old_id) != 1:
        raise RuntimeError("cannot patch sqlite/metadata/metadata.go: IDColumn not found")
    meta.write_text(src.replace(old_id, 'IDColumn = DefaultColumn + `->"_id"`'))


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
        "num.partitions": "3",
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
