"""Postwise's exception tree.

    PostwiseError                 every error Postwise raises on purpose
    ├── SettingsError             a setting or the settings file is invalid
    ├── PolicyError               a policy TOML file is missing, unreadable or malformed
    │   ├── ShapingError          (outbound.shaping) a shaping TOML key or value is wrong
    │   ├── CopyPolicyError       (content.guardrails) a copy policy TOML key or value is wrong
    │   └── ReputationError       (outbound.reputation) a reputation TOML key or value is wrong
    ├── ModelError                a model artefact is missing, corrupt or of the wrong version
    ├── SchemaError               a database cannot be brought to the current schema
    ├── CorpusError               a training / evaluation data folder is not in a known layout
    │   ├── DatasetError          (engage.datasets) a personalization data file is malformed
    │   └── HeadlineError         (engage.headlines) an Upworthy-layout file is malformed
    ├── MessageRejected           a message cannot be scanned at all (e.g. larger than the limit)
    │   └── MessageTooLarge
    ├── TemplateError             (content.templates) a message template cannot be used
    │   ├── TemplateFormatError   the file is unreadable, malformed TOML or Jinja, or misses keys
    │   ├── TemplateSecurityError the template reached for internals the sandbox refuses
    │   ├── TemplateLimitError    rendering ran over a time, size, range or recursion limit
    │   └── TemplateRenderError   rendering failed otherwise (type error, bad value, ...)
    ├── CampaignError             a bad campaign file or definition, a send or report that
    │   │                         cannot run
    │   ├── UnknownCampaignError  (engage.campaigns) no campaign with that id
    │   └── DuplicateCampaignError (engage.campaigns) the id is taken
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
    ├── FeedbackError             (outbound.feedback) neither a bounce nor a complaint
    ├── ContactError              (engage.contacts) an address, purpose or id that cannot be stored
    ├── ConsentError              (engage.contacts) no consent for that purpose and channel
    ├── IngestError               (engage.ingest) an import file cannot be read at all
    ├── ScoringError              (engage.scoring) a model the contact store cannot feed
    ├── ExperimentStoreError      (engage.experiment_store) a stored experiment problem
    │   ├── UnknownExperimentError  no experiment of that name
    │   └── DuplicateExperimentError  the name is taken, or a second global holdout
    ├── BanditStoreError          (engage.bandit_store) an unknown bandit, or updates that kept
    │                             losing races with concurrent writers
    ├── CopyError                 (content.copy) a bad brief, a failing model endpoint or reply,
    │                             or an approval that is not allowed
    ├── TrackingError             (engage.tracking) a tracking token is malformed, tampered
    │                             with or of the wrong kind, or a URL cannot be signed
    ├── RegistryError             (engage.registry) no such model or version, nothing to roll back
    ├── DriftError                (engage.drift) a drift reference or current sample is unusable
    ├── SegmentError              (engage.segments) an invalid segment, unknown or cyclic reference
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


class SchemaError(PostwiseError):
    """A database cannot be brought to the current schema (e.g. tables its recorded revision
    promises are missing)."""


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


class CampaignError(PostwiseError):
    """A campaign definition is invalid, the campaign is unknown, or it cannot be sent or
    reported as asked."""


class TemplateError(PostwiseError):
    """A message template cannot be loaded, rendered or turned into a message."""


class TemplateFormatError(TemplateError):
    """The template file is unreadable, malformed (TOML or Jinja syntax) or misses keys."""


class TemplateSecurityError(TemplateError):
    """The template reached for something the sandbox refuses (internals, unsafe calls)."""


class TemplateLimitError(TemplateError):
    """Rendering ran over a limit: time, output size, value size, range length or depth."""


class TemplateRenderError(TemplateError):
    """Rendering failed for another reason (a type error, a bad value, a missing loader)."""
