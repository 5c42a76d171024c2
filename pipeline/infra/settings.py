"""One frozen settings object, read from the environment once and passed down."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

DEMO_PII_KEY = "salespulse-demo-key-NOT-FOR-PRODUCTION"


class SettingsError(ValueError):
    pass


@dataclass(frozen=True)
class Settings:
    kafka_bootstrap: str = "127.0.0.1:9092"
    clickhouse_dsn: str = "chdb://./var/clickhouse"
    clickhouse_database: str = "salespulse"
    var_dir: Path = Path("var")
    topic_prefix: str = ""
    app_id: str = "salespulse"
    partitions: int = 4
    pii_hmac_key: str = field(default="", repr=False)
    env: str = "dev"
    max_event_bytes: int = 65_536
    sink_batch_rows: int = 5_000
    sink_batch_seconds: float = 0.5  # a live row waits at most this long for its insert (p99 event to row)
    batch_max: int = 20_000  # events per worker batch (folded per key, settled once per key)
    # Pause topics that run ahead in event time, and hold stock and visits past the customer
    # side's progress marks ("What is deterministic" in the README).
    event_time_pause: bool = True
    batch_seconds: float = 2.0  # oldest a gathered batch gets while a backlog lasts
    # State to its changelog once per key per interval, then the acks: a crash replays at most
    # this much, and a customer active in it costs one changelog record (Kafka Streams: 30 s).
    state_flush_seconds: float = 10.0
    worker_web_port: int = 6066
    worker_web_enabled: bool = False
    kafka_port: int = 9092
    kafka_controller_port: int = 9093
    kafka_heap: str = "512m"
    # Kafka client security (production: SASL_SSL or SASL_PLAINTEXT with SCRAM-SHA-512).
    kafka_security_protocol: str = "PLAINTEXT"
    kafka_sasl_mechanism: str = "SCRAM-SHA-512"
    kafka_username: str = ""
    kafka_password: str = field(default="", repr=False)
    kafka_ssl_cafile: str = ""
    # The local broker (`salespulse kafka start`) with SCRAM users and ACLs, as production runs.
    kafka_local_sasl: bool = False
    business_timezone: str = "Asia/Shanghai"  # day buckets, "today", business days
    log_level: str = "info"
    wecom_webhook: str = field(default="", repr=False)
    dingtalk_webhook: str = field(default="", repr=False)
    dingtalk_secret: str = field(default="", repr=False)
    notify_attempts: int = 5
    absence_interval: float = 10.0
    model_dir: Path = Path("var/models")
    source_idle_seconds: float = 60.0
    api_host: str = "127.0.0.1"
    api_port: int = 8080
    keys_file: Path = Path("var/api_keys.json")
    top3_hour: int = 8  # business time from which serve ranks the day's TOP-3 deals per rep

    def topic(self, name: str) -> str:
        """Full topic name; the prefix isolates tests and tenants on one broker."""
        return f"{self.topic_prefix}{name}"

    @property
    def group_worker(self) -> str:
        return f"{self.topic_prefix}{self.app_id}"

    @property
    def group_notify(self) -> str:
        return f"{self.topic_prefix}{self.app_id}-notify"

    @property
    def group_sink(self) -> str:
        return f"{self.topic_prefix}{self.app_id}-sink"

    def with_(self, **changes: object) -> Settings:
        return replace(self, **changes)  # type: ignore[arg-type]  # dataclasses.replace is untyped on kwargs


_ENV: dict[str, tuple[str, type]] = {
    "SALESPULSE_KAFKA_BOOTSTRAP": ("kafka_bootstrap", str),
    "SALESPULSE_CLICKHOUSE_DSN": ("clickhouse_dsn", str),
    "SALESPULSE_CLICKHOUSE_DATABASE": ("clickhouse_database", str),
    "SALESPULSE_VAR_DIR": ("var_dir", Path),
    "SALESPULSE_TOPIC_PREFIX": ("topic_prefix", str),
    "SALESPULSE_APP_ID": ("app_id", str),
    "SALESPULSE_PARTITIONS": ("partitions", int),
    "SALESPULSE_PII_HMAC_KEY": ("pii_hmac_key", str),
    "SALESPULSE_ENV": ("env", str),
    "SALESPULSE_MAX_EVENT_BYTES": ("max_event_bytes", int),
    "SALESPULSE_SINK_BATCH_ROWS": ("sink_batch_rows", int),
    "SALESPULSE_SINK_BATCH_SECONDS": ("sink_batch_seconds", float),
    "SALESPULSE_BATCH_MAX": ("batch_max", int),
    "SALESPULSE_EVENT_TIME_PAUSE": ("event_time_pause", bool),
    "SALESPULSE_BATCH_SECONDS": ("batch_seconds", float),
    "SALESPULSE_STATE_FLUSH_SECONDS": ("state_flush_seconds", float),
    "SALESPULSE_WORKER_WEB_PORT": ("worker_web_port", int),
    "SALESPULSE_WORKER_WEB_ENABLED": ("worker_web_enabled", bool),
    "SALESPULSE_KAFKA_PORT": ("kafka_port", int),
    "SALESPULSE_KAFKA_CONTROLLER_PORT": ("kafka_controller_port", int),
    "SALESPULSE_KAFKA_HEAP": ("kafka_heap", str),
    "SALESPULSE_BUSINESS_TIMEZONE": ("business_timezone", str),
    "SALESPULSE_KAFKA_SECURITY_PROTOCOL": ("kafka_security_protocol", str),
    "SALESPULSE_KAFKA_SASL_MECHANISM": ("kafka_sasl_mechanism", str),
    "SALESPULSE_KAFKA_USERNAME": ("kafka_username", str),
    "SALESPULSE_KAFKA_PASSWORD": ("kafka_password", str),
    "SALESPULSE_KAFKA_SSL_CAFILE": ("kafka_ssl_cafile", str),
    "SALESPULSE_KAFKA_LOCAL_SASL": ("kafka_local_sasl", bool),
    "SALESPULSE_LOG_LEVEL": ("log_level", str),
    "SALESPULSE_WECOM_WEBHOOK": ("wecom_webhook", str),
    "SALESPULSE_DINGTALK_WEBHOOK": ("dingtalk_webhook", str),
    "SALESPULSE_DINGTALK_SECRET": ("dingtalk_secret", str),
    "SALESPULSE_NOTIFY_ATTEMPTS": ("notify_attempts", int),
    "SALESPULSE_ABSENCE_INTERVAL": ("absence_interval", float),
    "SALESPULSE_MODEL_DIR": ("model_dir", Path),
    "SALESPULSE_SOURCE_IDLE_SECONDS": ("source_idle_seconds", float),
    "SALESPULSE_API_HOST": ("api_host", str),
    "SALESPULSE_API_PORT": ("api_port", int),
    "SALESPULSE_KEYS_FILE": ("keys_file", Path),
    "SALESPULSE_TOP3_HOUR": ("top3_hour", int),
}

# Documented in README; tests check the two lists stay equal.
ENV_VARS: tuple[str, ...] = tuple(_ENV)


def _convert(kind: type, raw: str, name: str) -> object:
    try:
        if kind is bool:
            if raw.lower() in ("1", "true", "yes", "on"):
                return True
            if raw.lower() in ("0", "false", "no", "off", ""):
                return False
            raise ValueError(raw)
        return kind(raw)
    except ValueError:
        raise SettingsError(f"{name}={raw!r} is not a valid {kind.__name__}") from None


def load(environ: Mapping[str, str] | None = None) -> Settings:
    env = os.environ if environ is None else environ
    values: dict[str, object] = {}
    for name, (attr, kind) in _ENV.items():
        if name in env:
            values[attr] = _convert(kind, env[name], name)
    s = Settings(**values)  # type: ignore[arg-type]  # keys come from the typed table above
    _check(s)
    return s


def _check(s: Settings) -> None:
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]{0,63}", s.clickhouse_database):
        raise SettingsError("SALESPULSE_CLICKHOUSE_DATABASE must be a plain identifier")
    if not re.fullmatch(r"[A-Za-z0-9._\-]{0,100}", s.topic_prefix):
        raise SettingsError("SALESPULSE_TOPIC_PREFIX may use letters, digits, '.', '_' and '-'")
    if not (s.clickhouse_dsn.startswith(("chdb://", "http://", "https://"))):
        raise SettingsError("SALESPULSE_CLICKHOUSE_DSN must start with chdb://, http:// or https://")
    if s.kafka_security_protocol not in ("PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"):
        raise SettingsError("SALESPULSE_KAFKA_SECURITY_PROTOCOL must be PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL")
    if s.kafka_sasl_mechanism not in ("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"):
        raise SettingsError("SALESPULSE_KAFKA_SASL_MECHANISM must be PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512")
    if s.kafka_security_protocol.startswith("SASL") and not (s.kafka_username and s.kafka_password):
        raise SettingsError("SASL needs SALESPULSE_KAFKA_USERNAME and SALESPULSE_KAFKA_PASSWORD")
    if s.kafka_local_sasl and s.kafka_security_protocol != "SASL_PLAINTEXT":
        raise SettingsError("SALESPULSE_KAFKA_LOCAL_SASL needs SALESPULSE_KAFKA_SECURITY_PROTOCOL=SASL_PLAINTEXT")
    try:
        ZoneInfo(s.business_timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise SettingsError(f"SALESPULSE_BUSINESS_TIMEZONE={s.business_timezone!r} is not an IANA time zone") from None
    if s.partitions < 1:
        raise SettingsError("SALESPULSE_PARTITIONS must be >= 1")
    if not 0 <= s.top3_hour <= 23:
        raise SettingsError("SALESPULSE_TOP3_HOUR must be an hour, 0-23")
    if s.env == "production" and s.pii_hmac_key in ("", DEMO_PII_KEY):
        raise SettingsError("SALESPULSE_PII_HMAC_KEY must be set to a secret of >= 16 bytes in production")


def pii_key(s: Settings) -> bytes:
    """The HMAC key; refuses to run without one rather than hashing with a guessable key."""
    if len(s.pii_hmac_key.encode()) < 16:
        raise SettingsError(
            "SALESPULSE_PII_HMAC_KEY is not set (>= 16 bytes). For local trials: "
            f"export SALESPULSE_PII_HMAC_KEY={DEMO_PII_KEY}  (the Makefile does this for `make demo`)"
        )
    return s.pii_hmac_key.encode()


def to_env(s: Settings) -> dict[str, str]:
    """The environment that makes ``load()`` in a child process return ``s`` again."""
    out = {}
    for name, (attr, kind) in _ENV.items():
        value = getattr(s, attr)
        out[name] = ("true" if value else "false") if kind is bool else str(value)
    return out
