"""A seeded synthetic engagement log, in the files ``postwise engage import events`` reads.

No public data set has e-mail opens and clicks, so the open and click propensity models are
tested and benchmarked on this generator. What it plants:

- each contact has a latent open propensity (a logit drawn once, then drifting a little every
  week, so recent behaviour says more than old behaviour) and a click propensity correlated
  with it;
- one campaign a week (Tuesday 09:00 in the contact's time zone; zones from UTC-8 to UTC+10),
  a ``sent`` and, unless it bounced, a ``delivered`` event;
- the chance to open a send rises with recent engagement: a habit score that gains 1 per opened
  send and decays by ``HABIT_DECAY`` a week; opens follow the send by hours (skewed, a few days
  at most), some contacts open twice; a click follows some opens within minutes;
- a purchase follows some clicks; contacts unsubscribe (more often when they stopped opening)
  and then receive nothing; a few complain;
- some contacts join later than the first week.

Times are written in the contact's local time with its UTC offset (CSV) or as Unix seconds
(JSON lines), and a few rows spell the address in upper case, so the readers' time and address
normalisation is exercised too. Everything depends on the seed alone.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import math
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import numpy as np

START = datetime(2025, 1, 6, tzinfo=UTC)  # a Monday
HABIT_DECAY = 0.6
ZONES_HOURS = (-8.0, -5.0, -3.0, 0.0, 1.0, 2.0, 5.5, 8.0, 9.0, 10.0)
ZONE_WEIGHTS = (0.12, 0.18, 0.05, 0.2, 0.2, 0.08, 0.07, 0.04, 0.03, 0.03)
FIELDS = ("event_id", "type", "occurred_at", "email", "value", "properties")


def _sigmoid(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x))


def address(contact: int) -> str:
    """The address of synthetic contact ``contact``."""
    return f"reader{contact:05d}@example.test"


def engagement_log(
    contacts: int = 600, weeks: int = 16, seed: int = 0, start: datetime = START
) -> list[dict[str, Any]]:
    """The events of ``contacts`` contacts over ``weeks`` weekly campaigns, sorted by time:
    dicts with ``event_id``, ``type``, ``occurred_at`` (an aware datetime), ``email``,
    ``value`` (None but for purchases) and ``properties`` (campaign and zone)."""
    rng = np.random.default_rng(seed)
    events: list[dict[str, Any]] = []
    zone_index = rng.choice(len(ZONES_HOURS), size=contacts, p=ZONE_WEIGHTS)
    open_logit = rng.normal(-1.3, 1.4, contacts)
    click_logit = rng.normal(-1.0, 0.7, contacts) + 0.3 * open_logit
    joined = np.where(rng.random(contacts) < 0.75, 0, rng.integers(1, max(weeks - 3, 2), contacts))
    for contact in range(contacts):
        zone = timezone(timedelta(hours=float(ZONES_HOURS[zone_index[contact]])))
        mail = address(contact)
        habit = 1.0 if joined[contact] > 0 else float(rng.exponential(0.7))  # newcomers are keen
        logit = float(open_logit[contact])
        quiet_weeks = 0
        for week in range(int(joined[contact]), weeks):
            logit += float(rng.normal(0.0, 0.2))
            local = (start + timedelta(weeks=week, days=1)).replace(tzinfo=zone)
            sent_at = local.replace(hour=9) + timedelta(minutes=int(rng.integers(0, 30)))
            campaign = f"weekly-{week:03d}"
            props = {"campaign": campaign, "zone": str(ZONES_HOURS[zone_index[contact]])}
            # (type, time, id suffix, value) of this send's events
            batch: list[tuple[str, datetime, str, float | None]] = [("sent", sent_at, "", None)]
            stop = False
            if rng.random() >= 0.02:  # else bounced: nothing more for this send
                delivered = sent_at + timedelta(seconds=int(rng.integers(2, 120)))
                batch.append(("delivered", delivered, "", None))
                opened = rng.random() < _sigmoid(logit + 1.1 * habit - 0.6)
                if opened:
                    first = sent_at + timedelta(hours=float(rng.gamma(0.8, 14.0)))
                    batch.append(("open", first, "", None))
                    if rng.random() < 0.25:
                        again = first + timedelta(hours=float(rng.gamma(1.0, 20.0)))
                        batch.append(("open", again, "-2", None))
                    if rng.random() < _sigmoid(float(click_logit[contact]) + 0.4 * habit):
                        clicked = first + timedelta(minutes=float(rng.gamma(1.5, 3.0)))
                        batch.append(("click", clicked, "", None))
                        if rng.random() < 0.1:
                            spend = round(float(rng.lognormal(3.4, 0.6)), 2)
                            bought = clicked + timedelta(hours=float(rng.gamma(1.0, 2.0)))
                            batch.append(("purchase", bought, "", spend))
                habit = HABIT_DECAY * habit + (1.0 if opened else 0.0)
                quiet_weeks = 0 if opened else quiet_weeks + 1
                if rng.random() < 0.004:
                    when = sent_at + timedelta(hours=float(rng.gamma(1.0, 5.0)))
                    batch.append(("complaint", when, "", None))
                    stop = True
                elif rng.random() < 0.005 + 0.006 * min(quiet_weeks, 6):
                    when = sent_at + timedelta(hours=float(rng.gamma(1.0, 8.0)))
                    batch.append(("unsubscribe", when, "", None))
                    stop = True
            for kind, when, suffix, value in batch:
                events.append(
                    {
                        "event_id": f"{kind[:2]}-{contact}-{week}{suffix}",
                        "type": kind,
                        "occurred_at": when,
                        "email": mail.upper() if rng.random() < 0.02 else mail,
                        "value": value,
                        "properties": props,
                    }
                )
            if stop:
                break
    events.sort(key=lambda e: (e["occurred_at"], e["event_id"]))
    return events


def split_at(
    events: list[dict[str, Any]], moment: datetime
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The events before ``moment`` and those at or after it."""
    return (
        [e for e in events if e["occurred_at"] < moment],
        [e for e in events if e["occurred_at"] >= moment],
    )


def _csv_text(events: list[dict[str, Any]]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(FIELDS)
    for e in events:
        writer.writerow(
            [
                e["event_id"],
                e["type"],
                e["occurred_at"].isoformat(timespec="seconds"),
                e["email"],
                "" if e["value"] is None else e["value"],
                json.dumps(e["properties"], sort_keys=True),
            ]
        )
    return out.getvalue()


def _jsonl_text(events: list[dict[str, Any]]) -> str:
    lines = []
    for e in events:
        body = {**e, "occurred_at": int(e["occurred_at"].timestamp())}
        if body["value"] is None:
            del body["value"]
        lines.append(json.dumps(body, sort_keys=True))
    return "".join(line + "\n" for line in lines)


def write_event_files(
    folder: Path, events: list[dict[str, Any]], names: tuple[str, ...] = ("a.csv", "b.jsonl.gz")
) -> list[Path]:
    """Write ``events`` as consecutive chunks, one per name; the name's suffix chooses CSV or
    JSON lines and gzip. Returns the paths written."""
    folder.mkdir(parents=True, exist_ok=True)
    size = -(-len(events) // len(names)) if events else 0
    paths = []
    for i, name in enumerate(names):
        chunk = events[i * size : (i + 1) * size]
        text = _jsonl_text(chunk) if ".jsonl" in name else _csv_text(chunk)
        path = folder / name
        data = text.encode()
        path.write_bytes(gzip.compress(data, mtime=0) if name.endswith(".gz") else data)
        paths.append(path)
    return paths
