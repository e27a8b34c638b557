"""Send-time optimisation: a per-contact distribution over the 168 hours of the week.

Each contact's next activity is modelled as a draw from a categorical distribution over the
hour-of-week slots (Monday 00:00-00:59 = 0, Sunday 23:00-23:59 = 167) **in the contact's local
time**. The distribution is the posterior mean of a three-level Dirichlet-multinomial:

- global profile ``g``: every purchase before the cut-off (weighted by recency with
  ``global_half_life_days`` when finite: the crowd's hours drift with the season), plus
  ``global_floor`` pseudo-counts per slot (so no slot has probability zero);
- cohort profile ``q`` (cohort = country; its purchases weighted alike), shrunk toward ``g``:
  ``q = (C + cohort_strength * g) / (N + cohort_strength)``;
- optionally (``factorised``) a contact-specific prior: the contact's weekday and hour-of-day
  marginals, each shrunk toward ``q``'s (``day_strength``, ``hour_strength``), multiplied and
  given ``q``'s weekday x hour interaction — a customer who always buys at 10h is expected at
  10h on any weekday, before enough history pins the weekday down;
- contact ``p = (K n + prior_strength * prior) / (w + prior_strength)``, where ``n`` are the
  contact's (optionally recency-weighted, half-life ``half_life_days``) counts, ``w`` their
  total and ``K`` a kernel moving ``hour_spread`` of each event to the neighbouring hours
  (circularly) and ``day_spread`` to the same hour of the six other days, in proportion to
  ``g`` (no mass leaks into hours when nobody buys, e.g. Saturdays in the retail log).

A contact without history gets ``q`` (its cohort, else global); one with many events gets its
own smoothed profile. The concentrations and spreads are chosen by held-out log-likelihood on
training data (:mod:`postwise.engage.sendtime_evaluation`).

**Next activity.** A profile says *where in the week* a contact is active, not *when next*: a
customer who buys twice a week is likely to be back in the first days after any moment, one who
buys twice a year anywhere in the coming months. With ``rate_multiplier > 0`` the decision is
taken on the distribution of the slot of the contact's **first** activity after the decision
moment (:func:`next_activity`): activity is a Poisson process whose intensity in each future
hour is ``rate_multiplier x rate x profile(slot)`` (``rate``: the contact's invoices per week,
``(n + 1) / (weeks since its first + 4)``), the first-event density is folded back onto the 168
slots over ``horizon_days`` and the best window taken as before. The multiplier (0 = off) is
chosen by hit rate with the decision profile.

The send time is decided on a separate profile, tuned for hits rather than likelihood: the
contact's own counts, recency-weighted with ``decision_half_life_days`` and not smoothed, plus
``decision_strength`` pseudo-counts of ``p`` (``None``: ``p`` alone). ``best_hour`` picks the
centre of its 3-hour window of maximum mass (what maximises the chance of hitting within one
hour), and for a contact without history samples a profile from ``Dirichlet(prior_strength * q)``
(a Thompson draw, seeded per contact) so that new contacts explore the plausible hours.

Times: the retail log is in the shop's local time (``SHOP_ZONE``, Europe/London, naive wall-clock
seconds). Each contact's events are converted to the zone of its country (``COUNTRY_ZONES``,
unknown countries keep the shop's zone) before counting; a chosen local hour-of-week is turned
into a UTC send time by :func:`next_send_time`.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np

SLOTS = 168
HOUR = 3600
DAY = 86_400
SHOP_ZONE = "Europe/London"
_EPOCH = datetime(1970, 1, 1)

# Zones of the countries of the UCI Online Retail log (one zone per country: its capital's).
COUNTRY_ZONES: dict[str, str] = {
    "United Kingdom": "Europe/London",
    "EIRE": "Europe/Dublin",
    "Channel Islands": "Europe/Jersey",
    "Germany": "Europe/Berlin",
    "France": "Europe/Paris",
    "Spain": "Europe/Madrid",
    "Netherlands": "Europe/Amsterdam",
    "Belgium": "Europe/Brussels",
    "Switzerland": "Europe/Zurich",
    "Portugal": "Europe/Lisbon",
    "Norway": "Europe/Oslo",
    "Finland": "Europe/Helsinki",
    "Italy": "Europe/Rome",
    "Cyprus": "Asia/Nicosia",
    "Sweden": "Europe/Stockholm",
    "Austria": "Europe/Vienna",
    "Poland": "Europe/Warsaw",
    "Denmark": "Europe/Copenhagen",
    "Iceland": "Atlantic/Reykjavik",
    "Greece": "Europe/Athens",
    "Malta": "Europe/Malta",
    "Lithuania": "Europe/Vilnius",
    "Czech Republic": "Europe/Prague",
    "Israel": "Asia/Jerusalem",
    "Lebanon": "Asia/Beirut",
    "United Arab Emirates": "Asia/Dubai",
    "Bahrain": "Asia/Bahrain",
    "Saudi Arabia": "Asia/Riyadh",
    "Japan": "Asia/Tokyo",
    "Singapore": "Asia/Singapore",
    "Australia": "Australia/Sydney",
    "Canada": "America/Toronto",
    "USA": "America/New_York",
    "Brazil": "America/Sao_Paulo",
    "RSA": "Africa/Johannesburg",
    "Hong Kong": "Asia/Hong_Kong",
}
UNKNOWN_COHORT = "unknown"


def hour_of_week(seconds: np.ndarray) -> np.ndarray:
    """Hour-of-week slot (Monday 00h = 0 … Sunday 23h = 167) of wall-clock seconds."""
    s = np.asarray(seconds, dtype=np.int64)
    weekday = (s // DAY + 3) % 7  # 1970-01-01 was a Thursday
    return np.asarray(weekday * 24 + (s // HOUR) % 24, dtype=np.int64)


def zone_of(country: str) -> str:
    """The IANA zone of a country of the retail log (the shop's zone when unknown)."""
    return COUNTRY_ZONES.get(country, SHOP_ZONE)


def zone_offsets(shop_seconds: np.ndarray, zone: str, shop_zone: str = SHOP_ZONE) -> np.ndarray:
    """Seconds to add to naive shop wall-clock times to get the wall-clock time in ``zone`` at
    those moments (daylight saving of both zones applied; computed once per distinct hour)."""
    stamps = np.asarray(shop_seconds, dtype=np.int64)
    if zone == shop_zone or stamps.size == 0:
        return np.zeros(stamps.shape, dtype=np.int64)
    hours, inverse = np.unique(stamps // HOUR, return_inverse=True)
    shop, local = ZoneInfo(shop_zone), ZoneInfo(zone)
    offsets = np.empty(hours.shape[0], dtype=np.int64)
    for i, h in enumerate(hours.tolist()):
        naive = _EPOCH + timedelta(hours=h)
        there = naive.replace(tzinfo=shop).astimezone(local).replace(tzinfo=None)
        offsets[i] = int((there - naive).total_seconds())
    return np.asarray(offsets[inverse.reshape(-1)], dtype=np.int64)


def next_send_time(local_slot: int, zone: str, after: datetime) -> datetime:
    """The first moment at or after ``after`` (timezone-aware) that falls at the start of the
    hour-of-week ``local_slot`` in ``zone``, as a UTC datetime. Raises ValueError for a naive
    ``after`` or a slot outside 0-167."""
    if after.tzinfo is None:
        raise ValueError("next_send_time needs a timezone-aware 'after'")
    if not 0 <= local_slot < SLOTS:
        raise ValueError(f"hour-of-week {local_slot} is outside 0-167")
    tz = ZoneInfo(zone)
    here = after.astimezone(tz)
    start = here.replace(minute=0, second=0, microsecond=0, tzinfo=None)
    start -= timedelta(days=start.weekday(), hours=start.hour)  # Monday 00:00 local
    for week in range(3):
        candidate = (start + timedelta(weeks=week, hours=local_slot)).replace(tzinfo=tz)
        # a wall-clock hour skipped by a DST change maps to the instant after the gap
        moment = candidate.astimezone(UTC)
        if moment >= after.astimezone(UTC):
            return moment
    raise AssertionError("unreachable: a slot recurs every week")


INFINITE_BY_DEFAULT = ("half_life_days", "decision_half_life_days", "global_half_life_days")


@dataclass(frozen=True)
class SendTimeParams:
    """Hyper-parameters of the hierarchy (see the module docstring)."""

    variant: str = "hierarchical_kernel"
    prior_strength: float = 5.0
    use_cohort: bool = True
    cohort_strength: float = 100.0
    hour_spread: float = 0.0
    day_spread: float = 0.0
    half_life_days: float = math.inf
    global_floor: float = 0.5
    factorised: bool = False
    day_strength: float = 5.0
    hour_strength: float = 5.0
    # The decision profile (tuned for hits): own counts with this recency half-life, plus
    # decision_strength pseudo-counts of the model profile; None = the model profile alone.
    decision_strength: float | None = None
    decision_half_life_days: float = math.inf
    # Next activity (see the module docstring): 0 = the stationary decision; > 0 scales the
    # contact's purchase rate when folding its first activity after the decision moment.
    rate_multiplier: float = 0.0
    horizon_days: float = 70.0
    global_half_life_days: float = math.inf

    def as_json(self) -> dict[str, Any]:
        out = asdict(self)
        for name in INFINITE_BY_DEFAULT:
            out[name] = None if math.isinf(out[name]) else out[name]
        return out

    @staticmethod
    def from_json(data: dict[str, Any]) -> SendTimeParams:
        values = dict(data)
        for name in INFINITE_BY_DEFAULT:
            if values.get(name) is None:
                values[name] = math.inf
        return SendTimeParams(**values)


def kernel(hour_spread: float, day_spread: float, weights: np.ndarray | None = None) -> np.ndarray:
    """168x168 row-stochastic smoothing matrix: keep ``1 - hour_spread - day_spread`` in place,
    spread ``hour_spread`` over the two neighbouring hours (wrapping around the week) and
    ``day_spread`` over the same hour of the six other weekdays, in proportion to ``weights``
    (the global profile: no mass leaks to hours when nobody buys; uniform when None)."""
    if hour_spread < 0 or day_spread < 0 or hour_spread + day_spread > 1:
        raise ValueError("spreads must be non-negative and sum to at most 1")
    w = np.ones(SLOTS) if weights is None else np.asarray(weights, dtype=np.float64)
    slots = np.arange(SLOTS)
    neighbours = np.zeros((SLOTS, SLOTS))
    neighbours[slots, (slots + 1) % SLOTS] = 1.0
    neighbours[slots, (slots - 1) % SLOTS] = 1.0
    hour = slots % 24
    same_hour = ((hour[:, None] == hour[None, :]) & (slots[:, None] != slots[None, :])) * 1.0
    k = np.eye(SLOTS) * (1.0 - hour_spread - day_spread)
    for share, pattern in ((hour_spread, neighbours), (day_spread, same_hour)):
        if share:
            weighted = pattern * w[None, :]
            total = weighted.sum(axis=1, keepdims=True)
            weighted = np.where(total > 0, weighted / np.where(total > 0, total, 1.0), pattern / 2)
            k += share * weighted / weighted.sum(axis=1, keepdims=True)
    return k


RATE_PSEUDO_EVENTS = 1.0
RATE_PSEUDO_WEEKS = 4.0


def next_activity(
    profiles: np.ndarray, rates: np.ndarray, start_slots: np.ndarray, hours: int
) -> np.ndarray:
    """Per row, the distribution over the 168 slots of the **first** activity in the ``hours``
    hours from ``start_slots`` (the slot of the decision moment), given activity as a Poisson
    process with intensity ``rates x profiles[slot]`` per hour-of-week slot (``rates``: events
    per week, ``profiles``: rows normalised here). A rate of 0 gives the profile itself; rows
    without any chance of activity in the horizon too.

    The intensity repeats every week, so the first-event density of week ``k`` is week 0's
    times the chance of a silent week (``exp(-rate)``) to the power ``k``: one week is computed
    and the weeks of the horizon summed as a geometric series (plus the part week at its end).
    """
    p = np.atleast_2d(np.asarray(profiles, dtype=np.float64))
    totals = p.sum(axis=1, keepdims=True)
    p = np.divide(p, totals, out=np.full_like(p, 1.0 / SLOTS), where=totals > 0)
    rate = np.asarray(rates, dtype=np.float64).reshape(-1, 1)
    start = np.asarray(start_slots, dtype=np.int64).reshape(-1, 1) % SLOTS
    weeks, rest = divmod(max(int(hours), 1), SLOTS)
    rows = np.arange(p.shape[0])[:, None]
    slots = (start + np.arange(SLOTS)[None, :]) % SLOTS  # the week ahead, in time order
    intensity = rate * p[rows, slots]
    first = np.exp(-(np.cumsum(intensity, axis=1) - intensity)) * -np.expm1(-intensity)
    weekly = intensity.sum(axis=1, keepdims=True)  # a silent week has chance exp(-weekly)
    lost = -np.expm1(-weekly)
    repeats = np.divide(
        -np.expm1(-weeks * weekly), lost, out=np.full_like(lost, float(weeks)), where=lost > 0
    )
    timed = first * repeats
    timed[:, :rest] += first[:, :rest] * np.exp(-weeks * weekly)
    out = np.empty_like(p)
    out[rows, slots] = timed
    mass = out.sum(axis=1, keepdims=True)
    return np.asarray(np.where(mass > 1e-12, out / np.maximum(mass, 1e-300), p), np.float64)


def best_window(profiles: np.ndarray) -> np.ndarray:
    """Per row, the slot whose 3-hour window (slot - 1, slot, slot + 1, circular) holds the most
    mass; ties go to the window whose centre holds most, then to the earliest slot."""
    p = np.atleast_2d(profiles)
    window = p + np.roll(p, 1, axis=1) + np.roll(p, -1, axis=1)
    # among equal windows, prefer the one centred on the most likely hour
    return np.asarray(np.argmax(window + 1e-6 * p, axis=1), dtype=np.int64)


@dataclass(frozen=True)
class SendSlot:
    """A chosen send time: hour-of-week in the contact's zone, and whether it was explored."""

    contact: int
    local_slot: int
    zone: str
    explored: bool

    def send_at(self, after: datetime) -> datetime:
        """The UTC moment of the next such hour at or after ``after``."""
        return next_send_time(self.local_slot, self.zone, after)


@dataclass(frozen=True)
class PurchaseHistory:
    """Purchases as parallel columns (shop wall-clock seconds) and each contact's country."""

    contact: np.ndarray  # int64
    time: np.ndarray  # int64
    country: dict[int, str] = field(default_factory=dict)

    def before(self, cutoff: int) -> PurchaseHistory:
        keep = self.time < cutoff
        return PurchaseHistory(self.contact[keep], self.time[keep], self.country)

    def local_times(self) -> np.ndarray:
        """Each purchase's wall-clock time in its contact's zone."""
        zones = np.array([zone_of(self.country.get(int(c), "")) for c in self.contact.tolist()])
        out = self.time.copy()
        for zone in np.unique(zones).tolist() if zones.size else []:
            rows = zones == zone
            out[rows] += zone_offsets(self.time[rows], str(zone))
        return out


@dataclass
class SendTimeModel:
    """Fitted profiles. ``counts`` has one row per contact of ``contacts`` (sorted), in local
    hour-of-week slots, recency-weighted as of ``cutoff``; ``decision_counts`` the same counts
    recency-weighted with ``decision_half_life_days`` (None: equal to ``counts``); ``rates``
    each contact's purchases per week as of ``cutoff`` (None: the pseudo-rate of an empty
    history for everyone)."""

    params: SendTimeParams
    cutoff: int
    global_profile: np.ndarray
    cohort_profiles: dict[str, np.ndarray]
    contacts: np.ndarray
    counts: np.ndarray
    cohort: dict[int, str]
    seed: int = 0
    decision_counts: np.ndarray | None = None
    rates: np.ndarray | None = None

    @staticmethod
    def fit(
        history: PurchaseHistory,
        cutoff: int,
        params: SendTimeParams,
        seed: int = 0,
        local: np.ndarray | None = None,
    ) -> SendTimeModel:
        """Fit on the purchases strictly before ``cutoff`` (later rows are ignored). ``local``
        may pass ``history.local_times()`` precomputed."""
        local_times = history.local_times() if local is None else local
        keep = history.time < cutoff
        contact, shop_time, slot = (
            history.contact[keep],
            history.time[keep],
            hour_of_week(local_times[keep]),
        )
        age_days = (cutoff - shop_time) / DAY
        crowd = (
            np.ones(slot.shape[0])
            if math.isinf(params.global_half_life_days)
            else np.power(0.5, age_days / params.global_half_life_days)
        )
        raw = np.bincount(slot, weights=crowd, minlength=SLOTS).astype(np.float64)
        global_profile = (raw + params.global_floor) / (raw.sum() + SLOTS * params.global_floor)
        contacts, row = np.unique(contact, return_inverse=True)
        row = row.reshape(-1)
        cohort = {int(c): history.country.get(int(c)) or UNKNOWN_COHORT for c in contacts}
        cohort_profiles: dict[str, np.ndarray] = {}
        if params.use_cohort and contacts.size:
            names = np.array([cohort[int(c)] for c in contacts])[row]
            for name in np.unique(names).tolist():
                member = names == name
                counts = np.bincount(slot[member], weights=crowd[member], minlength=SLOTS)
                cohort_profiles[str(name)] = (counts + params.cohort_strength * global_profile) / (
                    counts.sum() + params.cohort_strength
                )

        def weighted_counts(half_life: float) -> np.ndarray:
            weight = (
                np.ones(slot.shape[0])
                if math.isinf(half_life)
                else np.power(0.5, age_days / half_life)
            )
            return np.asarray(
                np.bincount(
                    row * SLOTS + slot, weights=weight, minlength=contacts.shape[0] * SLOTS
                ),
                dtype=np.float64,
            ).reshape(contacts.shape[0], SLOTS)

        counts = weighted_counts(params.half_life_days)
        events = np.bincount(row, minlength=contacts.shape[0]).astype(np.float64)
        first = np.full(contacts.shape[0], cutoff, dtype=np.int64)
        np.minimum.at(first, row, shop_time)
        rates = (events + RATE_PSEUDO_EVENTS) / ((cutoff - first) / (7 * DAY) + RATE_PSEUDO_WEEKS)
        decision_counts = (
            None
            if params.decision_half_life_days == params.half_life_days
            else weighted_counts(params.decision_half_life_days)
        )
        return SendTimeModel(
            params,
            cutoff,
            global_profile,
            cohort_profiles,
            contacts,
            counts,
            cohort,
            seed,
            decision_counts,
            rates,
        )

    def prior(self, contact: int, country: str | None = None) -> np.ndarray:
        """The profile a contact is shrunk toward: its cohort's, else the global one."""
        name = self.cohort.get(contact) or country or UNKNOWN_COHORT
        return self.cohort_profiles.get(name, self.global_profile)

    def _priors(self, ids: np.ndarray, extra: dict[int, str]) -> np.ndarray:
        """The rows of :meth:`prior` for many contacts (one table look-up per cohort)."""
        names = [self.cohort.get(c) or extra.get(c) or UNKNOWN_COHORT for c in ids.tolist()]
        table = sorted(set(names))
        index = {name: i for i, name in enumerate(table)}
        rows = np.vstack([self.cohort_profiles.get(n, self.global_profile) for n in table])
        return np.asarray(rows[[index[n] for n in names]], dtype=np.float64).reshape(-1, SLOTS)

    def _rows(self, table: np.ndarray, ids: np.ndarray) -> np.ndarray:
        """Rows of a per-contact table for ``ids`` (zeros for contacts without history)."""
        position = np.searchsorted(self.contacts, ids)
        position = np.minimum(position, max(self.contacts.shape[0] - 1, 0))
        known = (self.contacts.shape[0] > 0) & (self.contacts[position] == ids)
        out = np.zeros((ids.shape[0], SLOTS))
        out[known] = table[position[known]]
        return out

    def predict_proba(
        self, contacts: np.ndarray, countries: dict[int, str] | None = None
    ) -> np.ndarray:
        """Posterior-mean distributions (rows sum to 1) over local hour-of-week slots, one row
        per contact; ``countries`` gives the cohort of contacts unseen in training."""
        ids = np.asarray(contacts, dtype=np.int64)
        priors = self._priors(ids, countries or {})
        counts = self._rows(self.counts, ids)
        p = self.params
        if p.factorised:
            priors = self._factorised(counts, priors)
        if p.hour_spread or p.day_spread:
            counts = counts @ kernel(p.hour_spread, p.day_spread, self.global_profile)
        total = counts.sum(axis=1, keepdims=True)
        return np.asarray(
            (counts + p.prior_strength * priors) / (total + p.prior_strength), dtype=np.float64
        )

    def decision_profiles(
        self,
        contacts: np.ndarray,
        countries: dict[int, str] | None = None,
        model_profiles: np.ndarray | None = None,
    ) -> np.ndarray:
        """The (unnormalised) profiles send times are chosen from: each contact's own counts
        (recency half-life ``decision_half_life_days``, no smoothing) plus ``decision_strength``
        times its :meth:`predict_proba` row (passed as ``model_profiles`` when known); the model
        profile alone when ``decision_strength`` is None."""
        ids = np.asarray(contacts, dtype=np.int64)
        model = self.predict_proba(ids, countries) if model_profiles is None else model_profiles
        strength = self.params.decision_strength
        if strength is None:
            return model
        table = self.counts if self.decision_counts is None else self.decision_counts
        return np.asarray(self._rows(table, ids) + strength * model, dtype=np.float64)

    def contact_rates(self, contacts: np.ndarray) -> np.ndarray:
        """Purchases per week as of the cut-off (the pseudo-rate of an empty history for
        contacts without one)."""
        ids = np.asarray(contacts, dtype=np.int64)
        empty = RATE_PSEUDO_EVENTS / RATE_PSEUDO_WEEKS
        if self.rates is None:
            return np.full(ids.shape[0], empty)
        position = np.minimum(
            np.searchsorted(self.contacts, ids), max(self.contacts.shape[0] - 1, 0)
        )
        known = (self.contacts.shape[0] > 0) & (self.contacts[position] == ids)
        return np.where(known, self.rates[position] if self.rates.size else empty, empty)

    def next_profiles(
        self,
        contacts: np.ndarray,
        start_slots: np.ndarray,
        hours: int | None = None,
        decision: np.ndarray | None = None,
    ) -> np.ndarray:
        """What the send slot is chosen from when the decision moment is known: with
        ``rate_multiplier > 0`` the :func:`next_activity` fold of the decision profiles
        (``decision`` when already computed) from each contact's local ``start_slots`` over
        ``hours`` (default ``horizon_days``); else the decision profiles themselves."""
        ids = np.asarray(contacts, dtype=np.int64)
        profiles = self.decision_profiles(ids) if decision is None else decision
        multiplier = self.params.rate_multiplier
        if multiplier <= 0:
            return profiles
        span = round(self.params.horizon_days * 24) if hours is None else hours
        return next_activity(profiles, multiplier * self.contact_rates(ids), start_slots, span)

    def _factorised(self, counts: np.ndarray, priors: np.ndarray) -> np.ndarray:
        """Priors that keep the contact's own weekday and hour-of-day preferences: its weekday
        and hour-of-day marginals, each shrunk toward the prior's, multiplied together and by
        the prior's weekday x hour interaction (prior / product of its marginals)."""
        p = self.params
        n = counts.reshape(-1, 7, 24)
        q = priors.reshape(-1, 7, 24)
        total = n.sum(axis=(1, 2))[:, None]
        q_day, q_hour = q.sum(axis=2), q.sum(axis=1)
        day = (n.sum(axis=2) + p.day_strength * q_day) / (total + p.day_strength)
        hour = (n.sum(axis=1) + p.hour_strength * q_hour) / (total + p.hour_strength)
        independent = q_day[:, :, None] * q_hour[:, None, :]
        interaction = np.divide(q, independent, out=np.zeros_like(q), where=independent > 0)
        joint = (day[:, :, None] * hour[:, None, :] * interaction).reshape(-1, SLOTS)
        return np.asarray(joint / joint.sum(axis=1, keepdims=True), dtype=np.float64)

    def zone(self, contact: int, country: str | None = None) -> str:
        return zone_of(self.cohort.get(contact) or country or "")

    def best_hour(
        self,
        contact: int,
        country: str | None = None,
        explore: bool = True,
        after: datetime | None = None,
    ) -> SendSlot:
        """The local hour-of-week to send to ``contact``: the centre of the 3-hour window of
        maximum mass of its decision profile (:meth:`decision_profiles`), or, given the decision
        moment ``after`` (timezone-aware) and ``rate_multiplier > 0``, of the distribution of its
        first activity after that moment (:meth:`next_profiles`). A contact without
        history (``explore``) gets the centre of the best window of one profile drawn from
        ``Dirichlet(prior_strength * prior)``, seeded by the model's seed and the contact id, so
        repeated calls agree."""
        zone = self.zone(contact, country)
        position = int(np.searchsorted(self.contacts, contact))
        seen = position < self.contacts.shape[0] and int(self.contacts[position]) == contact
        if not seen and explore:
            digest = hashlib.sha256(f"sendtime:{self.seed}:{contact}".encode()).digest()
            rng = np.random.default_rng(int.from_bytes(digest[:8], "big"))
            concentration = np.maximum(
                self.params.prior_strength * self.prior(contact, country), 1e-6
            )
            draw = rng.dirichlet(concentration)
            return SendSlot(contact, int(best_window(draw)[0]), zone, True)
        ids = np.array([contact])
        profile = self.decision_profiles(ids, {contact: country or ""})
        if after is not None:
            if after.tzinfo is None:
                raise ValueError("best_hour needs a timezone-aware 'after'")
            here = after.astimezone(ZoneInfo(zone))
            start = np.array([here.weekday() * 24 + here.hour])
            profile = self.next_profiles(ids, start, decision=profile)
        return SendSlot(contact, int(best_window(profile)[0]), zone, False)
