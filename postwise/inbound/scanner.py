"""The inbound pipeline: bytes -> ParsedMessage -> checks (symbols) -> score -> Verdict."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from postwise.auth.dns import Resolver
from postwise.core.errors import MessageTooLarge, ModelError
from postwise.core.settings import Settings, get_settings
from postwise.core.types import CLASSES, Symbol, Verdict
from postwise.inbound.checks.attachments import AttachmentCheck
from postwise.inbound.checks.auth import AuthenticationCheck
from postwise.inbound.checks.base import Check, Envelope, ScanContext
from postwise.inbound.checks.content import ContentCheck
from postwise.inbound.checks.headers import HeaderAnomalyCheck
from postwise.inbound.checks.mime import MimeStructureCheck
from postwise.inbound.checks.urls import UrlCheck
from postwise.inbound.classifier import NON_MODEL_SYMBOLS, InboundModel, model_symbol
from postwise.inbound.features import message_tokens
from postwise.inbound.learning import LearnResult, OnlineModel, base_idf
from postwise.inbound.policy import Policy, load_policy
from postwise.inbound.scoring import choose_action, choose_class, score_symbols, total_score
from postwise.mail.message import ParsedMessage
from postwise.mail.parse import ParseLimits, parse_message

_NO_MODEL = {"ham": 1.0, "spam": 0.0, "phish": 0.0}


class Scanner:
    """Scans raw messages. Build once (it loads the model and policy), call :meth:`scan` many
    times; it holds no per-message state, so threads may share one.

    ``online`` is the correction learned from this deployment's feedback
    (:mod:`postwise.inbound.learning`): when given, the ML symbol and the verdict's
    probabilities come from the shipped model combined with it, and :meth:`learn` feeds it.

    ``authentication`` (SPF, DKIM, ARC, DMARC) runs for messages scanned with an envelope that
    names the client; the verdict then carries the ``Authentication-Results`` value in
    ``extra["authentication_results"]``. Without it no DNS is looked up."""

    def __init__(
        self,
        policy: Policy,
        model: InboundModel | None,
        limits: ParseLimits | None = None,
        max_message_bytes: int = 40 * 1024 * 1024,
        online: OnlineModel | None = None,
        authentication: AuthenticationCheck | None = None,
    ) -> None:
        self.policy = policy
        self.model = model
        self.limits = limits or ParseLimits()
        self.max_message_bytes = max_message_bytes
        self.online = online
        self.rule_checks: list[Check] = [
            MimeStructureCheck(),
            HeaderAnomalyCheck(policy),
            UrlCheck(policy),
            AttachmentCheck(policy),
            ContentCheck(),
        ]
        self.authentication = authentication
        if authentication is not None:
            self.rule_checks.append(authentication)

    @classmethod
    def from_settings(
        cls, settings: Settings | None = None, model_path: Path | None = None
    ) -> Scanner:
        """A scanner with the configured policy and model (the shipped ones by default), the
        online model at ``resolved_online_model_path`` when ``online_learning`` is on (an
        absent file is an empty model), and authentication through the resolver of the
        ``dns_servers`` setting (the system's by default), reported as ``smtp_hostname``.

        Raises PolicyError or ModelError when any of them cannot be loaded."""
        settings = settings or get_settings()
        policy = load_policy(settings.policy_path)
        model = InboundModel.load(model_path or settings.resolved_model_path)
        limits = ParseLimits(
            max_depth=settings.max_mime_depth,
            max_parts=settings.max_mime_parts,
            max_text_chars=settings.max_text_chars,
        )
        online = (
            OnlineModel.open(settings.resolved_online_model_path, idf=base_idf(model))
            if settings.online_learning
            else None
        )
        authentication = AuthenticationCheck(
            Resolver.from_settings(settings), authserv_id=settings.smtp_hostname
        )
        return cls(policy, model, limits, settings.max_message_bytes, online, authentication)

    @property
    def model_version(self) -> str:
        """The shipped model's version, joined by the online model's once it learned something
        (``inbound-v5-84f35e57f5+online-12-ab12cd``)."""
        if self.model is None:
            return "none"
        if self.online is None or self.online.is_empty:
            return self.model.version
        return f"{self.model.version}+{self.online.version}"

    def scan(
        self, raw: bytes, message_id: str | None = None, envelope: Envelope | None = None
    ) -> Verdict:
        """Judge one message. Raises MessageTooLarge over the size limit; any other input,
        however malformed, gets a verdict (with MIME_* symbols saying what was wrong)."""
        message = self._parse(raw)
        context = ScanContext(envelope=envelope or Envelope(), raw=raw)
        symbols = self._rule_symbols(message, context)
        model_version = "none"
        if self.model is not None:
            tokens = self._model_tokens(message, symbols)
            probabilities, online_version = self._combined(tokens, self._base(tokens))
            context.probabilities = probabilities
            symbols.append(model_symbol(probabilities, self.model.neutral))
            model_version = self.model.version
            if online_version is not None:
                model_version += "+" + online_version
        probabilities = context.probabilities or dict(_NO_MODEL)
        extra: dict[str, Any] = {}
        if context.authentication is not None:
            extra["authentication_results"] = context.authentication.header_value()
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
            model_version=model_version,
            policy_version=self.policy.version,
            extra=extra,
        )

    def learn(self, raw: bytes, label: str) -> LearnResult:
        """Teach the online model that ``raw`` is ``label`` (ham, spam or phish): what a user
        reporting a message, or releasing one from quarantine (ham), tells us.

        Raises ValueError for an unknown label, MessageTooLarge over the size limit, and
        ModelError when this scanner has no model or online learning is off."""
        if label not in CLASSES:
            raise ValueError(f"label must be one of {', '.join(CLASSES)}, not {label!r}")
        if self.model is None or self.online is None:
            raise ModelError(
                "online learning needs the ML model and POSTWISE_ONLINE_LEARNING=true "
                "(it is off, or no model is loaded)"
            )
        message = self._parse(raw)
        symbols = self._rule_symbols(message, ScanContext())
        tokens = self._model_tokens(message, symbols)
        base = self._base(tokens)
        before = self.online.predict_proba_one(tokens, base)
        self.online.learn_one(tokens, label, base)
        after, version = self.online.predict_with_version(tokens, base)
        return LearnResult(
            message_sha256=message.sha256,
            label=label,
            before=before,
            after=after,
            online_version=version or self.online.version,
            counts=self.online.counts,
        )

    def _parse(self, raw: bytes) -> ParsedMessage:
        if len(raw) > self.max_message_bytes:
            raise MessageTooLarge(len(raw), self.max_message_bytes)
        return parse_message(raw, self.limits)

    def _rule_symbols(self, message: ParsedMessage, context: ScanContext) -> list[Symbol]:
        symbols: list[Symbol] = []
        for check in self.rule_checks:
            symbols.extend(check.run(message, context))
        return symbols

    @staticmethod
    def _model_tokens(message: ParsedMessage, symbols: list[Symbol]) -> list[str]:
        """The classifier's input: the message and the rule symbols it may weigh."""
        return message_tokens(message, [s for s in symbols if s.name not in NON_MODEL_SYMBOLS])

    def _base(self, tokens: list[str]) -> dict[str, float]:
        """The shipped model's probabilities."""
        assert self.model is not None
        row = self.model.predict_proba([tokens])[0]
        return {label: float(p) for label, p in zip(self.model.classes, row, strict=True)}

    def _combined(
        self, tokens: list[str], base: dict[str, float]
    ) -> tuple[dict[str, float], str | None]:
        """The probabilities the verdict uses, and the online version involved (None when the
        online model is absent or empty: then they are exactly ``base``)."""
        if self.online is None:
            return base, None
        return self.online.predict_with_version(tokens, base)
