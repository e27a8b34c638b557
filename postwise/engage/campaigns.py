"""Campaigns: what to send, to whom, under which rules; stored in ``campaigns`` (migration 0010)
with one row per contact reached or held out in ``campaign_messages``.

A campaign definition (a TOML file for the CLI, JSON for the API; see docs/campaigns.md) names a
template (a path, snapshotted into the database at creation, or the template source itself), a
sender, a segment (a stored segment's name or an inline definition), purpose and channel, a
holdout fraction, subject variants (an explicit list and/or the approved copy candidates of a
brief), the bandit reward (click or open), the send-time mode (``now`` or ``model``), frequency
caps, the conversion window of the report and, for a trigger campaign, the event that
sends it (``trigger``: :mod:`postwise.engage.triggers` watches the events; ``campaign send``
refuses such a campaign).

:func:`create_campaign` validates everything it can before anything is sent (the template
compiles, the segment parses and its named references exist, the caps are well formed, there
is at least one subject variant), then stores the campaign with status ``draft`` together with
its bandit (``campaign:<id>``, Beta-Thompson over the variants, :mod:`bandit_store`) and, when
the holdout fraction is above 0, its holdout experiment (``campaign:<id>``, salt
``campaign:<id>``, :mod:`experiment_store`, which keeps the global holdout out of it).

Statuses: ``draft`` → ``sending`` → ``sent`` (``scheduled`` when a send left messages waiting
for their send-time slot). Errors are :class:`~postwise.core.errors.CampaignError`, with
:class:`UnknownCampaignError` and :class:`DuplicateCampaignError` beneath it.
"""

from __future__ import annotations

import json
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from sqlalchemy import (
    JSON,
    DateTime,
    Float,
    Integer,
    String,
    Text,
    UniqueConstraint,
    insert,
    select,
    update,
)
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Mapped, mapped_column

from postwise.core.db import Base, as_utc, utcnow
from postwise.core.errors import CampaignError, PostwiseError
from postwise.engage.fatigue_policy import FrequencyPolicy, WindowCap

__all__ = [
    "CAMPAIGN_STATUSES",
    "CampaignDefinition",
    "CampaignMessageRecord",
    "CampaignRecord",
    "DuplicateCampaignError",
    "StoredCampaign",
    "TriggerDefinition",
    "UnknownCampaignError",
    "Variant",
    "create_campaign",
    "definition_from_toml",
    "list_campaigns",
    "load_campaign",
    "load_campaign_file",
    "set_status",
]

CAMPAIGN_STATUSES = ("draft", "scheduled", "sending", "sent")


class UnknownCampaignError(CampaignError):
    """No campaign of that id is stored."""


class DuplicateCampaignError(CampaignError):
    """A campaign of that id is stored already."""


_ID = re.compile(r"^[a-z0-9][a-z0-9_.:-]{0,63}$")
_VARIANT = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,63}$")


class CampaignRecord(Base):
    """A campaign: its definition (JSON, as validated), the template source it sends and
    where it stands."""

    __tablename__ = "campaigns"

    id: Mapped[str] = mapped_column(String(128), primary_key=True)
    name: Mapped[str] = mapped_column(Text)
    definition: Mapped[dict[str, Any]] = mapped_column(JSON)
    template_source: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16))
    experiment: Mapped[str | None] = mapped_column(String(128), nullable=True)
    bandit: Mapped[str | None] = mapped_column(String(128), nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    sent_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class CampaignMessageRecord(Base):
    """One contact of a campaign: held out (``holdout``, ``global_holdout``), ``queued`` (with
    the queue's message id: deliveries and bounces are read from the outbound tables) or
    ``failed`` (with the reason); one row per (campaign, contact, occasion), where the occasion
    is '' for a campaign send and the event id for a triggered message (migration 0012).
    ``tracking_message_id`` is the ``message`` of the tracking
    tokens and engage events; ``reward`` is what the bandit learnt from this message."""

    __tablename__ = "campaign_messages"
    __table_args__ = (
        UniqueConstraint(
            "campaign_id", "contact_id", "occasion", name="uq_campaign_messages_occasion"
        ),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    campaign_id: Mapped[str] = mapped_column(String(128))
    contact_id: Mapped[str] = mapped_column(String(64))
    # '' for a campaign send (one message per contact); a triggered message's event id
    occasion: Mapped[str] = mapped_column(String(128), default="", server_default="")
    variant: Mapped[str | None] = mapped_column(String(128), nullable=True)
    state: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str] = mapped_column(Text, default="")
    queue_message_id: Mapped[str | None] = mapped_column(String(32), nullable=True)
    tracking_message_id: Mapped[str] = mapped_column(String(128))
    header_message_id: Mapped[str | None] = mapped_column(String(998), nullable=True)
    send_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    reward: Mapped[float | None] = mapped_column(Float, nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


# --------------------------------------------------------------------------- definition


class CapDefinition(BaseModel):
    """One window cap: at most ``limit`` sends in ``window_days``; over it, ``action``."""

    model_config = ConfigDict(extra="forbid")

    limit: int = Field(ge=0)
    window_days: float = Field(gt=0, le=3660)
    action: Literal["suppress", "downgrade"] = "suppress"

    def cap(self) -> WindowCap:
        return WindowCap(self.limit, timedelta(days=self.window_days), self.action)


class CapsDefinition(BaseModel):
    """Frequency caps (:class:`~postwise.engage.fatigue_policy.FrequencyPolicy`)."""

    model_config = ConfigDict(extra="forbid")

    per_contact: CapDefinition | None = None
    per_channel: dict[str, CapDefinition] = Field(default_factory=dict)
    global_cap: CapDefinition | None = Field(None, alias="global")
    max_unanswered: int | None = Field(None, ge=0)
    unanswered_action: Literal["suppress", "downgrade"] = "suppress"
    downgrade_at: float | None = Field(None, ge=0)

    def policy(self, name: str) -> FrequencyPolicy:
        return FrequencyPolicy(
            name=name,
            per_contact=None if self.per_contact is None else self.per_contact.cap(),
            per_channel={k: v.cap() for k, v in self.per_channel.items()},
            global_cap=None if self.global_cap is None else self.global_cap.cap(),
            max_unanswered=self.max_unanswered,
            unanswered_action=self.unanswered_action,
            downgrade_at=self.downgrade_at,
        )


class SubjectDefinition(BaseModel):
    """An explicit subject variant; ``name`` defaults to a, b, c… in order."""

    model_config = ConfigDict(extra="forbid")

    subject: str = Field(min_length=1, max_length=998)
    preheader: str | None = Field(None, max_length=998)
    name: str | None = None


class BriefDefinition(BaseModel):
    """The copy brief whose approved candidates become variants (``postwise copy``)."""

    model_config = ConfigDict(extra="forbid")

    topic: str
    facts: list[str] = Field(default_factory=list)
    tone: str = "friendly"
    segment: str | None = None
    language: str = "en"


class TriggerDefinition(BaseModel):
    """What makes a trigger campaign send (docs/campaigns.md, "Triggered messages"): engage
    events of type ``event`` (with ``properties.name`` equal to ``name`` when given, and every
    ``properties`` filter matched: a value, or a list of accepted values), sent
    ``delay_seconds`` after the event happened; an event seen more than ``max_age_hours`` after
    that moment is skipped; at most one message per contact in ``once_per_hours`` (0: one
    per event)."""

    model_config = ConfigDict(extra="forbid")

    event: Literal[
        "sent", "delivered", "open", "click", "purchase", "unsubscribe", "complaint", "custom"
    ] = "custom"
    name: str | None = Field(None, min_length=1, max_length=128)
    properties: dict[str, Any] = Field(default_factory=dict)
    delay_seconds: float = Field(0.0, ge=0, le=90 * 86400)
    max_age_hours: float = Field(24.0, gt=0, le=24 * 365)
    once_per_hours: float = Field(24.0, ge=0, le=24 * 365)

    @field_validator("properties")
    @classmethod
    def _check_filters(cls, value: dict[str, Any]) -> dict[str, Any]:
        for key, wanted in value.items():
            accepted = wanted if isinstance(wanted, list) else [wanted]
            if not accepted or any(isinstance(v, dict | list) for v in accepted):
                raise ValueError(
                    f"properties.{key}: expected a value or a non-empty list of values "
                    "(strings, numbers, booleans)"
                )
        return value

    def matches(self, kind: str, properties: Mapping[str, Any]) -> bool:
        """Whether an engage event of type ``kind`` with ``properties`` fires this trigger."""
        if kind != self.event:
            return False
        if self.name is not None and properties.get("name") != self.name:
            return False
        for key, wanted in self.properties.items():
            accepted = wanted if isinstance(wanted, list) else [wanted]
            if key not in properties or properties[key] not in accepted:
                return False
        return True


class CampaignDefinition(BaseModel):
    """A campaign as written in its TOML file or POSTed to the API (docs/campaigns.md)."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    id: str
    name: str | None = None
    template: str | None = None
    template_source: str | None = None
    sender: str | None = None
    segment: str | dict[str, Any]
    segments: dict[str, dict[str, Any]] = Field(default_factory=dict)
    purpose: str = "marketing"
    channel: Literal["email"] = "email"
    holdout: float = Field(0.0, ge=0.0, lt=1.0)
    subjects: list[str | SubjectDefinition] = Field(default_factory=list)
    brief: BriefDefinition | None = None
    reward: Literal["click", "open"] = "click"
    reward_window_hours: float = Field(72.0, gt=0, le=24 * 90)
    send_time: Literal["now", "model"] = "now"
    caps: CapsDefinition | None = None
    conversion_window_days: float = Field(7.0, gt=0, le=365)
    pool: str = "default"
    trigger: TriggerDefinition | None = None

    @field_validator("id")
    @classmethod
    def _check_id(cls, value: str) -> str:
        if not _ID.match(value):
            raise ValueError(
                "a campaign id is 1-64 characters: lower-case letters, digits, '_', '.', ':' or "
                "'-', starting with a letter or digit"
            )
        return value


@dataclass(frozen=True)
class Variant:
    """One subject variant: the bandit's arm ``name``; ``preheader`` None keeps the
    template's; ``source`` is ``explicit`` or ``copy:<candidate id>``."""

    name: str
    subject: str
    preheader: str | None
    source: str

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "subject": self.subject,
            "preheader": self.preheader,
            "source": self.source,
        }


def _problem_text(error: ValidationError, source: str) -> str:
    parts = []
    for problem in error.errors()[:5]:
        where = ".".join(str(p) for p in problem["loc"]) or "(top)"
        parts.append(f"{where}: {problem['msg']}")
    more = len(error.errors()) - 5
    tail = f" (and {more} more)" if more > 0 else ""
    return f"{source}: " + "; ".join(parts) + tail


def _jsonable(value: Any) -> Any:
    """TOML dates and datetimes as ISO strings (segments accept them; JSON columns do not)."""
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_jsonable(v) for v in value]
    if isinstance(value, datetime):
        return value.isoformat()
    if hasattr(value, "isoformat") and not isinstance(value, str | int | float | bool):
        return value.isoformat()
    return value


def definition_from_toml(
    text: str, source: str = "<campaign>", base_dir: Path | None = None
) -> CampaignDefinition:
    """The definition in TOML ``text``; a relative ``template`` path is taken from
    ``base_dir``. Raises CampaignError naming ``source`` and the key."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise CampaignError(f"{source}: invalid TOML: {error}") from None
    return definition_from_mapping(_jsonable(data), source, base_dir)


def definition_from_mapping(
    data: Mapping[str, Any], source: str = "<campaign>", base_dir: Path | None = None
) -> CampaignDefinition:
    """Validate a parsed definition (TOML or JSON). Raises CampaignError."""
    try:
        definition = CampaignDefinition.model_validate(dict(data))
    except ValidationError as error:
        raise CampaignError(_problem_text(error, source)) from None
    if (definition.template is None) == (definition.template_source is None):
        raise CampaignError(
            f"{source}: give exactly one of 'template' (a path) or 'template_source'"
        )
    if definition.template is not None and base_dir is not None:
        path = Path(definition.template)
        if not path.is_absolute():
            definition = definition.model_copy(
                update={"template": str((base_dir / path).resolve())}
            )
    return definition


def load_campaign_file(path: Path) -> CampaignDefinition:
    """Read a campaign TOML file. Raises CampaignError naming the file."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise CampaignError(f"{path}: cannot read the campaign file ({error})") from None
    return definition_from_toml(text, str(path), path.parent)


# --------------------------------------------------------------------------- stored campaigns


@dataclass(frozen=True)
class StoredCampaign:
    """A stored campaign: its validated definition, resolved variants and state."""

    id: str
    name: str
    definition: CampaignDefinition
    variants: tuple[Variant, ...]
    template_source: str
    status: str
    experiment: str | None
    bandit: str | None
    created_at: datetime
    sent_at: datetime | None

    def caps(self) -> FrequencyPolicy | None:
        caps = self.definition.caps
        return None if caps is None else caps.policy(f"campaign:{self.id}")

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "status": self.status,
            "template": self.definition.template,
            "sender": self.definition.sender,
            "segment": self.definition.segment,
            "purpose": self.definition.purpose,
            "channel": self.definition.channel,
            "holdout": self.definition.holdout,
            "variants": [v.as_dict() for v in self.variants],
            "reward": self.definition.reward,
            "send_time": self.definition.send_time,
            "conversion_window_days": self.definition.conversion_window_days,
            "trigger": None
            if self.definition.trigger is None
            else self.definition.trigger.model_dump(mode="json"),
            "experiment": self.experiment,
            "bandit": self.bandit,
            "created_at": self.created_at.isoformat(),
            "sent_at": None if self.sent_at is None else self.sent_at.isoformat(),
        }


def _stored(row: Any) -> StoredCampaign:
    data = dict(row.definition)
    variants = tuple(Variant(**v) for v in data.pop("variants", []))
    return StoredCampaign(
        id=row.id,
        name=row.name,
        definition=CampaignDefinition.model_validate(data),
        variants=variants,
        template_source=row.template_source,
        status=row.status,
        experiment=row.experiment,
        bandit=row.bandit,
        created_at=as_utc(row.created_at),
        sent_at=None if row.sent_at is None else as_utc(row.sent_at),
    )


def _variants(engine: Engine, definition: CampaignDefinition) -> list[Variant]:
    variants: list[Variant] = []
    for index, item in enumerate(definition.subjects):
        spec = SubjectDefinition(subject=item) if isinstance(item, str) else item
        name = spec.name or (chr(ord("a") + index) if index < 26 else f"v{index + 1}")
        if not _VARIANT.match(name):
            raise CampaignError(
                f"subjects[{index}]: variant name {name!r}: use lower-case letters, digits, "
                "'_', '.' or '-'"
            )
        variants.append(Variant(name, spec.subject, spec.preheader, "explicit"))
    if definition.brief is not None:
        from postwise.content.copy import CopyBrief, CopyStore

        brief = definition.brief
        try:
            copy_brief = CopyBrief(
                topic=brief.topic,
                facts=tuple(brief.facts),
                tone=brief.tone,
                segment=brief.segment,
                language=brief.language,
            )
        except PostwiseError as error:
            raise CampaignError(f"brief: {error}") from None
        approved = CopyStore(engine).usable(copy_brief)
        if not approved and not variants:
            raise CampaignError(
                f"brief {brief.topic!r} has no approved copy candidates: run `postwise copy "
                "generate` (and `copy approve` where needed), or list subjects"
            )
        for candidate in approved:
            variants.append(
                Variant(
                    f"copy-{candidate.id}",
                    candidate.subject,
                    candidate.preheader or None,
                    f"copy:{candidate.id}",
                )
            )
    if not variants:
        variants.append(Variant("default", "", None, "template"))
    names = [v.name for v in variants]
    if len(set(names)) != len(names):
        raise CampaignError(f"variant names repeat: {names}")
    return variants


def _template_source(definition: CampaignDefinition) -> tuple[str, str]:
    """(source text, name for errors), the template compiled once to refuse a broken one."""
    from postwise.content.templates import parse_template
    from postwise.core.errors import TemplateError

    if definition.template_source is not None:
        text, name = definition.template_source, f"campaign {definition.id}: template_source"
    else:
        assert definition.template is not None
        path = Path(definition.template)
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as error:
            raise CampaignError(f"template {path}: cannot be read ({error})") from None
        name = str(path)
    try:
        parse_template(text, name)
    except TemplateError as error:
        raise CampaignError(f"template: {error}") from None
    return text, name


def _check_segment(engine: Engine, definition: CampaignDefinition) -> None:
    from postwise.engage.audiences import evaluate_segment
    from postwise.engage.segments import SegmentError

    try:
        # Evaluating at the epoch reads no events; it parses the definition and resolves every
        # named reference (inline ones first), so a typo fails here and not at send time.
        evaluate_segment(
            engine,
            definition.segment,
            datetime(1970, 1, 2, tzinfo=UTC),
            segments=definition.segments or None,
        )
    except SegmentError as error:
        raise CampaignError(f"segment: {error}") from None


def create_campaign(
    engine: Engine, definition: CampaignDefinition, at: datetime | None = None
) -> StoredCampaign:
    """Validate and store ``definition`` as a ``draft`` campaign with its bandit and (holdout
    above 0) its holdout experiment. Raises CampaignError for a taken id, an unusable
    template, segment, brief or caps."""
    from postwise.engage import bandit_store
    from postwise.engage.bandits import BetaThompson
    from postwise.engage.experiment_store import create_experiment

    moment = as_utc(at or utcnow())
    source, _ = _template_source(definition)
    _check_segment(engine, definition)
    if definition.caps is not None:
        try:
            definition.caps.policy("check")
        except ValueError as error:
            raise CampaignError(f"caps: {error}") from None
    variants = _variants(engine, definition)
    name = f"campaign:{definition.id}"
    stored_definition = {
        **definition.model_dump(mode="json", by_alias=True),
        "variants": [v.as_dict() for v in variants],
    }
    try:
        with engine.begin() as connection:
            connection.execute(
                insert(CampaignRecord).values(
                    id=definition.id,
                    name=definition.name or definition.id,
                    definition=json.loads(json.dumps(stored_definition)),
                    template_source=source,
                    status="draft",
                    experiment=name if definition.holdout > 0 else None,
                    bandit=name,
                    created_at=moment,
                    updated_at=moment,
                    sent_at=None,
                )
            )
    except IntegrityError:
        raise DuplicateCampaignError(
            f"campaign {definition.id!r} exists already; pick another id (postwise campaign list)"
        ) from None
    try:
        bandit_store.create_bandit(engine, name, BetaThompson([v.name for v in variants]))
        if definition.holdout > 0:
            create_experiment(
                engine, name, holdout=definition.holdout, campaign=definition.id, at=moment
            )
    except PostwiseError as error:
        raise CampaignError(
            f"campaign {definition.id!r} was stored but its bandit or holdout could not be "
            f"created: {error}"
        ) from None
    return load_campaign(engine, definition.id)


def load_campaign(engine: Engine, campaign_id: str) -> StoredCampaign:
    """The stored campaign ``campaign_id``; raises CampaignError when there is none."""
    with engine.connect() as connection:
        row = connection.execute(
            select(CampaignRecord).where(CampaignRecord.id == campaign_id)
        ).first()
    if row is None:
        raise UnknownCampaignError(
            f"no campaign {str(campaign_id)[:80]!r} (postwise campaign list shows the stored ones)"
        )
    return _stored(row)


def list_campaigns(engine: Engine) -> list[StoredCampaign]:
    """Every stored campaign, oldest first."""
    with engine.connect() as connection:
        rows = connection.execute(select(CampaignRecord).order_by(CampaignRecord.created_at))
        return [_stored(row) for row in rows]


def set_status(
    engine: Engine, campaign_id: str, status: str, sent_at: datetime | None = None
) -> None:
    """Move the campaign to ``status`` (and record ``sent_at`` when given)."""
    if status not in CAMPAIGN_STATUSES:
        raise CampaignError(f"unknown campaign status {status!r}")
    values: dict[str, Any] = {"status": status, "updated_at": utcnow()}
    if sent_at is not None:
        values["sent_at"] = as_utc(sent_at)
    with engine.begin() as connection:
        connection.execute(
            update(CampaignRecord).where(CampaignRecord.id == campaign_id).values(**values)
        )
