"""Subject lines and preheaders: generated from a brief, checked by the guardrails, stored.

A :class:`CopyBrief` says what the mail is about (topic, key facts, tone, segment). A
:class:`CopyGenerator` turns it into :class:`Candidate` s: :class:`OfflineGenerator` composes
them from phrase patterns (deterministic for a seed, no network, no invented claims: only the
brief's words); :class:`OpenAICompatibleGenerator` asks any OpenAI-compatible
``/chat/completions`` endpoint for a JSON list. :func:`generator_from_settings` picks the model
backend when ``copy_llm_url`` is set, else the offline one.

:class:`CopyService` is what a campaign runner calls: ``generate(brief)`` runs every candidate
through :class:`~postwise.content.guardrails.Guardrails` and stores each one (table
``copy_candidates``) with its status and reasons, rejected ones included; ``usable(brief)``
returns the approved candidates of that brief; ``approve(id, who)`` is a person approving a
candidate that waits for approval.

    PostwiseError
    └── CopyError   a bad brief, an unreachable or failing model endpoint, an unusable reply,
                    or an approval that is not allowed (unknown id, rejected candidate)
"""

from __future__ import annotations

import hashlib
import json
import random
import re
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Literal, Protocol

import httpx
from sqlalchemy import select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from postwise.content.guardrails import STATUSES, Guardrails, GuardrailVerdict
from postwise.core.db import CopyCandidateRecord, utcnow
from postwise.core.errors import PostwiseError
from postwise.core.settings import Settings, get_settings

TONES = ("friendly", "neutral", "formal", "playful")
PERSONAL_TOKEN = '{{ first_name | default("there") }}'
MAX_CANDIDATES = 50
Backend = Literal["auto", "offline", "llm"]


class CopyError(PostwiseError):
    """A brief, a model endpoint, its reply, or an approval that cannot be used as asked."""


@dataclass(frozen=True)
class CopyBrief:
    """What the copy is for. ``facts`` are the only claims a generator may make; ``segment``
    names the audience (a sensitive one makes every candidate wait for a person); ``count`` is
    how many candidates to ask for.

    Raises CopyError for an empty topic, an unknown tone or a count outside 1..50."""

    topic: str
    facts: tuple[str, ...] = ()
    tone: str = "friendly"
    segment: str | None = None
    count: int = 5
    language: str = "en"

    def __post_init__(self) -> None:
        topic = " ".join(self.topic.split())
        if not topic:
            raise CopyError("brief: the topic is empty; say what the mail is about (--topic)")
        if self.tone not in TONES:
            raise CopyError(f"brief: unknown tone {self.tone!r}; known: {', '.join(TONES)}")
        if not 1 <= self.count <= MAX_CANDIDATES:
            raise CopyError(f"brief: count must be 1..{MAX_CANDIDATES}, not {self.count}")
        facts = tuple(
            " ".join(fact.split()).rstrip(".") for fact in self.facts if fact and fact.strip()
        )
        object.__setattr__(self, "topic", topic)
        object.__setattr__(self, "facts", facts)
        object.__setattr__(self, "segment", (self.segment or "").strip() or None)
        object.__setattr__(self, "language", self.language.strip().lower() or "en")

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "facts": list(self.facts)}

    @property
    def sha256(self) -> str:
        """The brief's identity: every field but ``count`` (asking for more candidates of the
        same brief adds to the same pool)."""
        identity = {k: v for k, v in self.as_dict().items() if k != "count"}
        return hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()


@dataclass(frozen=True)
class Candidate:
    """One subject line and preheader, and who wrote it (``offline`` or ``llm:<model>``)."""

    subject: str
    preheader: str
    source: str


class CopyGenerator(Protocol):
    """Writes candidates for a brief. ``name`` is recorded as each candidate's source."""

    name: str

    def generate(self, brief: CopyBrief, n: int) -> list[Candidate]:
        """Up to ``n`` distinct candidates; raises CopyError when none can be written."""
        ...


# ---------------------------------------------------------------- offline generator


def _capitalised(text: str) -> str:
    return text[:1].upper() + text[1:]


# Subject patterns per kind: {topic} as written, {Topic} capitalised, {fact} a key fact,
# {name} the personalisation token (after a greeting: its default reads "Hi there"). Kinds
# rotate so a short list still varies.
_SUBJECTS: dict[str, dict[str, tuple[str, ...]]] = {
    "benefit": {
        "friendly": ("{Topic}: {fact}", "{fact}", "Get more out of {topic}"),
        "neutral": ("{Topic}: {fact}", "{fact}", "{Topic}, in brief"),
        "formal": ("{Topic}: {fact}", "An update on {topic}", "{Topic}: what changes for you"),
        "playful": ("{fact}", "{Topic}: {fact}", "Good news about {topic}"),
    },
    "question": {
        "friendly": ("Have you seen {topic}?", "Ready for {topic}?", "Curious about {topic}?"),
        "neutral": ("What's new in {topic}?", "Have you seen {topic}?"),
        "formal": ("Have you reviewed {topic}?", "Is {topic} right for you?"),
        "playful": ("Guess what's new? {Topic}", "Ready for {topic}?"),
    },
    "urgency": {
        "friendly": ("This week: {topic}", "Now available: {topic}", "Don't miss {topic}"),
        "neutral": ("Now available: {topic}", "This week: {topic}"),
        "formal": ("Now available: {topic}", "Announcing {topic}"),
        "playful": ("It's here: {topic}", "Don't miss {topic}"),
    },
    "personal": {
        "friendly": ("Hi {name}, meet {topic}", "Hi {name}, a quick note about {topic}"),
        "neutral": ("Hello {name}, here is {topic}", "For you, {name}: {topic}"),
        "formal": ("Hello {name}, an update on {topic}",),
        "playful": ("Hey {name}, say hello to {topic}", "Hey {name}, you'll like {topic}"),
    },
}
_CLOSINGS: dict[str, tuple[str, ...]] = {
    "friendly": ("Here's what {topic} means for you.", "Take a look at {topic}."),
    "neutral": ("The details of {topic}, in one place.", "What {topic} changes."),
    "formal": ("Everything you need to know about {topic}.", "The details of {topic}."),
    "playful": ("Take {topic} for a spin.", "Here's the short version of {topic}."),
}


class OfflineGenerator:
    """Composes candidates from phrase patterns (benefit, question, light urgency, personal
    greeting) and the brief's own words: no network, nothing invented, and the same
    candidates for the same brief and ``seed``. Writes English only."""

    name = "offline"

    def __init__(self, seed: int = 0, max_subject_chars: int = 78, max_preheader_chars: int = 105):
        self.seed = seed
        self.max_subject_chars = max_subject_chars
        self.max_preheader_chars = max_preheader_chars

    def generate(self, brief: CopyBrief, n: int) -> list[Candidate]:
        """Up to ``n`` distinct candidates, kinds interleaved; fewer when the brief is too
        small for ``n`` different subjects. Raises CopyError for a language other than
        English."""
        if brief.language not in {"en", "en-gb", "en-us"}:
            raise CopyError(
                f"offline generator writes English only, not {brief.language!r}; "
                "use --backend llm with POSTWISE_COPY_LLM_URL set"
            )
        rng = random.Random(f"{self.seed}:{brief.sha256}")
        groups: list[list[Candidate]] = []
        for by_tone in _SUBJECTS.values():
            group = [c for c in self._expand(brief, by_tone[brief.tone]) if c is not None]
            rng.shuffle(group)
            if group:
                groups.append(group)
        rng.shuffle(groups)
        chosen: list[Candidate] = []
        seen: set[str] = set()
        while len(chosen) < n and any(groups):
            for group in groups:
                while group:
                    candidate = group.pop(0)
                    if candidate.subject.lower() not in seen:
                        seen.add(candidate.subject.lower())
                        chosen.append(candidate)
                        break
                if len(chosen) == n:
                    break
        return chosen

    def _expand(self, brief: CopyBrief, patterns: Sequence[str]) -> list[Candidate | None]:
        out: list[Candidate | None] = []
        for pattern in patterns:
            facts: Sequence[str | None] = brief.facts if "{fact}" in pattern else (None,)
            for fact in facts:
                subject = pattern.format(
                    topic=brief.topic,
                    Topic=_capitalised(brief.topic),
                    fact=_capitalised(fact or ""),
                    name=PERSONAL_TOKEN,
                )
                if len(subject) > self.max_subject_chars:
                    out.append(None)
                    continue
                rest = [f for f in brief.facts if f != fact]
                out.append(Candidate(subject, self._preheader(brief, rest), self.name))
        return out

    def _preheader(self, brief: CopyBrief, facts: Sequence[str]) -> str:
        sentences = [_capitalised(f) + "." for f in facts]
        text = ""
        for sentence in sentences:
            longer = f"{text} {sentence}".strip()
            if len(longer) > self.max_preheader_chars:
                break
            text = longer
        if text:
            return text
        for closing in _CLOSINGS[brief.tone]:
            line = closing.format(topic=brief.topic)
            if len(line) <= self.max_preheader_chars:
                return _capitalised(line)
        return ""


# ---------------------------------------------------------------- OpenAI-compatible generator

_FENCE_RE = re.compile(r"^```[a-zA-Z]*\s*|\s*```$")


def _instructions(brief: CopyBrief, n: int) -> str:
    return (
        "You write email subject lines and preheaders. Reply with only a JSON array of "
        f'{n} objects, each {{"subject": "...", "preheader": "..."}}, and no other text. '
        "Subjects at most 60 characters, preheaders at most 100. Use only the facts you are "
        "given: invent no discounts, deadlines, prices or claims. No words in capitals, at "
        "most one exclamation mark, no more than one emoji, no personal data. You may greet "
        f"the reader with the token {PERSONAL_TOKEN} and no other template syntax. "
        f"Write in language {brief.language!r}, in a {brief.tone} tone."
    )


def parse_candidates(
    content: str, source: str, n: int, origin: str | None = None
) -> list[Candidate]:
    """The candidates in a model's reply: a JSON array of ``{subject, preheader}`` objects,
    possibly in a code fence, after prose, or under one key of an object. Items without a
    subject are skipped. Raises CopyError (naming ``origin``, default ``source``) when no
    candidate can be read."""
    origin = origin or source
    text = _FENCE_RE.sub("", content.strip())
    parsed: Any = None
    for attempt in (text, text[text.find("[") : text.rfind("]") + 1]):
        try:
            parsed = json.loads(attempt)
            break
        except ValueError:
            continue
    if isinstance(parsed, dict):
        lists = [v for v in parsed.values() if isinstance(v, list)]
        parsed = lists[0] if len(lists) == 1 else None
    if not isinstance(parsed, list):
        excerpt = " ".join(content.split())[:120]
        raise CopyError(
            f"{origin}: the reply holds no JSON list of subject/preheader objects "
            f"(it starts: {excerpt!r})"
        )
    candidates: list[Candidate] = []
    seen: set[str] = set()
    for item in parsed:
        if not isinstance(item, dict):
            continue
        subject, preheader = item.get("subject"), item.get("preheader", "")
        if not isinstance(subject, str) or not subject.strip():
            continue
        preheader = preheader if isinstance(preheader, str) else ""
        if subject.strip().lower() in seen:
            continue
        seen.add(subject.strip().lower())
        candidates.append(Candidate(subject.strip(), preheader.strip(), source))
    if not candidates:
        raise CopyError(f"{origin}: the reply's JSON list holds no object with a subject")
    return candidates[:n]


class OpenAICompatibleGenerator:
    """Asks an OpenAI-compatible endpoint (``{base_url}/chat/completions``) for candidates.
    The API key travels as a Bearer token and appears in no message, log or repr."""

    def __init__(
        self,
        base_url: str,
        model: str,
        api_key: str | None = None,
        timeout: float = 20.0,
        temperature: float = 0.8,
    ) -> None:
        base = base_url.rstrip("/")
        self.url = base if base.endswith("/chat/completions") else base + "/chat/completions"
        self.model = model
        self.timeout = timeout
        self.temperature = temperature
        self.name = f"llm:{model}"
        self.__api_key = api_key

    def __repr__(self) -> str:
        return f"OpenAICompatibleGenerator(url={self.url!r}, model={self.model!r})"

    def generate(self, brief: CopyBrief, n: int) -> list[Candidate]:
        """Up to ``n`` candidates from one request. Raises CopyError (naming the URL and what
        to do) on a timeout, a connection failure, a non-2xx status, or a reply without a
        usable JSON list."""
        headers = {"Content-Type": "application/json"}
        if self.__api_key:
            headers["Authorization"] = f"Bearer {self.__api_key}"
        body = {
            "model": self.model,
            "temperature": self.temperature,
            "messages": [
                {"role": "system", "content": _instructions(brief, n)},
                {"role": "user", "content": json.dumps(brief.as_dict(), ensure_ascii=False)},
            ],
        }
        try:
            response = httpx.post(self.url, json=body, headers=headers, timeout=self.timeout)
        except httpx.TimeoutException:
            raise CopyError(
                f"{self.url}: no reply within {self.timeout:g} s (raise "
                "POSTWISE_COPY_LLM_TIMEOUT_SECONDS, or use --backend offline)"
            ) from None
        except httpx.HTTPError as error:
            raise CopyError(
                f"{self.url}: cannot reach the endpoint ({type(error).__name__}: {error}); "
                "check POSTWISE_COPY_LLM_URL, or use --backend offline"
            ) from None
        if not response.is_success:
            excerpt = " ".join(response.text.split())[:200]
            raise CopyError(
                f"{self.url}: HTTP {response.status_code} from the endpoint ({excerpt!r}); "
                "nothing was generated"
            )
        try:
            reply = response.json()
            content = reply["choices"][0]["message"]["content"]
        except (ValueError, KeyError, IndexError, TypeError):
            excerpt = " ".join(response.text.split())[:120]
            raise CopyError(
                f"{self.url}: the reply is not a chat completion (no "
                f"choices[0].message.content; it starts: {excerpt!r})"
            ) from None
        if not isinstance(content, str):
            raise CopyError(f"{self.url}: choices[0].message.content is not text")
        return parse_candidates(content, self.name, n, origin=f"{self.url} ({self.model})")


def generator_from_settings(
    settings: Settings | None = None, backend: Backend = "auto", seed: int = 0
) -> CopyGenerator:
    """The generator ``backend`` names: ``offline``; ``llm`` (the endpoint of
    ``copy_llm_url``); ``auto``: llm when ``copy_llm_url`` is set, else offline.

    Raises CopyError when ``llm`` is asked for and no URL is configured."""
    settings = settings or get_settings()
    if backend == "offline" or (backend == "auto" and not settings.copy_llm_url):
        return OfflineGenerator(seed=seed)
    if not settings.copy_llm_url:
        raise CopyError(
            "backend llm needs an endpoint: set POSTWISE_COPY_LLM_URL (e.g. "
            "http://127.0.0.1:8000/v1), or use --backend offline"
        )
    key = settings.copy_llm_api_key.get_secret_value() if settings.copy_llm_api_key else None
    return OpenAICompatibleGenerator(
        settings.copy_llm_url,
        settings.copy_llm_model,
        api_key=key,
        timeout=settings.copy_llm_timeout_seconds,
    )


# ---------------------------------------------------------------- storage


@dataclass(frozen=True)
class StoredCandidate:
    """A stored candidate with its guardrail verdict and, once a person approved it, who and
    when."""

    id: int
    brief_sha256: str
    brief: dict[str, Any]
    subject: str
    preheader: str
    source: str
    status: str
    reasons: list[str] = field(default_factory=list)
    spam_score: float | None = None
    policy_version: str = ""
    created_at: datetime | None = None
    approved_by: str | None = None
    approved_at: datetime | None = None

    @property
    def usable(self) -> bool:
        return self.status == "approved"

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        for key in ("created_at", "approved_at"):
            value = data[key]
            data[key] = value.isoformat() if value is not None else None
        return data


def _stored(record: CopyCandidateRecord) -> StoredCandidate:
    return StoredCandidate(
        id=record.id,
        brief_sha256=record.brief_sha256,
        brief=dict(record.brief),
        subject=record.subject,
        preheader=record.preheader,
        source=record.source,
        status=record.status,
        reasons=list(record.reasons),
        spam_score=record.spam_score,
        policy_version=record.policy_version,
        created_at=record.created_at,
        approved_by=record.approved_by,
        approved_at=record.approved_at,
    )


class CopyStore:
    """The ``copy_candidates`` table: every candidate with its verdict, rejected ones too."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def record(
        self, brief: CopyBrief, candidate: Candidate, verdict: GuardrailVerdict, policy_version: str
    ) -> StoredCandidate:
        """Store ``candidate`` with its verdict. The same subject and preheader of the same
        brief, judged under the same policy version, is stored once: the stored row (and any
        approval it has) is returned."""
        with Session(self.engine) as session, session.begin():
            existing = session.scalars(
                select(CopyCandidateRecord).where(
                    CopyCandidateRecord.brief_sha256 == brief.sha256,
                    CopyCandidateRecord.subject == candidate.subject,
                    CopyCandidateRecord.preheader == candidate.preheader,
                    CopyCandidateRecord.policy_version == policy_version,
                )
            ).first()
            if existing is not None:
                return _stored(existing)
            record = CopyCandidateRecord(
                brief_sha256=brief.sha256,
                brief=brief.as_dict(),
                subject=candidate.subject,
                preheader=candidate.preheader,
                source=candidate.source[:128],
                status=verdict.status,
                reasons=list(verdict.reasons),
                spam_score=verdict.spam_score,
                policy_version=policy_version,
                created_at=utcnow(),
            )
            session.add(record)
            session.flush()
            return _stored(record)

    def get(self, candidate_id: int) -> StoredCandidate:
        """The stored candidate ``candidate_id``; CopyError when there is none."""
        with Session(self.engine) as session:
            record = session.get(CopyCandidateRecord, candidate_id)
            if record is None:
                raise CopyError(f"no copy candidate {candidate_id} (see `postwise copy list`)")
            return _stored(record)

    def approve(self, candidate_id: int, who: str) -> StoredCandidate:
        """A person (``who``) approves candidate ``candidate_id``, which waits for approval.

        Raises CopyError for an unknown id, an empty name, a rejected candidate (rejected copy
        is never usable: generate again), or one already approved."""
        who = who.strip()
        if not who:
            raise CopyError("approve: say who approves (--by NAME)")
        with Session(self.engine) as session, session.begin():
            record = session.get(CopyCandidateRecord, candidate_id, with_for_update=True)
            if record is None:
                raise CopyError(f"no copy candidate {candidate_id} (see `postwise copy list`)")
            if record.status == "rejected":
                raise CopyError(
                    f"copy candidate {candidate_id} was rejected ({'; '.join(record.reasons)}); "
                    "rejected copy cannot be approved: generate new candidates"
                )
            if record.status == "approved":
                by = f" by {record.approved_by}" if record.approved_by else " by the guardrails"
                raise CopyError(f"copy candidate {candidate_id} is already approved{by}")
            record.status = "approved"
            record.approved_by = who[:128]
            record.approved_at = utcnow()
            session.flush()
            return _stored(record)

    def usable(self, brief: CopyBrief) -> list[StoredCandidate]:
        """The approved candidates of ``brief`` (of any count), oldest first."""
        return self._select(brief_sha256=brief.sha256, status="approved")

    def recent(self, status: str | None = None, limit: int = 100) -> list[StoredCandidate]:
        """The newest ``limit`` candidates, of ``status`` when given (CopyError when it is
        not one of approved, rejected, needs_approval), newest first."""
        if status is not None and status not in STATUSES:
            raise CopyError(f"unknown status {status!r}; known: {', '.join(STATUSES)}")
        return self._select(status=status, newest_first=True, limit=limit)

    def _select(
        self,
        brief_sha256: str | None = None,
        status: str | None = None,
        newest_first: bool = False,
        limit: int | None = None,
    ) -> list[StoredCandidate]:
        query = select(CopyCandidateRecord)
        if brief_sha256 is not None:
            query = query.where(CopyCandidateRecord.brief_sha256 == brief_sha256)
        if status is not None:
            query = query.where(CopyCandidateRecord.status == status)
        order = CopyCandidateRecord.id.desc() if newest_first else CopyCandidateRecord.id
        query = query.order_by(order)
        if limit is not None:
            query = query.limit(limit)
        with Session(self.engine) as session:
            return [_stored(record) for record in session.scalars(query)]


# ---------------------------------------------------------------- the service


class CopyService:
    """Generate, check and store copy: what a campaign runner calls."""

    def __init__(self, generator: CopyGenerator, guardrails: Guardrails, store: CopyStore):
        self.generator = generator
        self.guardrails = guardrails
        self.store = store

    @classmethod
    def from_settings(
        cls,
        backend: Backend = "auto",
        policy_path: Path | None = None,
        seed: int = 0,
        settings: Settings | None = None,
    ) -> CopyService:
        """The configured generator (see :func:`generator_from_settings`), guardrails of the
        copy policy (``policy_path``, else the ``copy_policy_path`` setting, layered over the
        shipped one) and the configured inbound scanner,
        and the store in the configured database. Raises CopyError, PolicyError or ModelError
        when one of them cannot be built."""
        from postwise.core.db import open_database

        settings = settings or get_settings()
        generator = generator_from_settings(settings, backend, seed)
        guardrails = Guardrails.from_settings(policy_path, settings)
        return cls(generator, guardrails, CopyStore(open_database(settings.resolved_database_url)))

    def generate(self, brief: CopyBrief, n: int | None = None) -> list[StoredCandidate]:
        """Ask the generator for ``n`` (default ``brief.count``) candidates, check each and
        store each with its verdict; returns them as stored. Raises CopyError (and stores
        nothing) when the generator fails."""
        candidates = self.generator.generate(brief, n or brief.count)
        policy_version = self.guardrails.policy.version
        return [
            self.store.record(brief, c, self.guardrails.check(c, brief), policy_version)
            for c in candidates
        ]

    def usable(self, brief: CopyBrief) -> list[StoredCandidate]:
        """The approved candidates of ``brief``: the subject variants a campaign may send."""
        return self.store.usable(brief)

    def approve(self, candidate_id: int, who: str) -> StoredCandidate:
        """See :meth:`CopyStore.approve`."""
        return self.store.approve(candidate_id, who)
