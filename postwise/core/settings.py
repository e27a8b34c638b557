"""The one settings class: environment variables ``POSTWISE_*`` and an optional TOML file.

Precedence, highest first: explicit arguments, environment, the TOML file named by
``POSTWISE_CONFIG`` (or ``postwise.toml`` in the working directory), then the defaults below.
"""

from __future__ import annotations

import os
import secrets
from functools import lru_cache
from pathlib import Path

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from postwise.core.errors import SettingsError

PACKAGE_DIR = Path(__file__).resolve().parent.parent
SHIPPED_MODEL_DIR = PACKAGE_DIR / "models"
SHIPPED_POLICY = PACKAGE_DIR / "conf" / "policy.toml"


class DkimKey(BaseModel):
    """One signing key: mail from ``domain`` is signed with ``selector`` and ``key_file``
    (a PEM RSA or Ed25519 private key, as ``postwise dkim keygen`` writes it)."""

    model_config = ConfigDict(extra="forbid")

    domain: str
    selector: str
    key_file: Path


class SubmissionUser(BaseModel):
    """One account of the submission port: ``password_hash`` as ``postwise queue
    hash-password`` prints it (scrypt, salted)."""

    model_config = ConfigDict(extra="forbid")

    username: str
    password_hash: str


def _config_file() -> Path | None:
    named = os.environ.get("POSTWISE_CONFIG")
    if named:
        return Path(named)
    local = Path("postwise.toml")
    return local if local.is_file() else None


class Settings(BaseSettings):
    """Every tunable of a Postwise process. Unknown keys (in arguments, the TOML file, or
    ``POSTWISE_*`` environment variables) are refused, not ignored: a typo fails loudly."""

    model_config = SettingsConfigDict(env_prefix="POSTWISE_", extra="forbid")

    environment: str = Field("local", description="local, test or production")
    data_dir: Path = Field(Path("postwise-data"), description="where SQLite and state live")
    database_url: str | None = Field(
        None, description="SQLAlchemy URL; default is SQLite in data_dir"
    )
    corpus_dir: Path = Field(
        Path("../shared/data/mail"), description="shared mail corpus for train/eval"
    )
    model_path: Path | None = Field(
        None, description="inbound model folder; default is the shipped model"
    )
    policy_path: Path | None = Field(
        None, description="operator policy TOML layered over the shipped one"
    )
    api_host: str = Field("127.0.0.1", description="scan API bind address")
    api_port: int = Field(8025, ge=0, le=65535, description="scan API port")
    max_message_bytes: int = Field(
        40 * 1024 * 1024, gt=0, description="larger messages are refused"
    )
    max_mime_depth: int = Field(20, gt=0, description="deeper MIME nesting yields MIME_TOO_DEEP")
    max_mime_parts: int = Field(500, gt=0, description="parts beyond this are not inspected")
    max_text_chars: int = Field(
        200_000, gt=0, description="text per message handed to the checks and model"
    )
    store_verdicts: bool = Field(True, description="record every API verdict in the database")
    smtp_enabled: bool = Field(True, description="serve starts the SMTP gateway")
    smtp_host: str = Field("127.0.0.1", description="SMTP gateway bind address")
    smtp_port: int = Field(2525, ge=0, le=65535, description="SMTP gateway port")
    smtp_hostname: str = Field(
        "postwise.localhost", description="name in the SMTP banner and added headers"
    )
    smtp_max_recipients: int = Field(100, gt=0, description="RCPT TO beyond this get 452")
    smtp_timeout: float = Field(300.0, gt=0, description="seconds a client may stay idle")
    smtp_proxy_protocol: bool = Field(
        False, description="expect a PROXY protocol header (v1 or v2) on every connection"
    )
    smtp_trusted_forwarders: list[str] = Field(
        ["127.0.0.1", "::1"],
        description="client addresses allowed to use XCLIENT and XFORWARD",
    )
    tls_cert_file: Path | None = Field(
        None, description="PEM certificate for STARTTLS; default: self-signed in data_dir/tls"
    )
    tls_key_file: Path | None = Field(None, description="PEM private key of tls_cert_file")
    next_hop: str | None = Field(
        None, description="host:port accepted mail is relayed to; unset: a Maildir in data_dir"
    )
    next_hop_timeout: float = Field(60.0, gt=0, description="seconds per next-hop exchange")
    milter_enabled: bool = Field(True, description="serve starts the milter")
    milter_host: str = Field("127.0.0.1", description="milter bind address")
    milter_port: int = Field(11332, ge=0, le=65535, description="milter port")
    quarantine_retention_days: float = Field(
        30.0, gt=0, description="quarantined messages older than this are deleted"
    )
    online_learning: bool = Field(
        True, description="combine the shipped model with one learned from local feedback"
    )
    online_model_path: Path | None = Field(
        None, description="online model file; default data_dir/online-model.npz"
    )
    bounce_model_path: Path | None = Field(
        None, description="bounce classifier folder; default is the shipped model"
    )
    shaping_policy_path: Path | None = Field(
        None, description="operator shaping TOML layered over the shipped conf/shaping.toml"
    )
    dns_servers: list[str] = Field(
        [], description="DNS servers (host or host:port) for SPF/DKIM/DMARC/ARC; [] = system"
    )
    dns_timeout: float = Field(5.0, gt=0, description="seconds per DNS lookup, retries included")
    dkim_keys: list[DkimKey] = Field(
        [], description="DKIM/ARC signing keys: domain, selector and key_file (PEM) each"
    )
    submission_enabled: bool = Field(True, description="serve starts the submission port")
    submission_host: str = Field("127.0.0.1", description="submission port bind address")
    submission_port: int = Field(5587, ge=0, le=65535, description="authenticated submission port")
    submission_users: list[SubmissionUser] = Field(
        [], description="submission accounts: username and password_hash each"
    )
    submission_max_recipients: int = Field(
        1000, gt=0, description="recipients per submitted message (SMTP, API and CLI)"
    )
    delivery_enabled: bool = Field(True, description="serve starts the outbound delivery worker")
    delivery_port: int = Field(
        25, ge=1, le=65535, description="port of remote MX hosts (tests point it at sinks)"
    )
    delivery_hostname: str | None = Field(
        None, description="EHLO name for outbound delivery; default smtp_hostname"
    )
    delivery_timeout: float = Field(60.0, gt=0, description="seconds per outbound SMTP exchange")
    delivery_concurrency: int = Field(
        100, gt=0, description="outbound SMTP connections open at once, all destinations"
    )
    delivery_poll_seconds: float = Field(
        1.0, gt=0, description="how often the delivery worker looks for due messages"
    )
    retry_base_seconds: float = Field(
        60.0, gt=0, description="first retry delay; doubles per attempt (with jitter)"
    )
    retry_max_seconds: float = Field(3600.0, gt=0, description="longest delay between retries")
    queue_lifetime_hours: float = Field(
        120.0, gt=0, description="a message undelivered this long bounces (DSN to the sender)"
    )
    outbound_tls_ca_file: Path | None = Field(
        None, description="CA bundle for verified outbound TLS (MTA-STS); default system CAs"
    )
    mta_sts_port: int = Field(
        443, ge=1, le=65535, description="HTTPS port for MTA-STS policy fetches (tests change it)"
    )
    feedback_addresses: list[str] = Field(
        [], description="gateway recipients whose bounces and complaints are ingested as feedback"
    )
    reputation_policy_path: Path | None = Field(
        None, description="operator reputation TOML layered over conf/reputation.toml"
    )
    model_drift_psi_threshold: float = Field(
        0.2, gt=0, description="PSI above which `models drift` appends a model_drift alert"
    )
    engage_hmac_key: SecretStr | None = Field(
        None,
        description="secret key of the contact-id HMAC; local/test: generated in data_dir",
    )
    tracking_base_url: str = Field(
        "http://127.0.0.1:8025",
        description="public URL of the API server, the root of tracked links, pixel, unsubscribe",
    )
    copy_policy_path: Path | None = Field(
        None, description="operator copy-guardrail TOML layered over conf/copy_policy.toml"
    )
    copy_llm_url: str | None = Field(
        None, description="OpenAI-compatible endpoint for generated copy; unset: offline only"
    )
    copy_llm_model: str = Field("gpt-4o-mini", description="model name sent to copy_llm_url")
    copy_llm_api_key: SecretStr | None = Field(
        None, description="bearer token for copy_llm_url (never logged)"
    )
    copy_llm_timeout_seconds: float = Field(
        20.0, gt=0, description="timeout of one request to copy_llm_url"
    )

    @field_validator("environment")
    @classmethod
    def _known_environment(cls, value: str) -> str:
        if value not in {"local", "test", "production"}:
            raise ValueError(f"environment must be local, test or production, not {value!r}")
        return value

    @field_validator("next_hop")
    @classmethod
    def _host_and_port(cls, value: str | None) -> str | None:
        if value is None or value == "":
            return None
        host, _, port = value.rpartition(":")
        if not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise ValueError(f"next_hop must be host:port (e.g. 127.0.0.1:10025), not {value!r}")
        return value

    @model_validator(mode="after")
    def _tls_pair(self) -> Settings:
        if (self.tls_cert_file is None) != (self.tls_key_file is None):
            raise ValueError("tls_cert_file and tls_key_file must be given together")
        return self

    @model_validator(mode="after")
    def _engage_key_in_production(self) -> Settings:
        # A key generated on one host would give every host different contact ids, and one
        # lying in the data folder leaks with a backup: production must name its own.
        key = self.engage_hmac_key.get_secret_value() if self.engage_hmac_key else ""
        if self.environment == "production" and not key:
            raise ValueError(
                "engage_hmac_key is required in production: set POSTWISE_ENGAGE_HMAC_KEY to a "
                "random secret of at least 32 characters (python -c 'import secrets; "
                "print(secrets.token_hex(32))')"
            )
        if key and len(key) < 32:
            raise ValueError("engage_hmac_key must be at least 32 characters long")
        return self

    @model_validator(mode="after")
    def _no_unknown_environment_variables(self) -> Settings:
        known = {f"POSTWISE_{name.upper()}" for name in type(self).model_fields} | {
            "POSTWISE_CONFIG"
        }
        unknown = sorted(
            k for k in os.environ if k.upper().startswith("POSTWISE_") and k.upper() not in known
        )
        if unknown:
            raise ValueError(f"unknown environment variable(s) {unknown}; known: {sorted(known)}")
        return self

    @property
    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{self.data_dir / 'postwise.sqlite3'}"

    @property
    def resolved_model_path(self) -> Path:
        return self.model_path or SHIPPED_MODEL_DIR / "inbound"

    @property
    def next_hop_address(self) -> tuple[str, int] | None:
        if self.next_hop is None:
            return None
        host, _, port = self.next_hop.rpartition(":")
        return host.strip("[]"), int(port)

    @property
    def resolved_online_model_path(self) -> Path:
        return self.online_model_path or self.data_dir / "online-model.npz"

    @property
    def resolved_delivery_hostname(self) -> str:
        return self.delivery_hostname or self.smtp_hostname

    @property
    def outbound_spool_dir(self) -> Path:
        return self.data_dir / "outbound"

    @property
    def resolved_bounce_model_path(self) -> Path:
        return self.bounce_model_path or SHIPPED_MODEL_DIR / "bounces"

    def resolved_engage_hmac_key(self) -> bytes:
        """The contact-id HMAC key: ``engage_hmac_key`` when set, otherwise (local and test
        only; production refuses to start without one) a key generated once and kept in
        ``data_dir/engage-hmac.key``."""
        if self.engage_hmac_key is not None and self.engage_hmac_key.get_secret_value():
            return self.engage_hmac_key.get_secret_value().encode()
        path = self.data_dir / "engage-hmac.key"
        if not path.is_file():
            path.parent.mkdir(parents=True, exist_ok=True)
            fresh = secrets.token_hex(32)
            try:
                with open(path, "x", encoding="ascii") as handle:
                    handle.write(fresh)
                path.chmod(0o600)
            except FileExistsError:
                pass  # another process wrote it first: use theirs
        return path.read_text(encoding="ascii").strip().encode()

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        toml_file = _config_file()
        if toml_file is not None:
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=toml_file))
        return tuple(sources)


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, read once. Raises SettingsError naming each bad value."""
    try:
        return Settings()
    except ValidationError as error:
        problems = "; ".join(
            f"{'.'.join(str(part) for part in item['loc']) or 'settings'}: {item['msg']}"
            for item in error.errors()
        )
        raise SettingsError(f"invalid settings: {problems}") from None
