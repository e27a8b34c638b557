"""Postwise's exception tree.

    PostwiseError                 every error Postwise raises on purpose
    ├── SettingsError             a setting or the settings file is invalid
    ├── PolicyError               a policy TOML file is missing, unreadable or malformed
    │   ├── ShapingError          (outbound.shaping) a shaping TOML key or value is wrong
    │   └── ReputationError       (outbound.reputation) a reputation TOML key or value is wrong
    ├── ModelError                a model artefact is missing, corrupt or of the wrong version
    ├── CorpusError               a training / evaluation data folder is not in a known layout
    ├── MessageRejected           a message cannot be scanned at all (e.g. larger than the limit)
    │   └── MessageTooLarge
    │
    │   defined beside the code that raises them:
    ├── QuarantineError           (inbound.quarantine) no such entry, or it cannot be released
    ├── DnsTemporaryError         (auth.dns) a lookup timed out or failed; checks say temperror
    ├── DkimSigningError          (auth.dkim) a message or key cannot be signed
    │   └── ArcSealError          (auth.arc) a chain cannot be sealed
    ├── DomainAuditError          (ops.domain_audit) a bad domain, selector or port to audit
    ├── QueueError                (outbound.queue) no such queued message, or nothing to queue
    ├── SubmissionError           (outbound.submission) a submission is refused, with the reason
    ├── MtaStsError               (outbound.mta_sts) an MTA-STS policy cannot be fetched
    │   └── MtaStsPolicyError     the policy text is malformed
    ├── ConsentError              (engage.contacts) no consent for that purpose and channel
    ├── RegistryError             (engage.registry) no such model or version, nothing to roll back
    ├── DriftError                (engage.drift) a drift reference or current sample is unusable
    └── ReportError               (ops.dmarc_types) a DMARC / TLS report file cannot be read

Malformed mail is *not* an error: the parser records defects and the checks turn them into
symbols. Only conditions that make a scan impossible raise ``MessageRejected``.
"""

from __future__ import annotations


class PostwiseError(Exception):
    """Base class of every error Postwise raises on purpose."""


class SettingsError(PostwiseError):
    """A setting or the settings file is invalid."""


class PolicyError(PostwiseError):
    """A policy TOML file is missing, unreadable or malformed."""


class ModelError(PostwiseError):
    """A model artefact is missing, corrupt or was written by an incompatible version."""


class CorpusError(PostwiseError):
    """A training or evaluation data folder is not in a layout Postwise knows."""


class MessageRejected(PostwiseError):
    """A message cannot be scanned at all."""


class MessageTooLarge(MessageRejected):
    """A message is larger than ``max_message_bytes``."""

    def __init__(self, size: int, limit: int) -> None:
        super().__init__(
            f"message is {size} bytes, over the limit of {limit} bytes "
            "(raise POSTWISE_MAX_MESSAGE_BYTES to scan it)"
        )
        self.size = size
        self.limit = limit
