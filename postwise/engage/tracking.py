"""Tracking: signed click-redirect links, an open pixel, one-click unsubscribe, and the events
they write.

Every tracked URL carries a *token*: ``base64url(payload) "." base64url(tag)``. The payload is
the compact JSON array ``[version, kind, campaign, message, variant, contact, issued_at, link,
url]``; the tag is HMAC-SHA256 of the payload, truncated to 16 bytes, under a key derived from
the engage key with a purpose label (so a tracking tag can never stand in for a contact-id
hash, and the reverse). A redirect target comes only from a verified token: there is no open
redirect. Base64 is checked to be canonical, so *any* change to a token is refused.

Consent: tracking is a purpose of its own (``tracking`` on ``email``). By default
(:attr:`TrackingConsentRule.GRANTED`) a contact is tracked only with a standing grant, the same
reading :meth:`ContactStore.has_consent` gives every purpose ("no statement means no
consent"), and the one the ePrivacy rules on pixels in mail call for. Operators who track on
legitimate interest choose :attr:`TrackingConsentRule.NOT_REFUSED`. A contact who may not be
tracked gets no pixel and unrewritten links, and the endpoints record no open or click for
them (a click still redirects). An unsubscribe is always recorded: it is the contact's own
request, and its event withdraws marketing consent through the ingest rules.

Machine opens and clicks are kept, flagged ``machine: true`` with a ``machine_reason``
(:class:`MachineDetection` lists the rules); see docs/tracking.md.

Errors::

    PostwiseError
     └── TrackingError   a token that is malformed, tampered with or of the wrong kind,
                         or a URL or field that cannot be signed
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import html
import ipaddress
import json
import re
import time
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from json.encoder import encode_basestring
from typing import Any, Literal
from urllib.parse import urlsplit

from sqlalchemy import select

from postwise.core.db import ConsentRecord, EngageEventRecord
from postwise.core.errors import PostwiseError
from postwise.core.settings import Settings
from postwise.engage.contacts import (
    EMAIL,
    ContactError,
    ContactStore,
    check_contact_id,
)
from postwise.engage.ingest import import_records

TRACKING = "tracking"
_IDS_PER_QUERY = 500
TOKEN_VERSION = 1
TAG_BYTES = 16
MAX_TOKEN_CHARS = 8192
MAX_FIELD_CHARS = 128
MAX_URL_CHARS = 2048
MAX_USER_AGENT_CHARS = 512
_KEY_LABEL = b"postwise/engage/tracking-token/v1"
_B64_CHARS = re.compile(r"^[A-Za-z0-9_-]+$")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
# str.isspace() and the control characters (``\s`` matches exactly what isspace() accepts).
_SPACE_OR_CONTROL = re.compile(r"[\s\x00-\x1f\x7f]")

Kind = Literal["click", "open", "unsubscribe"]
_KIND_CODES: dict[str, Kind] = {"c": "click", "o": "open", "u": "unsubscribe"}
_CODE_OF: dict[Kind, str] = {kind: code for code, kind in _KIND_CODES.items()}
_PATH_OF: dict[Kind, str] = {"click": "/t/c/", "open": "/t/o/", "unsubscribe": "/t/u/"}

# A 1x1 transparent GIF89a (43 bytes).
PIXEL_GIF = base64.b64decode("R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAIBRAA7")


class TrackingError(PostwiseError):
    """A tracking token that is malformed, tampered with or of the wrong kind, or a URL or
    field that cannot be put into one."""


class TrackingConsentRule(StrEnum):
    """How the standing ``tracking``/``email`` consent statement is read."""

    GRANTED = "granted"
    """Track only with a standing grant (opt-in). The default."""
    NOT_REFUSED = "not_refused"
    """Track unless the standing statement refuses it (legitimate interest, opt-out)."""


def tracking_allowed(
    store: ContactStore,
    contact_id: str,
    rule: TrackingConsentRule = TrackingConsentRule.GRANTED,
) -> bool:
    """Whether opens and clicks of ``contact_id`` may be tracked under ``rule``. An unknown
    contact is never tracked."""
    standing = store.consent(contact_id, TRACKING, EMAIL)
    if standing is not None:
        return standing.granted
    if rule is TrackingConsentRule.GRANTED:
        return False
    return store.attributes(contact_id) is not None


def tracked_contacts(
    store: ContactStore,
    contact_ids: Collection[str],
    rule: TrackingConsentRule = TrackingConsentRule.GRANTED,
) -> set[str]:
    """The batch form of :func:`tracking_allowed` for ``contact_ids``, which must be stored
    contacts (the caller has read them): which may be tracked under ``rule``, from one read
    of their ``tracking``/``email`` statements instead of queries per message."""
    table = ConsentRecord.__table__
    standing: dict[str, tuple[datetime, int, bool]] = {}
    wanted = list(contact_ids)
    with store.engine.connect() as connection:
        for start in range(0, len(wanted), _IDS_PER_QUERY):
            rows = connection.execute(
                select(table.c.contact_id, table.c.recorded_at, table.c.id, table.c.granted).where(
                    table.c.purpose == TRACKING,
                    table.c.channel == EMAIL,
                    table.c.contact_id.in_(wanted[start : start + _IDS_PER_QUERY]),
                )
            )
            for contact_id, recorded_at, row_id, granted in rows:
                moment = recorded_at if recorded_at.tzinfo else recorded_at.replace(tzinfo=UTC)
                key = (moment, int(row_id), bool(granted))
                if contact_id not in standing or key[:2] > standing[contact_id][:2]:
                    standing[str(contact_id)] = key
    if rule is TrackingConsentRule.GRANTED:
        return {c for c, (_, _, granted) in standing.items() if granted}
    return {c for c in wanted if c not in standing or standing[c][2]}


# ---------------------------------------------------------------------------- tokens


@dataclass(frozen=True, slots=True)
class TrackingClaims:
    """What a verified token says. ``link`` and ``url`` are set for clicks only."""

    kind: Kind
    campaign: str
    message: str
    variant: str
    contact: str
    issued_at: int
    link: int | None = None
    url: str | None = None

    def properties(self) -> dict[str, Any]:
        """The claims as event properties (the contact is the event's own field)."""
        body: dict[str, Any] = {
            "campaign": self.campaign,
            "message": self.message,
            "variant": self.variant,
        }
        if self.link is not None:
            body["link"] = self.link
        if self.url is not None:
            body["url"] = self.url
        return body


def _b64encode(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _b64decode(text: str, what: str) -> bytes:
    if not _B64_CHARS.match(text):
        raise TrackingError(f"tracking token: {what} is not base64url")
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        raise TrackingError(f"tracking token: {what} is not base64url") from None
    # Unpadded base64 leaves unused bits in the last character; only the canonical spelling
    # is accepted, so no two tokens verify to the same payload.
    if _b64encode(raw) != text:
        raise TrackingError(f"tracking token: {what} is not canonical base64url")
    return raw


def _field(value: str, what: str) -> str:
    if not isinstance(value, str) or len(value) > MAX_FIELD_CHARS:
        raise TrackingError(f"{what} must be text of at most {MAX_FIELD_CHARS} characters")
    if _CONTROL.search(value):
        raise TrackingError(f"{what} {value[:40]!r} holds control characters")
    return value


def check_target_url(url: str) -> str:
    """``url`` if a click may redirect to it: absolute http(s) with an ASCII host, no
    whitespace or control characters, at most MAX_URL_CHARS. TrackingError otherwise."""
    if not isinstance(url, str) or not url or len(url) > MAX_URL_CHARS:
        raise TrackingError(f"link URL must be 1-{MAX_URL_CHARS} characters")
    if _SPACE_OR_CONTROL.search(url):
        raise TrackingError(f"link URL {url[:80]!r} holds whitespace or control characters")
    try:
        parts = urlsplit(url)
    except ValueError:
        raise TrackingError(f"link URL {url[:80]!r} cannot be parsed") from None
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        raise TrackingError(f"link URL {url[:80]!r} is not an absolute http(s) URL")
    if not parts.netloc.isascii() or "\\" in url:
        raise TrackingError(f"link URL {url[:80]!r} has a non-ASCII or ambiguous host")
    return url


class Tracker:
    """Signs and verifies tracking tokens, builds tracked URLs and rewrites message HTML.

    ``key`` is the engage secret (``Settings.resolved_engage_hmac_key()``); the token key is
    derived from it. ``base_url`` is the public root of the API server
    (``tracking_base_url``)."""

    def __init__(
        self,
        key: bytes,
        base_url: str,
        *,
        consent_rule: TrackingConsentRule = TrackingConsentRule.GRANTED,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if not key:
            raise TrackingError("the engage key is empty; set engage_hmac_key")
        base = base_url.rstrip("/")
        parts = urlsplit(base)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise TrackingError(
                f"tracking_base_url {base_url!r} must be an absolute http(s) URL, "
                "e.g. https://t.example.com"
            )
        self._key = hmac.new(key, _KEY_LABEL, hashlib.sha256).digest()
        self.base_url = base
        self.consent_rule = consent_rule
        self._clock = clock

    @classmethod
    def from_settings(cls, settings: Settings) -> Tracker:
        return cls(settings.resolved_engage_hmac_key(), settings.tracking_base_url)

    # -- signing

    def _tag(self, payload: bytes) -> bytes:
        return hmac.digest(self._key, payload, "sha256")[:TAG_BYTES]

    def sign(self, claims: TrackingClaims) -> str:
        """The token of ``claims``. TrackingError when a field cannot be signed."""
        if claims.kind not in _CODE_OF:
            raise TrackingError(f"unknown token kind {claims.kind!r}")
        fields = _message_fields(claims.campaign, claims.message, claims.variant, claims.contact)
        if claims.kind == "click":
            if claims.url is None or claims.link is None or claims.link < 0:
                raise TrackingError("a click token needs the link URL and its index")
            check_target_url(claims.url)
        elif claims.url is not None or claims.link is not None:
            raise TrackingError(f"a {claims.kind} token carries no link")
        return self._token(_CODE_OF[claims.kind], fields, claims.issued_at, claims.link, claims.url)

    def _token(self, code: str, fields: str, issued: int, link: int | None, url: str | None) -> str:
        """The token of checked claims; ``fields`` is :func:`_message_fields`. The payload is
        the compact JSON ``json.dumps([...], separators=(",", ":"), ensure_ascii=False)``
        would write, put together from its parts: the message's fields are encoded once for
        all its links."""
        link_json = str(link) if type(link) is int else json.dumps(link)
        url_json = "null" if url is None else encode_basestring(url)
        payload = (
            f'[{TOKEN_VERSION},"{code}",{fields},{int(issued)},{link_json},{url_json}]'
        ).encode()
        return f"{_b64encode(payload)}.{_b64encode(self._tag(payload))}"

    def verify(self, token: str, kind: Kind | None = None) -> TrackingClaims:
        """The claims of ``token``. Raises TrackingError when it is malformed, its tag does
        not match (tampered, or signed under another key), or it is not of ``kind``."""
        if not isinstance(token, str) or not 0 < len(token) <= MAX_TOKEN_CHARS:
            raise TrackingError("tracking token is empty or too long")
        encoded_payload, dot, encoded_tag = token.partition(".")
        if not dot or not encoded_payload or not encoded_tag:
            raise TrackingError("tracking token is not payload.tag")
        payload = _b64decode(encoded_payload, "payload")
        tag = _b64decode(encoded_tag, "tag")
        if len(tag) != TAG_BYTES or not hmac.compare_digest(tag, self._tag(payload)):
            raise TrackingError("tracking token signature does not match (altered or foreign)")
        claims = _parse_payload(payload)
        if kind is not None and claims.kind != kind:
            raise TrackingError(f"tracking token is for {claims.kind}, not {kind}")
        return claims

    # -- URLs

    def _url(self, claims: TrackingClaims, suffix: str = "") -> str:
        return f"{self.base_url}{_PATH_OF[claims.kind]}{self.sign(claims)}{suffix}"

    def click_url(
        self,
        url: str,
        campaign: str,
        message: str,
        contact: str,
        variant: str = "",
        link: int = 0,
    ) -> str:
        """The tracked URL that redirects to ``url`` (kept exactly) and records a click."""
        claims = TrackingClaims(
            "click", campaign, message, variant, contact, int(self._clock()), link, url
        )
        return self._url(claims)

    def pixel_url(self, campaign: str, message: str, contact: str, variant: str = "") -> str:
        """The open pixel's URL (``.gif`` suffix: some clients only load image-like URLs)."""
        claims = TrackingClaims("open", campaign, message, variant, contact, int(self._clock()))
        return self._url(claims, ".gif")

    def unsubscribe_url(self, campaign: str, message: str, contact: str, variant: str = "") -> str:
        """The one-click unsubscribe URL (RFC 8058): GET shows a confirmation form, POST
        unsubscribes. Give it to every message, tracked or not."""
        claims = TrackingClaims(
            "unsubscribe", campaign, message, variant, contact, int(self._clock())
        )
        return self._url(claims)

    def list_unsubscribe_headers(
        self, campaign: str, message: str, contact: str, variant: str = ""
    ) -> dict[str, str]:
        """``List-Unsubscribe`` and ``List-Unsubscribe-Post`` for a message (RFC 2369,
        RFC 8058); the message must be DKIM-signed over both for one-click to be honoured."""
        url = self.unsubscribe_url(campaign, message, contact, variant)
        return {
            "List-Unsubscribe": f"<{url}>",
            "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
        }

    # -- HTML

    def rewrite_links(
        self,
        html_text: str,
        campaign: str,
        message: str,
        contact: str,
        variant: str = "",
        *,
        consent: ContactStore,
        consent_rule: TrackingConsentRule | None = None,
    ) -> str:
        """``html_text`` with every trackable link pointing at a click URL and the open pixel
        before ``</body>`` (or at the end). Unchanged when ``contact`` may not be tracked
        (see :func:`tracking_allowed`). Run it on rendered HTML, after templates.

        Left alone: non-http(s) hrefs (mailto:, tel:, #anchors, relative), this server's own
        /t/ URLs, links whose URL mentions ``unsubscribe``, and tags marked
        ``data-pw-notrack``. Only the href value is replaced; every other byte is kept."""
        rule = consent_rule or self.consent_rule
        if not tracking_allowed(consent, contact, rule):
            return html_text
        return self.add_tracking(html_text, campaign, message, contact, variant)

    def add_tracking(
        self, html_text: str, campaign: str, message: str, contact: str, variant: str = ""
    ) -> str:
        """:meth:`rewrite_links` without the consent check, for a caller that decided it for
        a batch (:func:`tracked_contacts`)."""
        issued = int(self._clock())
        counter = 0
        fields = _message_fields(campaign, message, variant, contact)  # checked once
        click_root = self.base_url + _PATH_OF["click"]

        def replace_tag(match: re.Match[str]) -> str:
            nonlocal counter
            tag = match.group(0)
            found = _href_of(tag)
            if found is None:
                return tag
            start, end, raw_value, quoted = found
            target = self._trackable(raw_value)  # a URL check_target_url accepts
            if target is None:
                return tag
            token = self._token("c", fields, issued, counter, target)
            counter += 1
            new_value = html.escape(click_root + token, quote=True)
            value = new_value if quoted else f'"{new_value}"'
            return tag[:start] + value + tag[end:]

        rewritten = _LINK_TAG.sub(replace_tag, html_text)
        pixel = html.escape(self.pixel_url(campaign, message, contact, variant), quote=True)
        image = (
            f'<img src="{pixel}" width="1" height="1" alt="" '
            'style="display:block;border:0;width:1px;height:1px" />'
        )
        closing = list(_BODY_END.finditer(rewritten))
        if not closing:
            return rewritten + image
        at = closing[-1].start()
        return rewritten[:at] + image + rewritten[at:]

    def _trackable(self, raw_value: str) -> str | None:
        # Browsers decode character references and strip surrounding whitespace from hrefs:
        # the URL they would open is the one we sign and redirect to.
        url = html.unescape(raw_value).strip(" \t\n\r\f")
        lowered = url.lower()
        if not lowered.startswith(("http://", "https://")):
            return None
        if url.startswith(self.base_url + "/t/") or "unsubscribe" in lowered:
            return None
        try:
            return check_target_url(url)
        except TrackingError:
            return None  # a link we cannot sign safely stays as it was


def _message_fields(campaign: str, message: str, variant: str, contact: str) -> str:
    """The JSON of a token's message fields (``"campaign","message","variant","contact"``),
    checked as :meth:`Tracker.sign` requires. TrackingError otherwise."""
    try:
        check_contact_id(contact)
    except ContactError as error:
        raise TrackingError(str(error)) from None
    _field(campaign, "campaign")
    _field(message, "message")
    _field(variant, "variant")
    return ",".join(encode_basestring(value) for value in (campaign, message, variant, contact))


def _parse_payload(payload: bytes) -> TrackingClaims:
    try:
        fields = json.loads(payload.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError):
        raise TrackingError("tracking token payload is not JSON") from None
    if not isinstance(fields, list) or len(fields) != 9 or fields[0] != TOKEN_VERSION:
        raise TrackingError("tracking token payload has an unknown layout or version")
    _, code, campaign, message, variant, contact, issued, link, url = fields
    if code not in _KIND_CODES or not all(
        isinstance(value, str) for value in (campaign, message, variant, contact)
    ):
        raise TrackingError("tracking token payload has fields of the wrong type")
    if isinstance(issued, bool) or not isinstance(issued, int):
        raise TrackingError("tracking token issued_at is not a number")
    kind = _KIND_CODES[code]
    if kind == "click":
        if isinstance(link, bool) or not isinstance(link, int) or not isinstance(url, str):
            raise TrackingError("click token lacks its link")
        check_target_url(url)
    elif link is not None or url is not None:
        raise TrackingError(f"{kind} token carries a link")
    return TrackingClaims(kind, campaign, message, variant, contact, issued, link, url)


# A start tag of a link element; attribute values may hold '>' inside quotes.
_LINK_TAG = re.compile(
    r"<(?:a|area|v:roundrect|v:rect|v:shape)(?=[\s/>])(?:[^>\"']|\"[^\"]*\"|'[^']*')*>",
    re.IGNORECASE,
)
_ATTRIBUTE = re.compile(
    r"""(?P<name>[^\s"'>/=]+)(?:\s*=\s*(?:"(?P<dq>[^"]*)"|'(?P<sq>[^']*)'|(?P<uq>[^\s"'>]+)))?"""
)
_BODY_END = re.compile(r"</body\s*>", re.IGNORECASE)
_TAG_NAME = re.compile(r"<[^\s/>]+")


def _href_of(tag: str) -> tuple[int, int, str, bool] | None:
    """(start, end, raw value, quoted) of the first href in ``tag``; None when there is none
    or the tag is marked data-pw-notrack. For a quoted value the span is inside the quotes."""
    name_end = _TAG_NAME.match(tag)
    position = name_end.end() if name_end else 1
    href: tuple[int, int, str, bool] | None = None
    for attribute in _ATTRIBUTE.finditer(tag, position, len(tag) - 1):
        name = attribute.group("name").lower()
        if name == "data-pw-notrack":
            return None
        if name != "href" or href is not None:
            continue
        for group, quoted in (("dq", True), ("sq", True), ("uq", False)):
            if attribute.group(group) is not None:
                href = (
                    attribute.start(group),
                    attribute.end(group),
                    attribute.group(group),
                    quoted,
                )
                break
    return href


# ---------------------------------------------------------------------------- machine detection


@dataclass(frozen=True, slots=True)
class MachineVerdict:
    """Whether a request was made by a machine, why, and which provider proxy carried it."""

    machine: bool
    reason: str | None = None
    proxy: str | None = None


# (name, pattern) pairs matched against the user agent, case-insensitively.
SCANNER_AGENTS: tuple[tuple[str, str], ...] = (
    ("barracuda", r"barracuda"),
    ("mimecast", r"mimecast"),
    ("proofpoint", r"proofpoint|urldefense"),
    ("symantec", r"symantec|messagelabs"),
    ("trendmicro", r"trend ?micro"),
    ("cisco", r"ironport|cisco"),
    ("sophos", r"sophos"),
    ("fortinet", r"fortinet|fortiguard"),
    ("zscaler", r"zscaler"),
    ("forcepoint", r"forcepoint|websense"),
    ("office_link_probe", r"microsoft office (?:existence|protocol) discovery"),
    (
        "link_preview",
        r"slackbot|facebookexternalhit|twitterbot|linkedinbot|whatsapp|telegrambot"
        r"|discordbot|skypeuripreview",
    ),
    (
        "http_library",
        r"python-requests|python-urllib|python-httpx|aiohttp|^curl/|^wget/|go-http-client"
        r"|^java/|okhttp|libwww-perl|headlesschrome|phantomjs",
    ),
    ("bot", r"\bbot\b|[a-z]bot/|crawler|spider"),
)
# Provider image proxies: they fetch when the reader opens the message, hiding who and where.
PROXY_AGENTS: tuple[tuple[str, str], ...] = (
    ("gmail", r"googleimageproxy"),
    ("yahoo", r"yahoomailproxy"),
)
# Apple Mail Privacy Protection fetches every image on delivery with this bare agent.
APPLE_MPP_AGENT = "Mozilla/5.0"
# Gmail's prefetch (before the reader sees the message) ends its agent this way.
GMAIL_PREFETCH = re.compile(r"Edge/12\.246 Mozilla/5\.0$")


def _compiled(rules: Sequence[tuple[str, str]]) -> tuple[tuple[str, re.Pattern[str]], ...]:
    return tuple((name, re.compile(pattern, re.IGNORECASE)) for name, pattern in rules)


_SCANNERS = _compiled(SCANNER_AGENTS)
_PROXIES = _compiled(PROXY_AGENTS)


@dataclass(frozen=True, slots=True)
class MachineDetection:
    """The rules that flag opens and clicks as made by machines (see docs/tracking.md).

    ``machine_networks`` pairs a CIDR with a reason, for sources known by address (an
    operator's list of scanner or proxy ranges). ``proxy_opens_are_machine`` counts opens
    through the Gmail and Yahoo image proxies as machine opens too; by default they count as
    the reader's (those proxies fetch when the message is opened) and carry ``proxy``."""

    open_window_seconds: float = 5.0
    click_window_seconds: float = 2.0
    machine_networks: tuple[tuple[str, str], ...] = ()
    proxy_opens_are_machine: bool = False

    def _network_reason(self, client: str | None) -> str | None:
        if not client or not self.machine_networks:
            return None
        try:
            address = ipaddress.ip_address(client)
        except ValueError:
            return None
        for network, reason in self.machine_networks:
            if address in ipaddress.ip_network(network, strict=False):
                return reason
        return None

    def classify_open(
        self, user_agent: str, client: str | None, since_delivery: float | None
    ) -> MachineVerdict:
        """An open's verdict from its user agent, source address and the seconds since the
        message's ``delivered`` event (None when unknown)."""
        agent = user_agent.strip()
        if not agent:
            return MachineVerdict(True, "no_user_agent")
        if agent == APPLE_MPP_AGENT:
            return MachineVerdict(True, "apple_mpp", "apple")
        if GMAIL_PREFETCH.search(agent):
            return MachineVerdict(True, "gmail_prefetch", "gmail")
        proxy = next((name for name, pattern in _PROXIES if pattern.search(agent)), None)
        if proxy is not None and self.proxy_opens_are_machine:
            return MachineVerdict(True, f"image_proxy:{proxy}", proxy)
        if proxy is None:
            scanner = next((name for name, pattern in _SCANNERS if pattern.search(agent)), None)
            if scanner is not None:
                return MachineVerdict(True, f"scanner:{scanner}")
        network = self._network_reason(client)
        if network is not None:
            return MachineVerdict(True, network, proxy)
        if since_delivery is not None and 0 <= since_delivery <= self.open_window_seconds:
            return MachineVerdict(True, "soon_after_delivery", proxy)
        return MachineVerdict(False, None, proxy)

    def classify_click(
        self, user_agent: str, method: str, client: str | None, since_delivery: float | None
    ) -> MachineVerdict:
        """A click's verdict: HEAD requests, scanner or bare agents, listed networks and
        clicks within ``click_window_seconds`` of delivery are machines."""
        agent = user_agent.strip()
        if method.upper() == "HEAD":
            return MachineVerdict(True, "head_request")
        if not agent:
            return MachineVerdict(True, "no_user_agent")
        if agent == APPLE_MPP_AGENT:
            return MachineVerdict(True, "bare_user_agent")
        scanner = next((name for name, pattern in _SCANNERS if pattern.search(agent)), None)
        if scanner is not None:
            return MachineVerdict(True, f"scanner:{scanner}")
        network = self._network_reason(client)
        if network is not None:
            return MachineVerdict(True, network)
        if since_delivery is not None and 0 <= since_delivery <= self.click_window_seconds:
            return MachineVerdict(True, "soon_after_delivery")
        return MachineVerdict(False)


# ---------------------------------------------------------------------------- recording


@dataclass(frozen=True, slots=True)
class Recorded:
    """What became of one tracking request: ``imported``, ``duplicate`` (the same event was
    stored already), ``not_tracked`` (no tracking consent) or ``error`` (unknown contact)."""

    status: str
    event_id: str | None = None
    machine: MachineVerdict | None = None
    detail: str | None = None


def _digest(*parts: str) -> str:
    joined = "\x1f".join(parts).encode("utf-8", "surrogatepass")
    return hashlib.sha256(joined).hexdigest()[:40]


class TrackingRecorder:
    """Writes open, click and unsubscribe events for verified tokens, through the ingest
    rules (idempotent by event id; an unsubscribe withdraws marketing consent).

    Event ids: one ``unsubscribe`` per token; an open or click per request, except that
    exact retries (same token, user agent and method within the same second) are one
    event. The client address is used for classification only and never stored."""

    def __init__(
        self,
        store: ContactStore,
        detection: MachineDetection | None = None,
        consent_rule: TrackingConsentRule = TrackingConsentRule.GRANTED,
    ) -> None:
        self.store = store
        self.detection = detection or MachineDetection()
        self.consent_rule = consent_rule

    def _seconds_since_delivery(self, claims: TrackingClaims, now: datetime) -> float | None:
        table = EngageEventRecord
        with self.store.engine.connect() as connection:
            rows = connection.execute(
                select(table.occurred_at, table.properties)
                .where(table.contact_id == claims.contact, table.type == "delivered")
                .order_by(table.occurred_at.desc())
                .limit(50)
            ).all()
        for occurred_at, properties in rows:
            props = properties or {}
            if claims.message in (props.get("message"), props.get("message_id")):
                moment: datetime = (
                    occurred_at if occurred_at.tzinfo else occurred_at.replace(tzinfo=UTC)
                )
                return float((now - moment).total_seconds())
        return None

    def _store(
        self,
        event_id: str,
        kind: str,
        claims: TrackingClaims,
        now: datetime,
        properties: dict[str, Any],
    ) -> Recorded:
        record = {
            "event_id": event_id,
            "type": kind,
            "occurred_at": now.isoformat(),
            "contact_id": claims.contact,
            "properties": {**claims.properties(), **properties},
        }
        report, outcomes = import_records(self.store, "events", [record], source="tracking")
        outcome = outcomes[0]
        if outcome.status == "error":
            return Recorded("error", event_id, detail=outcome.error)
        return Recorded("imported" if report.imported else "duplicate", event_id)

    def _engagement(
        self,
        kind: Literal["open", "click"],
        token: str,
        claims: TrackingClaims,
        user_agent: str,
        method: str,
        client: str | None,
        now: datetime | None,
    ) -> Recorded:
        moment = now or datetime.now(UTC)
        if not tracking_allowed(self.store, claims.contact, self.consent_rule):
            return Recorded("not_tracked")
        since = self._seconds_since_delivery(claims, moment)
        agent = user_agent[:MAX_USER_AGENT_CHARS]
        verdict = (
            self.detection.classify_open(agent, client, since)
            if kind == "open"
            else self.detection.classify_click(agent, method, client, since)
        )
        properties: dict[str, Any] = {"user_agent": agent, "machine": verdict.machine}
        if verdict.reason is not None:
            properties["machine_reason"] = verdict.reason
        if verdict.proxy is not None:
            properties["proxy"] = verdict.proxy
        if method.upper() != "GET":
            properties["method"] = method.upper()
        event_id = f"{kind}-" + _digest(token, agent, method.upper(), str(int(moment.timestamp())))
        stored = self._store(event_id, kind, claims, moment, properties)
        return Recorded(stored.status, stored.event_id, verdict, stored.detail)

    def record_open(
        self,
        token: str,
        claims: TrackingClaims,
        user_agent: str,
        method: str = "GET",
        client: str | None = None,
        now: datetime | None = None,
    ) -> Recorded:
        """Record an open of a verified open token (nothing without tracking consent)."""
        return self._engagement("open", token, claims, user_agent, method, client, now)

    def record_click(
        self,
        token: str,
        claims: TrackingClaims,
        user_agent: str,
        method: str = "GET",
        client: str | None = None,
        now: datetime | None = None,
    ) -> Recorded:
        """Record a click of a verified click token (nothing without tracking consent)."""
        return self._engagement("click", token, claims, user_agent, method, client, now)

    def record_unsubscribe(
        self,
        token: str,
        claims: TrackingClaims,
        one_click: bool,
        now: datetime | None = None,
    ) -> Recorded:
        """Record the unsubscribe of a verified unsubscribe token: once per token, whatever
        the tracking consent; its event withdraws marketing consent on email."""
        moment = now or datetime.now(UTC)
        event_id = "unsubscribe-" + _digest(token)
        method = "one-click" if one_click else "form"
        return self._store(event_id, "unsubscribe", claims, moment, {"method": method})
