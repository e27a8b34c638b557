"""The event-log layout of the propensity models: open, click (and purchase) from the platform's
own event exports.

A folder holds the files ``postwise engage import events`` reads (CSV with a header, or JSON
lines; gzipped or not), read through the same reader and validator
(:func:`postwise.engage.ingest.read_rows`, :func:`postwise.engage.ingest.validate_event`). As
in an import, a bad row is skipped and reported (file, line, reason); a file whose rows are all
bad stops the run with its first problem, and so does a folder without a single event. The same
``event_id`` twice counts once. The contact is the row's ``contact_id``, or its normalised
address when it has none (an export that mixes both for one contact splits it in two).

Events map onto the feature module as ``engage score`` maps stored events (the same adapter,
:func:`postwise.engage.scoring.events_from_rows`), in UTC seconds, so a model trained here takes
exactly the columns scoring computes.

A snapshot as of a cut-off (:func:`engagement_snapshot`):

- scored contacts: at least one ``sent`` before the cut-off, and no ``unsubscribe`` or
  ``complaint`` before it (``engage score`` never scores those: they withdrew consent);
- features: ``features_as_of(..., engagement=True)`` from the events strictly before it;
- label: an event of the target's type in the window ``[cut-off, cut-off + window)``:
  ``open``, ``click``, or ``purchase`` with a value >= 0.

Training stacks weekly snapshots (latest first, at most ``MAX_SNAPSHOTS``, each with at least
``MIN_HISTORY_DAYS`` of history) whose label windows end inside the training data.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np

from postwise.core.errors import CorpusError
from postwise.engage.contacts import ContactError, normalise_address
from postwise.engage.datasets import DatasetError, data_files, is_json_lines
from postwise.engage.features import CLICK, DAY, OPEN, PURCHASE, SENT, EventTable, features_as_of
from postwise.engage.ingest import (
    WITHDRAWING_TYPES,
    IngestError,
    RowError,
    read_rows,
    validate_event,
)
from postwise.engage.propensity_data import Design, Target, snapshot

# Label windows by target: a week for e-mail engagement (one weekly campaign, most opens within
# days of the send); a month for purchases, as the retail model.
DEFAULT_WINDOW_DAYS: dict[str, int] = {"open": 7, "click": 7, "purchase": 30}
MAX_WINDOW_DAYS = 90
EVENT_TARGETS: tuple[Target, ...] = ("open", "click", "purchase")
STEP_DAYS = 7
MIN_HISTORY_DAYS = 28
MAX_SNAPSHOTS = 8
MAX_LISTED_PROBLEMS = 10
_LABEL_KINDS = {"open": OPEN, "click": CLICK, "purchase": PURCHASE}

Row = tuple[str, str, datetime, float | None]  # contact key, type, occurred_at, value


@dataclass(frozen=True)
class EventLog:
    """The valid events of a folder (``rows``, with their ``event_ids``), its files, and the
    rows skipped as invalid (``skipped``; the first ``MAX_LISTED_PROBLEMS`` in ``problems`` as
    ``file:line: reason``)."""

    rows: tuple[Row, ...]
    event_ids: tuple[str, ...]
    files: tuple[str, ...]
    skipped: int
    problems: tuple[str, ...]

    @property
    def first(self) -> int:
        """The earliest event, UTC seconds."""
        return min(int(r[2].timestamp()) for r in self.rows)

    @property
    def last(self) -> int:
        """The latest event, UTC seconds."""
        return max(int(r[2].timestamp()) for r in self.rows)

    @staticmethod
    def concat(first: EventLog, second: EventLog) -> EventLog:
        """Both logs, an event id of the second already in the first counted once."""
        seen = set(first.event_ids)
        keep = [i for i, e in enumerate(second.event_ids) if e not in seen]
        return EventLog(
            first.rows + tuple(second.rows[i] for i in keep),
            first.event_ids + tuple(second.event_ids[i] for i in keep),
            first.files + second.files,
            first.skipped + second.skipped,
            (first.problems + second.problems)[:MAX_LISTED_PROBLEMS],
        )


def _contact_key(contact_id: str | None, address: str | None) -> str:
    if contact_id is not None:
        return contact_id
    assert address is not None  # validate_event requires one of them
    try:
        return "email:" + normalise_address(address)
    except ContactError as error:
        raise RowError(str(error)) from None


def read_event_log(folder: Path) -> EventLog:
    """Every valid event of the folder's event files. Raises DatasetError for a file that
    cannot be read, a file whose rows are all invalid, or a folder without events."""
    rows: list[Row] = []
    ids: list[str] = []
    seen: set[str] = set()
    problems: list[str] = []
    skipped = 0
    files = data_files(folder, "events")
    for path in files:
        tabular = not is_json_lines(path)
        good = 0
        first_problem: str | None = None
        try:
            for line, raw in read_rows(path, "csv" if tabular else "jsonl"):
                try:
                    if isinstance(raw, str):
                        raise RowError(raw)
                    event = validate_event(raw, tabular)
                    key = _contact_key(event.contact_id, event.address)
                except RowError as error:
                    skipped += 1
                    problem = f"{path} line {line}: {error}"
                    first_problem = first_problem or problem
                    if len(problems) < MAX_LISTED_PROBLEMS:
                        problems.append(problem)
                    continue
                good += 1
                if event.event_id in seen:
                    continue
                seen.add(event.event_id)
                ids.append(event.event_id)
                rows.append((key, event.type, event.occurred_at, event.value))
        except IngestError as error:
            raise DatasetError(str(error)) from None
        if good == 0 and first_problem is not None:
            raise DatasetError(f"no valid event in {path.name}; the first problem: {first_problem}")
    if not rows:
        raise DatasetError(f"{folder}: no events in {', '.join(p.name for p in files)}")
    return EventLog(tuple(rows), tuple(ids), tuple(p.name for p in files), skipped, tuple(problems))


@dataclass(frozen=True)
class EngagementData:
    """An event log as the feature module's :class:`EventTable` (``contact`` = index into
    ``contacts``) and, per contact, the time of its first unsubscribe or complaint (int64 max
    when none)."""

    events: EventTable
    withdrawn_at: np.ndarray
    contacts: tuple[str, ...]


def engagement_data(log: EventLog) -> EngagementData:
    """The feature-module view of ``log``, mapped as ``engage score`` maps stored events."""
    # imported here: scoring imports the propensity module, which imports this one
    from postwise.engage.scoring import events_from_rows

    contacts = tuple(sorted({r[0] for r in log.rows}))
    events = events_from_rows(log.rows, contacts)
    index = {c: i for i, c in enumerate(contacts)}
    withdrawn = np.full(len(contacts), np.iinfo(np.int64).max, dtype=np.int64)
    for key, kind, moment, _value in log.rows:
        if kind in WITHDRAWING_TYPES:
            i = index[key]
            withdrawn[i] = min(int(withdrawn[i]), int(moment.timestamp()))
    return EngagementData(events, withdrawn, contacts)


def engagement_snapshot(
    data: EngagementData, target: Target, cutoff: int, label_end: int
) -> Design:
    """Contacts sent a message before ``cutoff`` and not withdrawn before it, their features
    as of it (engagement included), and whether they have an event of the target's type in
    ``[cutoff, label_end)``."""
    events = data.events
    table = features_as_of(events, cutoff, engagement=True)
    sent = events.contact[(events.kind == SENT) & (events.time < cutoff)]
    keep = np.isin(table.contacts, sent) & (data.withdrawn_at[table.contacts] >= cutoff)
    return snapshot(table, keep, events, _LABEL_KINDS[target], cutoff, label_end)


def training_cutoffs(first_time: int, last_cutoff: int) -> list[int]:
    """Cut-offs every ``STEP_DAYS`` back from ``last_cutoff`` (latest first) while at least
    ``MIN_HISTORY_DAYS`` of history precede them, at most ``MAX_SNAPSHOTS``."""
    out: list[int] = []
    cutoff = last_cutoff
    while cutoff - first_time >= MIN_HISTORY_DAYS * DAY and len(out) < MAX_SNAPSHOTS:
        out.append(cutoff)
        cutoff -= STEP_DAYS * DAY
    return out


def event_training(
    data: EngagementData, history_end: int, target: Target, window_days: int
) -> list[Design]:
    """Training snapshots (latest first) whose label windows end by ``history_end``. Raises
    CorpusError when the history gives fewer than two (one to fit, one to choose on)."""
    first = int(data.events.time.min())
    cutoffs = training_cutoffs(first, history_end - window_days * DAY)
    if len(cutoffs) < 2:
        span = (history_end - first) / DAY
        raise CorpusError(
            f"the event log covers {span:.0f} days before the scored period; "
            f"{MIN_HISTORY_DAYS + window_days + STEP_DAYS} are needed for two training snapshots "
            f"({MIN_HISTORY_DAYS} days of history, {window_days}-day label windows, cut-offs "
            f"every {STEP_DAYS} days)"
        )
    return [engagement_snapshot(data, target, c, c + window_days * DAY) for c in cutoffs]


def window_days_of(target: Target, window_days: int | None) -> int:
    """The label window of ``target`` on an event log: ``window_days`` if given (1 to
    ``MAX_WINDOW_DAYS``), else the target's default. Raises CorpusError otherwise."""
    if window_days is None:
        return DEFAULT_WINDOW_DAYS[target]
    if not 1 <= window_days <= MAX_WINDOW_DAYS:
        raise CorpusError(f"--window-days {window_days}: expected 1 to {MAX_WINDOW_DAYS} days")
    return window_days


def skipped_report(log: EventLog) -> dict[str, Any]:
    """``skipped_rows`` and the first problems (``skipped_examples``) of a log, for reports."""
    return {"skipped_rows": log.skipped, "skipped_examples": list(log.problems)}
