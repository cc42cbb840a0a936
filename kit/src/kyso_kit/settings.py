"""Settings shared by every service. Each service subclasses :class:`ServiceSettings` once.

Only a service's composition root instantiates settings; nothing else reads the environment.
"""

from __future__ import annotations

import json
from typing import Annotated, Any, ClassVar, Literal

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from .client_address import ClientAddresses, parse_networks

SecretKind = Literal["secret", "private_pem", "public_pem"]


class ServiceSettings(BaseSettings):
    model_config = SettingsConfigDict(env_file=None, extra="ignore", frozen=True)

    service_name: str = Field(description="Logical service name; also the Kafka consumer group and source URI")
    profile: Literal["development", "production"] = Field(
        default="development",
        validation_alias="KYSO_PROFILE",
        description="`development` enables the dev SMS inbox and sandbox endpoints; never in production",
    )
    http_host: str = Field(default="127.0.0.1", validation_alias="HTTP_HOST", description="HTTP bind address")
    http_port: int = Field(default=8000, ge=0, le=65535, validation_alias="HTTP_PORT", description="HTTP port")
    kafka_bootstrap_servers: str = Field(
        default="127.0.0.1:9092",
        validation_alias="KAFKA_BOOTSTRAP_SERVERS",
        description="Comma-separated Kafka bootstrap servers",
    )
    mongodb_url: str = Field(
        default="mongodb://127.0.0.1:27017/",
        validation_alias="MONGODB_URL",
        description="MongoDB-wire connection string (MongoDB or FerretDB)",
    )
    mongodb_database: str = Field(
        default="", validation_alias="MONGODB_DATABASE", description="Database name (default: kyso_<service>)"
    )
    log_level: str = Field(default="INFO", validation_alias="LOG_LEVEL", description="Root log level")
    outbox_poll_seconds: float = Field(
        default=0.5, gt=0, validation_alias="OUTBOX_POLL_SECONDS", description="Relay poll interval when idle"
    )
    outbox_sweep_seconds: float = Field(
        default=10.0,
        gt=0,
        validation_alias="OUTBOX_SWEEP_SECONDS",
        description="How often the relay scans every outbox for leftovers (crash recovery)",
    )
    inbox_retention_days: int = Field(
        default=30,
        ge=1,
        validation_alias="INBOX_RETENTION_DAYS",
        description="How long processed event ids are kept for de-duplication (longer than Kafka retention)",
    )
    consumer_max_attempts: int = Field(
        default=5,
        ge=1,
        le=20,
        validation_alias="CONSUMER_MAX_ATTEMPTS",
        description="Tries of one message before it is dead-lettered",
    )
    kafka_topic_partitions: int = Field(
        default=12,
        ge=1,
        le=1000,
        validation_alias="KAFKA_TOPIC_PARTITIONS",
        description="Partitions of each topic this service creates (existing topics keep theirs): the most "
        "instances of one service that share its event handling. 12 divides among 1, 2, 3, 4, 6 or 12 "
        "instances; raise existing topics with kafka-topics --alter (see the README on scale-out)",
    )
    kafka_group_instance_id: str | None = Field(
        default=None,
        validation_alias="KAFKA_GROUP_INSTANCE_ID",
        description="Static membership (Kafka group.instance.id): a name unique among this service's "
        "instances and stable across their restarts (e.g. a StatefulSet pod name). An instance that crashed "
        "and comes back within KAFKA_SESSION_TIMEOUT_MS takes its partitions back without a rebalance of the "
        "group; one that stops gracefully still leaves the group at once. Unset: dynamic membership",
    )
    kafka_session_timeout_ms: int = Field(
        default=10_000,
        ge=6_000,
        le=300_000,
        validation_alias="KAFKA_SESSION_TIMEOUT_MS",
        description="How long the group waits for a silent (crashed) instance before its partitions move: the "
        "longest stall of a killed instance's partitions, and the time a static member has to come back "
        "without a rebalance (a kyso service restarts in ~4-10 s). The broker accepts 6 s to 5 min by default",
    )
    kafka_heartbeat_interval_ms: int = Field(
        default=1_000,
        ge=100,
        le=10_000,
        validation_alias="KAFKA_HEARTBEAT_INTERVAL_MS",
        description="Heartbeat period; members learn of a rebalance from a heartbeat's answer, so this "
        "bounds how long the group waits for the others to rejoin (well under the session timeout)",
    )
    consumer_stop_seconds: float = Field(
        default=8.0,
        gt=0,
        le=60,
        validation_alias="CONSUMER_STOP_SECONDS",
        description="At a stop or a rebalance, how long in-flight handlers may take to finish before "
        "they are cancelled (their events are then redelivered; handlers are idempotent)",
    )
    consumer_commit_seconds: float = Field(
        default=0.2,
        gt=0,
        le=10,
        validation_alias="CONSUMER_COMMIT_SECONDS",
        description="How often handled offsets are committed (a crash redelivers at most this much; "
        "handlers are idempotent)",
    )
    consumer_backoff_seconds: float = Field(
        default=0.2,
        ge=0,
        validation_alias="CONSUMER_BACKOFF_SECONDS",
        description="First retry delay; doubles per attempt",
    )

    tracing_exporter: Literal["none", "console", "otlp"] = Field(
        default="none",
        validation_alias="TRACING_EXPORTER",
        description="Where OpenTelemetry spans go: nowhere (trace context still flows through requests and "
        "events), the console, or an OTLP/HTTP collector",
    )
    otlp_endpoint: str | None = Field(
        default=None,
        validation_alias="OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
        description="OTLP/HTTP traces endpoint (default http://localhost:4318/v1/traces)",
    )
    auth_public_key_pem: str | None = Field(
        default=None,
        validation_alias="AUTH_PUBLIC_KEY_PEM",
        description="PEM public key (P-256) of the registration service's access-token signer "
        "(development: the well-known dev key); AUTH_JWKS takes precedence",
    )
    auth_jwks_url: str | None = Field(
        default=None,
        validation_alias="AUTH_JWKS_URL",
        description="Registration's JWKS URL (…/.well-known/jwks.json): a token signed by a key not known "
        "yet makes the service read it again, so access-token keys can rotate",
    )
    auth_jwks: str | None = Field(
        default=None,
        validation_alias="AUTH_JWKS",
        description="JSON Web Key Set of the access-token signers (several keys while rotating), as "
        "registration serves it at /.well-known/jwks.json",
    )

    trusted_proxies: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        validation_alias="TRUSTED_PROXIES",
        description="Comma-separated addresses or CIDRs of the reverse proxies in front of this service "
        "(e.g. `10.0.0.0/8,2001:db8::/64`). Only a connection from one of them may say, in "
        "TRUSTED_PROXY_HEADER, whom it forwards for; empty (the default): the client is the TCP peer "
        "and forwarding headers are ignored",
    )
    trusted_proxy_header: Literal["x-forwarded-for", "forwarded"] = Field(
        default="x-forwarded-for",
        validation_alias="TRUSTED_PROXY_HEADER",
        description="The one header the trusted proxies write: `x-forwarded-for` or `forwarded` (RFC 7239)",
    )

    secrets: ClassVar[dict[str, tuple[SecretKind, str]]] = {}
    """Secret fields of a service: field → (kind, development purpose). Production refuses to start
    without each of them; development fills in the well-known development value of that purpose."""

    @model_validator(mode="after")
    def _defaults(self) -> ServiceSettings:
        for name, (kind, purpose) in self.secrets.items():
            env_name = str(type(self).model_fields[name].validation_alias)
            value = getattr(self, name)
            if kind == "secret":
                value = resolve_secret(self.profile, value, purpose, env_name)
            else:
                value = resolve_pem(self.profile, value, purpose, env_name, private=kind == "private_pem")
            object.__setattr__(self, name, value)
        if not self.mongodb_database:
            object.__setattr__(self, "mongodb_database", f"kyso_{self.service_name}")
        if not self.auth_public_key_pem and not self.auth_jwks and self.profile == "development":
            from .devkeys import dev_ec_public_pem

            object.__setattr__(self, "auth_public_key_pem", dev_ec_public_pem("auth"))
        return self

    @field_validator("trusted_proxies", mode="before")
    @classmethod
    def _proxies(cls, value: Any) -> Any:
        if isinstance(value, str):
            value = json.loads(value) if value.strip().startswith("[") else value.split(",")
        cidrs = [str(v).strip() for v in value if str(v).strip()]
        parse_networks(cidrs)  # a typo stops the service at start
        return cidrs

    def client_addresses(self) -> ClientAddresses:
        """How this service finds a request's client address (behind TRUSTED_PROXIES)."""
        return ClientAddresses(self.trusted_proxies, self.trusted_proxy_header)

    def token_keys(self) -> str | dict[str, Any] | None:
        """What access tokens are checked against; production refuses to run without any of them."""
        if self.auth_jwks:
            keys: dict[str, Any] = json.loads(self.auth_jwks)
            return keys
        if self.auth_public_key_pem:
            return self.auth_public_key_pem
        if self.auth_jwks_url:
            return None  # fetched on first use
        raise ValueError("AUTH_JWKS_URL, AUTH_JWKS or AUTH_PUBLIC_KEY_PEM must be set in production")

    @property
    def source(self) -> str:
        """CloudEvents ``source`` of every event this service produces."""
        return f"/kyso/{self.service_name}"

    @property
    def consumer_group(self) -> str:
        return f"kyso-{self.service_name}"

    @property
    def development(self) -> bool:
        return self.profile == "development"


def resolve_secret(profile: str, value: str | None, purpose: str, env_name: str) -> str:
    """A configured secret key, or in development a well-known dev value; production fails fast without one."""
    if value:
        return value
    if profile == "production":
        raise ValueError(f"{env_name} must be set in production")
    from .devkeys import dev_master_key

    return dev_master_key(purpose)


def resolve_pem(profile: str, value: str | None, purpose: str, env_name: str, *, private: bool) -> str:
    """A configured PEM key, or in development the well-known dev key pair of ``purpose``."""
    if value:
        return value
    if profile == "production":
        raise ValueError(f"{env_name} must be set in production")
    from .devkeys import dev_ec_private_pem, dev_ec_public_pem

    return dev_ec_private_pem(purpose) if private else dev_ec_public_pem(purpose)
