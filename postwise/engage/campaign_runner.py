"""Sending a campaign: audience → holdout → per contact variant, send time, render, tracking,
message → the outbound queue, with every step recorded.

:meth:`CampaignRunner.send_campaign` runs the whole campaign once:

1. the audience (:func:`~postwise.engage.audiences.resolve_audience`: segment, consent,
   suppression list; then the frequency caps, asked only for contacts this campaign has not
   reached yet, so a re-run reports them as duplicates; every exclusion counted by reason);
2. the holdout: the campaign's holdout experiment assigns the included contacts (those in the
   control arm are recorded as ``holdout``; those in the active global holdout as
   ``global_holdout``); held-out contacts get nothing;
3. per remaining contact, in batches: a subject variant drawn from the campaign bandit's
   action probabilities (Beta-Thompson), a send time (``now``, or the next best hour of the
   promoted ``sendtime:*`` model in the contact's zone), the template rendered with the
   contact's attributes, segments, latest propensity scores and tracked unsubscribe URL,
   links and pixel rewritten for contacts who consented to tracking, the MIME message with
   RFC 8058 List-Unsubscribe headers (when the tracking root is https), then queued in one
   durable batch (:meth:`OutboundServices.submit_many`) with the idempotency key
   ``campaign:<id>:<contact>``, so a re-run never sends twice;
4. per contact, in one transaction per batch: a ``campaign_messages`` row (variant, queue
   message id, tracking message id, state), a ``sent`` engage event (properties
   ``campaign``, ``variant``, ``message``, ``message_id``, ``channel``) and a
   ``campaign_send`` decision (variant and its probability, the bandit and send-time model
   versions, policy = the campaign).

A contact whose render, build or submission fails is recorded ``failed`` with the reason and
reported; the batch goes on. :meth:`CampaignRunner.send_to` sends one contact (the same path,
with the audience checks done for that contact alone); triggered messages
(:mod:`postwise.engage.triggers`) build on it, passing the event id as the ``occasion``: one
message per (campaign, contact, occasion), idempotency key ``campaign:<id>:<contact>:<event>``.
A trigger campaign is refused by :meth:`CampaignRunner.send_campaign`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import re
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from email.utils import getaddresses
from pathlib import Path
from typing import Any, cast
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import numpy as np
from sqlalchemy import Table, delete, insert, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Connection, Engine

from postwise.content.rendering import build_message, message_bytes
from postwise.content.templates import MessageTemplate, contact_context, parse_template, render
from postwise.core.db import (
    ContactAddressRecord,
    ContactRecord,
    DecisionRecord,
    EngageEventRecord,
    as_utc,
    open_database,
    utcnow,
)
from postwise.core.errors import CampaignError, PostwiseError, TemplateError
from postwise.core.settings import Settings
from postwise.engage import bandit_store
from postwise.engage.audiences import evaluate_segment, resolve_audience
from postwise.engage.campaigns import (
    CampaignMessageRecord,
    StoredCampaign,
    Variant,
    load_campaign,
    set_status,
)
from postwise.engage.contacts import ContactStore
from postwise.engage.experiment_store import assign, assignments, global_holdout
from postwise.engage.fatigue_policy import Downgrade, Suppress, decide_send, decide_sends
from postwise.engage.provenance import NewDecision, record_decisions_in
from postwise.engage.tracking import Tracker, tracked_contacts
from postwise.outbound.submission import Accepted, Submission, SubmissionError
from postwise.services import OutboundServices

__all__ = [
    "DECISION_KIND",
    "CampaignRunner",
    "SendOutcome",
    "SendReport",
    "idempotency_key",
    "tracking_message_id",
    "variant_template",
]

DECISION_KIND = "campaign_send"
SCORE_KIND = "propensity_score"
QUEUED, FAILED, HOLDOUT, GLOBAL_HOLDOUT = "queued", "failed", "holdout", "global_holdout"
_CHUNK = 500
_PLAIN_OCCASION = re.compile(r"^[!-~]{1,128}$")


def _digest(*parts: str) -> str:
    return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()


def tracking_message_id(campaign_id: str, contact_id: str, occasion: str | None = None) -> str:
    """The ``message`` of a campaign message's tracking tokens and engage events: stable for
    (campaign, contact) — and the occasion of a triggered message — so a re-run names the
    same message."""
    if occasion:
        return "m" + _digest(campaign_id, contact_id, occasion)[:31]
    return "m" + _digest(campaign_id, contact_id)[:31]


def idempotency_key(campaign_id: str, contact_id: str, occasion: str | None = None) -> str:
    """The queue's idempotency key of a campaign message: ``campaign:<id>:<contact>``, with
    ``:<occasion>`` for a triggered message (a digest when the occasion is long or has
    characters a key cannot hold)."""
    key = f"campaign:{campaign_id}:{contact_id}"
    if not occasion:
        return key
    if _PLAIN_OCCASION.match(occasion) and len(key) + 1 + len(occasion) <= 255:
        return f"{key}:{occasion}"
    return f"{key}:#{_digest(occasion)[:40]}"


@dataclass(frozen=True)
class SendOutcome:
    """What became of one contact: ``queued`` (now or at ``send_at``), ``duplicate`` (queued
    by an earlier run: nothing new), ``holdout`` / ``global_holdout`` (held out, nothing
    sent), ``excluded`` (consent, suppression, caps, no address; see ``reason``) or
    ``failed`` (render, build or queue; see ``reason``)."""

    campaign: str
    contact_id: str
    status: str
    variant: str | None = None
    queue_message_id: str | None = None
    tracking_message_id: str | None = None
    send_at: datetime | None = None
    reason: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "campaign": self.campaign,
            "contact_id": self.contact_id,
            "status": self.status,
            "variant": self.variant,
            "queue_message_id": self.queue_message_id,
            "tracking_message_id": self.tracking_message_id,
            "send_at": None if self.send_at is None else self.send_at.isoformat(),
            "reason": self.reason,
        }


@dataclass(frozen=True)
class SendReport:
    """What one :meth:`CampaignRunner.send_campaign` did: the audience counts, then how many
    were queued (``scheduled`` of them for a later send-time slot), found queued already
    (``duplicates``), held out, and which failed with why."""

    campaign: str
    at: datetime
    audience: Mapping[str, int]
    queued: int
    scheduled: int
    duplicates: int
    holdout: int
    global_holdout: int
    failed: Mapping[str, str]
    variants: Mapping[str, int]
    warnings: tuple[str, ...] = ()

    def as_dict(self) -> dict[str, Any]:
        return {
            "campaign": self.campaign,
            "at": self.at.isoformat(),
            "audience": dict(self.audience),
            "queued": self.queued,
            "scheduled": self.scheduled,
            "duplicates": self.duplicates,
            "holdout": self.holdout,
            "global_holdout": self.global_holdout,
            "failed": dict(self.failed),
            "variants": dict(self.variants),
            "warnings": list(self.warnings),
        }


@dataclass
class _SendTime:
    """The promoted send-time model (or none: send now)."""

    model: Any = None
    name: str | None = None
    version: str | None = None


@dataclass
class _Plan:
    """A campaign made ready to send: one compiled template per variant, the sender, the
    bandit's probabilities for this run and the send-time model."""

    campaign: StoredCampaign
    templates: dict[str, MessageTemplate]
    sender: str
    envelope_from: str
    arms: tuple[str, ...]
    probabilities: np.ndarray
    bandit_version: int
    sendtime: _SendTime
    warnings: list[str] = field(default_factory=list)


def variant_template(base: MessageTemplate, variant: Variant, source_name: str) -> MessageTemplate:
    """``base`` with the variant's subject (and preheader, when it has one), compiled in the
    same sandbox: a one-line template is parsed for those parts and swapped in."""
    if not variant.subject:
        return base
    lines = [f"subject = {json.dumps(variant.subject)}"]
    if variant.preheader:
        lines.append(f"preheader = {json.dumps(variant.preheader)}")
    lines += ['from = "x@example.invalid"', 'layout = "-"']
    parts = parse_template("\n".join(lines), f"{source_name} (variant {variant.name})")
    if variant.preheader:
        return dataclasses.replace(base, subject=parts.subject, preheader=parts.preheader)
    return dataclasses.replace(base, subject=parts.subject)


def message_context(
    campaign: StoredCampaign,
    variant: str,
    unsubscribe_url: str,
    attributes: Mapping[str, Any],
    *,
    scores: Mapping[str, float] | None = None,
    downgraded: bool = False,
    extra_context: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The render context of one campaign message: the contact's (``contact_context``) with
    ``unsubscribe_url``, ``campaign``, ``variant`` and ``downgraded``, then
    ``extra_context`` (a trigger's event) over them."""
    extra: dict[str, Any] = {
        "unsubscribe_url": unsubscribe_url,
        "campaign": {"id": campaign.id, "name": campaign.name},
        "variant": variant,
        "downgraded": downgraded,
    }
    extra.update(extra_context or {})
    return contact_context(attributes, scores=scores, extra=extra)


def sample_messages(
    settings: Settings, engine: Engine, at: datetime, campaign: StoredCampaign
) -> dict[str, Any]:
    """One rendered message per variant (subject, preheader, text, warnings) for the first
    contact of the campaign's segment as of ``at`` (an empty context when it has none), as
    ``campaign preview`` shows it; records nothing. Raises PostwiseError (segment, template)."""
    store = ContactStore.from_settings(settings, engine)
    definition = campaign.definition
    members = sorted(
        evaluate_segment(engine, definition.segment, at, segments=definition.segments or None)
    )
    contact = members[0] if members else None
    attributes = (store.attributes(contact) if contact else None) or {}
    tracker = Tracker.from_settings(settings)
    base = parse_template(campaign.template_source, definition.template or campaign.id)
    samples: dict[str, Any] = {"contact": contact, "variants": {}}
    for variant in campaign.variants:
        template = variant_template(base, variant, campaign.id)
        message = tracking_message_id(campaign.id, contact or "0" * 64)
        unsubscribe = tracker.unsubscribe_url(
            campaign.id, message, contact or "0" * 64, variant.name
        )
        rendered = render(
            template, message_context(campaign, variant.name, unsubscribe, attributes)
        )
        samples["variants"][variant.name] = {
            "subject": rendered.subject,
            "preheader": rendered.preheader,
            "text": rendered.text,
            "warnings": list(rendered.warnings),
        }
    return samples


def _envelope_address(sender: str) -> str:
    pairs = getaddresses([sender])
    address = pairs[0][1] if pairs else ""
    if "@" not in address:
        raise CampaignError(f"sender {sender!r} has no address (expected Name <local@domain>)")
    return address


def _insert_ignoring(connection: Connection, table: Any, rows: list[dict[str, Any]]) -> None:
    """Insert rows, skipping those whose unique key is stored already (idempotent writes)."""
    if not rows:
        return
    dialect = connection.dialect.name
    if dialect in ("sqlite", "postgresql"):
        statement = (sqlite_insert if dialect == "sqlite" else pg_insert)(table)
        connection.execute(statement.on_conflict_do_nothing(), rows)
        return
    for row in rows:
        exists = connection.execute(
            select(table.c.event_id).where(table.c.event_id == row["event_id"])
        ).first()
        if exists is None:
            connection.execute(insert(table), [row])


def _customer_number(value: Any) -> int | None:
    """The send-time model's customer number in a ``customer_id`` attribute: an integer, or a
    number with nothing after the point (a CSV import keeps ``17850`` and ``17850.0`` as text;
    the retail reader accepts both spellings), within the model's int64 ids; None otherwise."""
    number: int | None = None
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        number = value
    elif isinstance(value, str) and re.fullmatch(r"\s*[+-]?\d+\s*", value):
        number = int(value)
    else:
        try:
            as_float = float(value)
        except (TypeError, ValueError):
            return None
        number = int(as_float) if as_float.is_integer() else None
    return number if number is not None and 0 <= number < 2**63 else None


def _duplicate(campaign_id: str, row: Any) -> SendOutcome:
    """The outcome of a contact (and occasion) whose message was queued before."""
    return SendOutcome(
        campaign_id,
        row.contact_id,
        "duplicate",
        row.variant,
        row.queue_message_id,
        row.tracking_message_id,
        as_utc(row.send_at),
    )


class CampaignRunner:
    """Sends campaigns from one process. ``outbound`` (default: built from ``settings`` on
    ``engine``) queues the messages; ``tracker`` signs tracked links (default: from the
    settings); ``rng`` draws the variants (default: unseeded)."""

    def __init__(
        self,
        settings: Settings,
        engine: Engine | None = None,
        *,
        store: ContactStore | None = None,
        outbound: OutboundServices | None = None,
        tracker: Tracker | None = None,
        rng: np.random.Generator | None = None,
        batch_size: int = _CHUNK,
    ) -> None:
        self.settings = settings
        self.engine = engine or (
            outbound.engine if outbound else open_database(settings.resolved_database_url)
        )
        self.key = settings.resolved_engage_hmac_key()
        self.store = store or ContactStore(self.engine, self.key)
        self.outbound = outbound or OutboundServices.from_settings(settings, self.engine)
        self.tracker = tracker or Tracker.from_settings(settings)
        self.rng = rng if rng is not None else np.random.default_rng()
        self.batch_size = max(1, batch_size)
        self._plans: dict[str, _Plan] | None = None

    # ------------------------------------------------------------------ public

    @contextlib.contextmanager
    def reusing_plans(self) -> Iterator[None]:
        """Within the block :meth:`send_to` prepares each campaign (stored definition,
        template, bandit, send-time model) once instead of once per message: for a caller
        that sends many triggered messages in one pass. Not for use from several threads."""
        outer = self._plans
        if outer is None:
            self._plans = {}
        try:
            yield
        finally:
            self._plans = outer

    def send_campaign(self, campaign_id: str, at: datetime | None = None) -> SendReport:
        """Send ``campaign_id`` as of ``at`` (default now) to its audience; see the module
        docstring. Safe to run again: contacts queued before are counted as duplicates and
        get nothing new, failed ones are tried again. Raises CampaignError for an unknown
        campaign or one that cannot be prepared (template, sender, segment)."""
        moment = as_utc(at or utcnow())
        campaign = load_campaign(self.engine, campaign_id)
        if campaign.definition.trigger is not None:
            raise CampaignError(
                f"campaign {campaign.id!r} is a trigger campaign (its audience is whoever fires "
                f"its {campaign.definition.trigger.event!r} event): `postwise serve` sends it "
                "as the events arrive; `campaign send` is for segment campaigns"
            )
        plan = self._plan(campaign)
        definition = campaign.definition
        set_status(self.engine, campaign.id, "sending")
        try:
            # Caps are applied below, after the contacts this campaign reached before are set
            # aside: a re-run must report them as duplicates, not as capped by their own send.
            audience = resolve_audience(
                self.store,
                definition.segment,
                moment,
                definition.purpose,
                definition.channel,
                None,
                self.outbound.suppressions,
                segments=definition.segments or None,
            )
        except PostwiseError as error:
            raise CampaignError(f"campaign {campaign.id!r}: audience: {error}") from None
        counts_in = audience.counts()
        contacts, downgraded, capped = self._capped(campaign, list(audience.included), moment)
        counts_in["excluded_capped"] = capped
        counts_in["included"] -= capped
        counts_in["downgraded"] = len(downgraded)
        outcomes = self._send_contacts(plan, contacts, moment, None, downgraded)
        scheduled = sum(
            1 for o in outcomes if o.status == QUEUED and o.send_at and o.send_at > moment
        )
        status = "scheduled" if scheduled else "sent"
        set_status(self.engine, campaign.id, status, sent_at=moment)
        counts = Counter(o.status for o in outcomes)
        variants = Counter(o.variant for o in outcomes if o.status == QUEUED and o.variant)
        return SendReport(
            campaign=campaign.id,
            at=moment,
            audience=counts_in,
            queued=counts[QUEUED],
            scheduled=scheduled,
            duplicates=counts["duplicate"],
            holdout=counts[HOLDOUT],
            global_holdout=counts[GLOBAL_HOLDOUT],
            failed={o.contact_id: o.reason or "" for o in outcomes if o.status == FAILED},
            variants=dict(sorted(variants.items())),
            warnings=tuple(plan.warnings),
        )

    def send_to(
        self,
        campaign_id: str,
        contact_id: str,
        at: datetime | None = None,
        extra_context: Mapping[str, Any] | None = None,
        occasion: str | None = None,
    ) -> SendOutcome:
        """Send ``campaign_id`` to one contact as of ``at``, whether or not the contact is in
        the campaign's segment (for triggered messages): consent for the campaign's purpose,
        a stored address, the suppression list and the caps are checked for this contact
        (``excluded`` with the reason otherwise), then the holdout, then the same path as
        :meth:`send_campaign`. ``extra_context`` is added to the template variables (after
        the contact's own). One message per (campaign, contact, ``occasion``): a second call
        answers ``duplicate``. Without an occasion that is one message per (campaign,
        contact); a triggered message passes its event id, so each event may send once (its
        idempotency key, tracking message and ``campaign_messages`` row carry the occasion).
        Raises CampaignError for an unknown campaign; a failure of this contact's message is
        an outcome ``failed``, not an exception."""
        moment = as_utc(at or utcnow())
        plan = None if self._plans is None else self._plans.get(campaign_id)
        if plan is None:
            plan = self._plan(load_campaign(self.engine, campaign_id))
            if self._plans is not None:
                self._plans[campaign_id] = plan
        campaign = plan.campaign
        definition = campaign.definition
        # A message sent already is a duplicate before anything else: the caps would count
        # it against itself.
        earlier = self._rows_of(campaign.id, [contact_id], occasion or "").get(contact_id)
        if earlier is not None and earlier.state == QUEUED:
            return _duplicate(campaign.id, earlier)
        reason = self._exclusion(campaign, contact_id)
        if reason is not None:
            return SendOutcome(campaign.id, contact_id, "excluded", reason=reason)
        downgraded: set[str] = set()
        caps = campaign.caps()
        if caps is not None:
            decision = decide_send(
                self.store, contact_id, definition.channel, moment, caps, definition.purpose
            )
            if isinstance(decision, Suppress):
                return SendOutcome(
                    campaign.id,
                    contact_id,
                    "excluded",
                    reason=f"{decision.rule}: {decision.reason}",
                )
            if isinstance(decision, Downgrade):
                downgraded.add(contact_id)
        [outcome] = self._send_contacts(
            plan, [contact_id], moment, extra_context, downgraded, occasion or ""
        )
        return outcome

    # ------------------------------------------------------------------ preparation

    def _plan(self, campaign: StoredCampaign) -> _Plan:
        source_name = campaign.definition.template or f"campaign {campaign.id}"
        try:
            base = parse_template(campaign.template_source, source_name)
            templates = {v.name: variant_template(base, v, source_name) for v in campaign.variants}
        except TemplateError as error:
            raise CampaignError(f"campaign {campaign.id!r}: template: {error}") from None
        sender = campaign.definition.sender or base.sender
        envelope_from = _envelope_address(sender)
        bandit = bandit_store.load_bandit(self.engine, campaign.bandit or f"campaign:{campaign.id}")
        probabilities = np.clip(
            np.asarray(bandit.policy.probabilities(self.rng, None), dtype=np.float64), 0, 1
        )
        probabilities = probabilities / probabilities.sum()
        warnings: list[str] = []
        if not self.tracker.base_url.startswith("https://"):
            warnings.append(
                f"tracking_base_url {self.tracker.base_url} is not https: messages carry the "
                "unsubscribe link in the body but no List-Unsubscribe headers (RFC 8058 needs "
                "https)"
            )
        sendtime = _SendTime()
        if campaign.definition.send_time == "model":
            sendtime = self._sendtime_model()
            if sendtime.model is None:
                warnings.append("send_time = model but no sendtime:* model is promoted: sent now")
        return _Plan(
            campaign,
            templates,
            sender,
            envelope_from,
            bandit.arms,
            probabilities,
            bandit.version,
            sendtime,
            warnings,
        )

    def _sendtime_model(self) -> _SendTime:
        from postwise.engage.registry import list_models
        from postwise.engage.sendtime_evaluation import load_sendtime

        promoted = [
            e
            for e in list_models(self.engine)
            if e.name.startswith("sendtime:") and e.status == "promoted"
        ]
        if not promoted:
            return _SendTime()
        entry = max(promoted, key=lambda e: e.promoted_at or e.created_at)
        try:
            model = load_sendtime(Path(entry.artefact_path))
        except PostwiseError as error:
            raise CampaignError(f"promoted send-time model {entry.name}: {error}") from None
        return _SendTime(model, entry.name, entry.version)

    def _capped(
        self, campaign: StoredCampaign, included: list[str], moment: datetime
    ) -> tuple[list[str], set[str], int]:
        """(contacts to go on with, the downgraded ones, how many the caps suppressed): the
        caps are asked (``decide_sends``, one batch that records capped sends) only for
        contacts this campaign has not reached yet."""
        caps = campaign.caps()
        if caps is None:
            return included, set(), 0
        existing = self._rows_of(campaign.id, included, None)
        reached = {c for c, row in existing.items() if row.state != FAILED}
        definition = campaign.definition
        decisions = decide_sends(
            self.store,
            [c for c in included if c not in reached],
            definition.channel,
            moment,
            caps,
            definition.purpose,
        )
        kept: list[str] = []
        downgraded: set[str] = set()
        capped = 0
        for contact_id in included:
            decision = decisions.get(contact_id)
            if isinstance(decision, Suppress):
                capped += 1
                continue
            if isinstance(decision, Downgrade):
                downgraded.add(contact_id)
            kept.append(contact_id)
        return kept, downgraded, capped

    def _exclusion(self, campaign: StoredCampaign, contact_id: str) -> str | None:
        definition = campaign.definition
        if self.store.attributes(contact_id) is None:
            return "unknown contact"
        if not self.store.has_consent(contact_id, definition.purpose, definition.channel):
            return f"no standing consent for {definition.purpose!r} on {definition.channel!r}"
        address = self.store.address_of(contact_id)
        if address is None:
            return "no stored address to send to"
        listed = self.outbound.suppressions.find([address])
        if listed:
            entry = next(iter(listed.values()))
            return f"suppressed ({entry.source}: {entry.reason})"
        return None

    # ------------------------------------------------------------------ holdout

    def _arms(
        self, campaign: StoredCampaign, contact_ids: list[str], moment: datetime
    ) -> dict[str, str]:
        """``treatment``, ``holdout`` or ``global_holdout`` per contact."""
        definition = campaign.definition
        if campaign.experiment:
            report = assign(
                self.engine,
                campaign.experiment,
                contact_ids,
                moment,
                key=self.key,
                purpose=definition.purpose,
                channel=definition.channel,
            )
            arms = {
                c: HOLDOUT if arm == "control" else "treatment" for c, arm in report.arms().items()
            }
            arms.update(dict.fromkeys(report.global_holdout, GLOBAL_HOLDOUT))
            # consent was checked before; a contact assign() skipped has lost it since
            return {c: arms.get(c, "excluded") for c in contact_ids}
        holdout = global_holdout(self.engine)
        if holdout is None:
            return dict.fromkeys(contact_ids, "treatment")
        stored = assignments(self.engine, holdout.name)
        rule = holdout.experiment
        result: dict[str, str] = {}
        for contact_id in contact_ids:
            arm = (
                stored[contact_id][0] if contact_id in stored else rule.assign(contact_id, self.key)
            )
            result[contact_id] = GLOBAL_HOLDOUT if arm == holdout.control else "treatment"
        return result

    # ------------------------------------------------------------------ sending

    def _rows_of(
        self, campaign_id: str, contact_ids: Sequence[str], occasion: str | None
    ) -> dict[str, Any]:
        """The ``campaign_messages`` row of each contact for ``occasion`` ('' for the
        campaign send and the holdout; None for any occasion, the last row read winning)."""
        table = CampaignMessageRecord
        found: dict[str, Any] = {}
        with self.engine.connect() as connection:
            for start in range(0, len(contact_ids), _CHUNK):
                query = select(table).where(
                    table.campaign_id == campaign_id,
                    table.contact_id.in_(contact_ids[start : start + _CHUNK]),
                )
                if occasion is not None:
                    query = query.where(table.occasion == occasion)
                found.update({row.contact_id: row for row in connection.execute(query)})
        return found

    def _send_contacts(
        self,
        plan: _Plan,
        contact_ids: list[str],
        moment: datetime,
        extra_context: Mapping[str, Any] | None,
        downgraded: set[str],
        occasion: str = "",
    ) -> list[SendOutcome]:
        """Hold out, skip as duplicates or send each contact, in batches. With an
        ``occasion`` (a triggered message) the message is the contact's for that occasion:
        queued once per (campaign, contact, occasion); the holdout stays per contact."""
        campaign = plan.campaign
        arms = self._arms(campaign, contact_ids, moment) if contact_ids else {}
        plain = self._rows_of(campaign.id, contact_ids, "")
        existing = self._rows_of(campaign.id, contact_ids, occasion) if occasion else plain
        outcomes: list[SendOutcome] = []
        held: list[tuple[str, str]] = []
        to_send: list[str] = []
        for contact_id in contact_ids:
            arm = arms[contact_id]
            row = existing.get(contact_id)
            if arm in (HOLDOUT, GLOBAL_HOLDOUT):
                outcomes.append(SendOutcome(campaign.id, contact_id, arm))
                if plain.get(contact_id) is None:
                    held.append((contact_id, arm))
            elif arm == "excluded":
                outcomes.append(
                    SendOutcome(campaign.id, contact_id, "excluded", reason="consent withdrawn")
                )
            elif row is not None and row.state == QUEUED:
                outcomes.append(_duplicate(campaign.id, row))
            else:
                to_send.append(contact_id)
        self._record_held(campaign, held, moment)
        for start in range(0, len(to_send), self.batch_size):
            chunk = to_send[start : start + self.batch_size]
            retried = [c for c in chunk if c in existing]
            outcomes.extend(
                self._send_batch(plan, chunk, retried, moment, extra_context, downgraded, occasion)
            )
        return outcomes

    def _record_held(
        self, campaign: StoredCampaign, held: list[tuple[str, str]], moment: datetime
    ) -> None:
        if not held:
            return
        now = utcnow()
        rows = [
            {
                "campaign_id": campaign.id,
                "contact_id": contact_id,
                "variant": None,
                "state": arm,
                "reason": "",
                "queue_message_id": None,
                "tracking_message_id": tracking_message_id(campaign.id, contact_id),
                "header_message_id": None,
                "send_at": moment,
                "reward": None,
                "created_at": now,
                "updated_at": now,
            }
            for contact_id, arm in held
        ]
        decisions = [
            NewDecision(
                contact_id=contact_id,
                kind=DECISION_KIND,
                decision={"campaign": campaign.id, "status": arm, "variant": None},
                model_name=None,
                model_version=None,
                features={},
                policy=self._policy(campaign, None),
                at=moment,
                decision_id=_digest(DECISION_KIND, campaign.id, contact_id, arm)[:40],
            )
            for contact_id, arm in held
        ]
        with self.engine.begin() as connection:
            _insert_ignoring(connection, CampaignMessageRecord.__table__, rows)
            record_decisions_in(connection, decisions)

    def _policy(self, campaign: StoredCampaign, plan: _Plan | None) -> dict[str, Any]:
        definition = campaign.definition
        policy: dict[str, Any] = {
            "campaign": campaign.id,
            "holdout": definition.holdout,
            "experiment": campaign.experiment,
            "send_time": definition.send_time,
            "purpose": definition.purpose,
            "channel": definition.channel,
        }
        if plan is not None:
            policy["sendtime_model"] = plan.sendtime.name
            policy["sendtime_version"] = plan.sendtime.version
        return policy

    def _contacts(self, contact_ids: list[str]) -> tuple[dict[str, dict[str, Any]], dict[str, str]]:
        attributes: dict[str, dict[str, Any]] = {}
        addresses: dict[str, str] = {}
        contacts, where = ContactRecord.__table__, ContactAddressRecord.__table__
        with self.engine.connect() as connection:
            for row in connection.execute(
                select(contacts.c.contact_id, contacts.c.attributes).where(
                    contacts.c.contact_id.in_(contact_ids)
                )
            ):
                attributes[str(row[0])] = dict(row[1] or {})
            for row in connection.execute(
                select(where.c.contact_id, where.c.address).where(
                    where.c.contact_id.in_(contact_ids)
                )
            ):
                addresses[str(row[0])] = str(row[1])
        return attributes, addresses

    def _scores(self, contact_ids: list[str]) -> dict[str, dict[str, float]]:
        """The latest propensity score per contact and model (what ``engage score`` wrote)."""
        table = DecisionRecord.__table__
        latest: dict[tuple[str, str], tuple[datetime, int, float]] = {}
        with self.engine.connect() as connection:
            rows = connection.execute(
                select(
                    table.c.contact_id,
                    table.c.model_name,
                    table.c.decision,
                    table.c.decided_at,
                    table.c.id,
                ).where(table.c.kind == SCORE_KIND, table.c.contact_id.in_(contact_ids))
            )
            for contact_id, model_name, decision, decided_at, row_id in rows:
                value = decision.get("score") if isinstance(decision, dict) else decision
                if (
                    model_name is None
                    or isinstance(value, bool)
                    or not isinstance(value, int | float)
                ):
                    continue
                key = (str(contact_id), str(model_name))
                stamp = (as_utc(decided_at), int(row_id))
                if key not in latest or stamp > latest[key][:2]:
                    latest[key] = (*stamp, float(value))
        scores: dict[str, dict[str, float]] = {}
        for (contact_id, model_name), (_, _, value) in latest.items():
            scores.setdefault(contact_id, {})[model_name] = value
        return scores

    def _send_at(
        self, plan: _Plan, contact_id: str, attributes: Mapping[str, Any], moment: datetime
    ) -> tuple[datetime, dict[str, Any]]:
        model = plan.sendtime.model
        if model is None:
            return moment, {}
        from postwise.engage.sendtime import next_send_time

        number = _customer_number(attributes.get("customer_id"))
        if number is None:
            number = int(contact_id[:15], 16)
        country = attributes.get("country")
        slot = model.best_hour(number, str(country) if country else None, after=moment)
        zone = slot.zone
        wanted = attributes.get("timezone") or attributes.get("time_zone")
        if isinstance(wanted, str) and wanted:
            try:
                ZoneInfo(wanted)
                zone = wanted
            except (ZoneInfoNotFoundError, ValueError):
                pass
        when = next_send_time(slot.local_slot, zone, moment)
        return when, {"local_slot": slot.local_slot, "zone": zone, "explored": slot.explored}

    def _build(
        self,
        plan: _Plan,
        contact_id: str,
        message: str,
        variant: str,
        attributes: dict[str, Any],
        address: str,
        scores: dict[str, float],
        tracked: bool,
        moment: datetime,
        extra_context: Mapping[str, Any] | None,
        downgraded: bool,
    ) -> tuple[bytes, str]:
        """The wire bytes of one message and its Message-ID, for the tracking ``message``
        (:func:`tracking_message_id`, which names a triggered message's occasion). Raises
        TemplateError (render or build) or TrackingError (a field that cannot be signed)."""
        campaign = plan.campaign
        unsubscribe = self.tracker.unsubscribe_url(campaign.id, message, contact_id, variant)
        context = message_context(
            campaign,
            variant,
            unsubscribe,
            attributes,
            scores=scores,
            downgraded=downgraded,
            extra_context=extra_context,
        )
        rendered = render(plan.templates[variant], context)
        if tracked:
            html = self.tracker.add_tracking(
                rendered.html, campaign.id, message, contact_id, variant
            )
            rendered = dataclasses.replace(rendered, html=html)
        domain = plan.envelope_from.rpartition("@")[2].lower()
        header_id = f"<{message}.{_digest(campaign.id)[:8]}@{domain}>"
        built = build_message(
            rendered,
            plan.sender,
            address,
            unsubscribe_url=unsubscribe if unsubscribe.startswith("https://") else None,
            message_id=header_id,
            date=moment,
            headers={"X-Postwise-Campaign": campaign.id},
        )
        return message_bytes(built), header_id

    def _send_batch(
        self,
        plan: _Plan,
        contact_ids: list[str],
        retried: list[str],
        moment: datetime,
        extra_context: Mapping[str, Any] | None,
        downgraded: set[str],
        occasion: str,
    ) -> list[SendOutcome]:
        """Render, queue (one durable batch) and record ``contact_ids``, each for
        ``occasion`` ('' for a campaign send); a failure is that contact's outcome."""
        campaign = plan.campaign
        definition = campaign.definition
        attributes, addresses = self._contacts(contact_ids)
        scores = self._scores(contact_ids)
        tracked = tracked_contacts(self.store, list(attributes), self.tracker.consent_rule)
        drawn = self.rng.choice(len(plan.arms), size=len(contact_ids), p=plan.probabilities)
        failed: dict[str, str] = {}
        built: list[tuple[str, str, str, datetime, dict[str, Any], str, Submission]] = []
        for contact_id, index in zip(contact_ids, drawn.tolist(), strict=True):
            variant = plan.arms[int(index)]
            address = addresses.get(contact_id)
            if contact_id not in attributes or address is None:
                failed[contact_id] = "no stored contact or address"
                continue
            message = tracking_message_id(campaign.id, contact_id, occasion)
            try:
                send_at, slot = self._send_at(plan, contact_id, attributes[contact_id], moment)
                raw, header_id = self._build(
                    plan,
                    contact_id,
                    message,
                    variant,
                    attributes[contact_id],
                    address,
                    scores.get(contact_id, {}),
                    contact_id in tracked,
                    moment,
                    extra_context,
                    contact_id in downgraded,
                )
            except PostwiseError as error:
                failed[contact_id] = f"render: {error}"
                continue
            built.append(
                (
                    contact_id,
                    variant,
                    message,
                    send_at,
                    slot,
                    header_id,
                    Submission(
                        mail_from=plan.envelope_from,
                        recipients=(address,),
                        raw=raw,
                        source="campaign",
                        submitted_by=f"campaign:{campaign.id}"[:255],
                        idempotency_key=idempotency_key(campaign.id, contact_id, occasion),
                        pool=definition.pool,
                        not_before=send_at.timestamp() if send_at > moment else None,
                    ),
                )
            )
        answers: list[Accepted | SubmissionError]
        try:
            answers = self.outbound.submit_many([item[6] for item in built])
        except Exception as error:  # the batch failed as a whole: reported for each contact
            answers = [SubmissionError(f"the batch could not be queued: {error}")] * len(built)
        queued: list[tuple[str, str, str, datetime, dict[str, Any], str, Accepted]] = []
        for item, answer in zip(built, answers, strict=True):
            if isinstance(answer, SubmissionError):
                failed[item[0]] = f"queue: {answer}"
            else:
                queued.append((*item[:6], answer))
        self._record_batch(plan, queued, failed, retried, moment, downgraded, occasion)
        outcomes = [
            SendOutcome(
                campaign.id,
                contact_id,
                QUEUED,
                variant,
                accepted.enqueued.message_id,
                message,
                send_at,
            )
            for contact_id, variant, message, send_at, _, _, accepted in queued
        ]
        outcomes += [
            SendOutcome(
                campaign.id,
                contact_id,
                FAILED,
                tracking_message_id=tracking_message_id(campaign.id, contact_id, occasion),
                reason=reason,
            )
            for contact_id, reason in failed.items()
        ]
        return outcomes

    def _record_batch(
        self,
        plan: _Plan,
        queued: list[tuple[str, str, str, datetime, dict[str, Any], str, Accepted]],
        failed: dict[str, str],
        retried: list[str],
        moment: datetime,
        downgraded: set[str],
        occasion: str,
    ) -> None:
        """Store a batch in one transaction: per queued contact its ``campaign_messages``
        row, ``sent`` event and decision; per failed one its row and decision, replacing a
        failed (or released holdout) row of ``retried`` contacts. An ``occasion`` is kept in
        the rows and named in the event, the decisions and the policy."""
        campaign = plan.campaign
        now = utcnow()
        rows: list[dict[str, Any]] = []
        events: list[dict[str, Any]] = []
        decisions: list[NewDecision] = []
        policy = self._policy(campaign, plan)
        # an occasion makes the ids of the event and the decisions its own and is named in them
        named: dict[str, str] = {"occasion": occasion} if occasion else {}
        tag = (occasion,) if occasion else ()
        policy.update(named)
        probability = dict(zip(plan.arms, plan.probabilities.tolist(), strict=True))
        for contact_id, variant, message, send_at, slot, header_id, accepted in queued:
            queue_id = accepted.enqueued.message_id
            rows.append(
                {
                    "campaign_id": campaign.id,
                    "contact_id": contact_id,
                    "occasion": occasion,
                    "variant": variant,
                    "state": QUEUED,
                    "reason": "",
                    "queue_message_id": queue_id,
                    "tracking_message_id": message,
                    "header_message_id": header_id,
                    "send_at": send_at,
                    "reward": None,
                    "created_at": now,
                    "updated_at": now,
                }
            )
            events.append(
                {
                    "event_id": f"campaign-sent:{_digest(campaign.id, contact_id, *tag)[:40]}",
                    "contact_id": contact_id,
                    "type": "sent",
                    "occurred_at": send_at,
                    "properties": {
                        "campaign": campaign.id,
                        "variant": variant,
                        "message": message,
                        "message_id": queue_id,
                        "channel": campaign.definition.channel,
                        **named,
                    },
                    "value": None,
                }
            )
            decisions.append(
                NewDecision(
                    contact_id=contact_id,
                    kind=DECISION_KIND,
                    decision={
                        "campaign": campaign.id,
                        "status": QUEUED,
                        "variant": variant,
                        "probability": probability[variant],
                        "arms": list(plan.arms),
                        "probabilities": plan.probabilities.tolist(),
                        "send_at": send_at.isoformat(),
                        "downgraded": contact_id in downgraded,
                        "queue_message_id": queue_id,
                        "message": message,
                        **named,
                    },
                    model_name=campaign.bandit,
                    model_version=str(plan.bandit_version),
                    features={"send_time": slot},
                    policy=policy,
                    at=moment,
                    keep_features=True,
                    decision_id=_digest(DECISION_KIND, campaign.id, contact_id, *tag, QUEUED)[:40],
                )
            )
        for contact_id, reason in failed.items():
            rows.append(
                {
                    "campaign_id": campaign.id,
                    "contact_id": contact_id,
                    "occasion": occasion,
                    "variant": None,
                    "state": FAILED,
                    "reason": reason[:2000],
                    "queue_message_id": None,
                    "tracking_message_id": tracking_message_id(campaign.id, contact_id, occasion),
                    "header_message_id": None,
                    "send_at": moment,
                    "reward": None,
                    "created_at": now,
                    "updated_at": now,
                }
            )
            decisions.append(
                NewDecision(
                    contact_id=contact_id,
                    kind=DECISION_KIND,
                    decision={
                        "campaign": campaign.id,
                        "status": FAILED,
                        "reason": reason[:500],
                        **named,
                    },
                    model_name=campaign.bandit,
                    model_version=str(plan.bandit_version),
                    features={},
                    policy=policy,
                    at=moment,
                    decision_id=_digest(
                        DECISION_KIND, campaign.id, contact_id, *tag, FAILED, moment.isoformat()
                    )[:40],
                )
            )
        table = cast(Table, CampaignMessageRecord.__table__)
        with self.engine.begin() as connection:
            if retried:
                connection.execute(
                    delete(table).where(
                        table.c.campaign_id == campaign.id,
                        table.c.contact_id.in_(retried),
                        table.c.occasion == occasion,
                        table.c.state != QUEUED,  # failed, or released from a holdout
                    )
                )
            _insert_ignoring(connection, table, rows)
            _insert_ignoring(connection, EngageEventRecord.__table__, events)
            record_decisions_in(connection, decisions)
