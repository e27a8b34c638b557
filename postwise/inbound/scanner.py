"""The inbound pipeline: bytes -> ParsedMessage -> checks (symbols) -> score -> Verdict."""

from __future__ import annotations

from pathlib import Path

from postwise.core.errors import MessageTooLarge
from postwise.core.settings import Settings, get_settings
from postwise.core.types import Symbol, Verdict
from postwise.inbound.checks.attachments import AttachmentCheck
from postwise.inbound.checks.base import Check, Envelope, ScanContext
from postwise.inbound.checks.content import ContentCheck
from postwise.inbound.checks.headers import HeaderAnomalyCheck
from postwise.inbound.checks.mime import MimeStructureCheck
from postwise.inbound.checks.urls import UrlCheck
from postwise.inbound.classifier import ClassifierCheck, InboundModel
from postwise.inbound.policy import Policy, load_policy
from postwise.inbound.scoring import choose_action, choose_class, score_symbols, total_score
from postwise.mail.parse import ParseLimits, parse_message

_NO_MODEL = {"ham": 1.0, "spam": 0.0, "phish": 0.0}


class Scanner:
    """Scans raw messages. Build once (it loads the model and policy), call :meth:`scan` many
    times; it holds no per-message state, so threads may share one."""

    def __init__(
        self,
        policy: Policy,
        model: InboundModel | None,
        limits: ParseLimits | None = None,
        max_message_bytes: int = 40 * 1024 * 1024,
    ) -> None:
        self.policy = policy
        self.model = model
        self.limits = limits or ParseLimits()
        self.max_message_bytes = max_message_bytes
        self.rule_checks: list[Check] = [
            MimeStructureCheck(),
            HeaderAnomalyCheck(policy),
            UrlCheck(policy),
            AttachmentCheck(policy),
            ContentCheck(),
        ]
        self.classifier = ClassifierCheck(model) if model is not None else None

    @classmethod
    def from_settings(
        cls, settings: Settings | None = None, model_path: Path | None = None
    ) -> Scanner:
        """A scanner with the configured policy and model (the shipped ones by default).

        Raises PolicyError or ModelError when either cannot be loaded."""
        settings = settings or get_settings()
        policy = load_policy(settings.policy_path)
        model = InboundModel.load(model_path or settings.resolved_model_path)
        limits = ParseLimits(
            max_depth=settings.max_mime_depth,
            max_parts=settings.max_mime_parts,
            max_text_chars=settings.max_text_chars,
        )
        return cls(policy, model, limits, settings.max_message_bytes)

    @property
    def model_version(self) -> str:
        return self.model.version if self.model is not None else "none"

    def scan(
        self, raw: bytes, message_id: str | None = None, envelope: Envelope | None = None
    ) -> Verdict:
        """Judge one message. Raises MessageTooLarge over the size limit; any other input,
        however malformed, gets a verdict (with MIME_* symbols saying what was wrong)."""
        if len(raw) > self.max_message_bytes:
            raise MessageTooLarge(len(raw), self.max_message_bytes)
        message = parse_message(raw, self.limits)
        context = ScanContext(envelope=envelope or Envelope())
        symbols: list[Symbol] = []
        for check in self.rule_checks:
            symbols.extend(check.run(message, context))
        if self.classifier is not None:
            symbols.extend(self.classifier.run_with(message, context, symbols))
        probabilities = context.probabilities or dict(_NO_MODEL)
        scored = score_symbols(symbols, self.policy)
        score = total_score(scored)
        action = choose_action(score, self.policy)
        return Verdict(
            id=message_id or (message.message_id.strip("<>") or message.sha256[:16]),
            action=action,
            score=score,
            message_class=choose_class(action, scored, probabilities),
            probabilities=probabilities,
            symbols=scored,
            message_sha256=message.sha256,
            model_version=self.model_version,
            policy_version=self.policy.version,
        )
