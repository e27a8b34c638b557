"""MTA-STS (RFC 8461) for sending: which MX hosts of a domain may be used, and how strictly
their TLS must be checked.

:class:`MtaStsClient` finds a domain's policy the way RFC 8461 5.1 asks: the ``_mta-sts`` TXT
record (through the given :class:`~postwise.auth.dns.Resolver`), then, when the record's ``id``
is new or the cached policy expired, ``https://mta-sts.<domain>/.well-known/mta-sts.txt`` over
HTTPS with the certificate checked against ``mta-sts.<domain>``, no redirects, at most 64 KiB,
``text/plain``. The policy host's address comes from the same Resolver (not the system's), so
tests and private deployments point it anywhere. A cached, unexpired policy stays in force when a
refresh fails (RFC 8461 5.1, the defence against an attacker blocking the fetch).

:func:`tls_requirement` turns a policy and an MX host into what the delivery engine must do;
:func:`verified_tls_context` and :func:`opportunistic_tls_context` are the two TLS contexts it
uses for STARTTLS.

Errors::

    PostwiseError
    └── MtaStsError              a policy could not be fetched (network, TLS, HTTP)
        └── MtaStsPolicyError    a fetched policy (or TXT record) is malformed
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, cast

import structlog

from postwise.auth.dns import DnsTemporaryError, Resolver
from postwise.core.errors import PostwiseError

log = structlog.get_logger("postwise.outbound.mta_sts")

MAX_POLICY_BYTES = 64 * 1024
"""RFC 8461 3.3: senders may refuse larger policy bodies."""
MAX_AGE_LIMIT = 31557600
"""RFC 8461 3.2: max_age is at most about a year."""
POLICY_PATH = "/.well-known/mta-sts.txt"
_MAX_HEAD_BYTES = 16 * 1024
_ID = re.compile(r"[A-Za-z0-9]{1,32}")
_LABEL = re.compile(r"(?!-)[a-z0-9-]{1,63}(?<!-)")

Mode = Literal["enforce", "testing", "none"]
TlsRequirement = Literal["refuse", "verify", "opportunistic"]
"""What a delivery to one MX host needs: ``refuse`` (the policy forbids this host),
``verify`` (STARTTLS with a certificate valid for the host, or no delivery), ``opportunistic``
(STARTTLS when offered, any certificate, plaintext otherwise)."""


class MtaStsError(PostwiseError):
    """An MTA-STS policy could not be fetched (DNS, connection, TLS, HTTP status or size)."""


class MtaStsPolicyError(MtaStsError):
    """An MTA-STS policy body or ``_mta-sts`` TXT record is malformed."""


def mx_pattern_matches(pattern: str, host: str) -> bool:
    """Whether MX ``host`` matches a policy's ``mx`` ``pattern``: exactly, or for ``*.suffix``
    by replacing the leftmost label only (RFC 8461 4.1: ``*.example.com`` matches
    ``mx.example.com``, not ``a.mx.example.com`` nor ``example.com``)."""
    pattern = pattern.lower().rstrip(".")
    host = host.lower().rstrip(".")
    if pattern.startswith("*."):
        label, dot, rest = host.partition(".")
        return bool(label) and bool(dot) and rest == pattern[2:]
    return pattern == host


@dataclass(frozen=True, slots=True)
class MtaStsPolicy:
    """A domain's MTA-STS policy as fetched, with the TXT ``id`` it was fetched under."""

    mode: Mode
    mx: tuple[str, ...]
    max_age: int
    id: str
    domain: str = ""
    fetched_at: float = 0.0

    @property
    def expires_at(self) -> float:
        return self.fetched_at + self.max_age

    def matches(self, host: str) -> bool:
        """Whether ``host`` is one of the MX hosts this policy allows."""
        return any(mx_pattern_matches(pattern, host) for pattern in self.mx)

    def to_json(self) -> dict[str, Any]:
        return {
            "domain": self.domain,
            "id": self.id,
            "mode": self.mode,
            "mx": list(self.mx),
            "max_age": self.max_age,
            "fetched_at": self.fetched_at,
        }


@dataclass(frozen=True, slots=True)
class PolicyLookup:
    """The outcome of :meth:`MtaStsClient.lookup`: the policy in force (None: none), whether
    it came from the cache, and why things went as they did (for logs and TLS reports)."""

    policy: MtaStsPolicy | None
    reason: str
    cached: bool = False


def _valid_mx_pattern(pattern: str) -> bool:
    labels = pattern.removeprefix("*.").split(".")
    return len(labels) >= 2 and all(_LABEL.fullmatch(label) for label in labels)


def parse_policy(body: str, *, policy_id: str = "", domain: str = "") -> MtaStsPolicy:
    """The policy in an ``mta-sts.txt`` body (RFC 8461 3.2). Lines end in CRLF or LF; unknown
    keys are ignored. Raises MtaStsPolicyError naming every problem: ``version`` must be
    ``STSv1``, ``mode`` one of enforce/testing/none, ``max_age`` 0..31557600 seconds, each
    ``mx`` a host name or ``*.`` wildcard (at least one unless the mode is none); the
    single-valued keys appear once."""
    fields: dict[str, list[str]] = {}
    for line in body.splitlines():
        if not line.strip():
            continue
        key, sep, value = line.partition(":")
        if not sep:
            raise MtaStsPolicyError(f"policy line {line[:60]!r} is not 'key: value'")
        fields.setdefault(key.strip().lower(), []).append(value.strip())
    problems = []
    for key in ("version", "mode", "max_age"):
        if len(fields.get(key, [])) > 1:
            problems.append(f"{key} appears {len(fields[key])} times")
    version = fields.get("version", [""])[0]
    if version != "STSv1":
        problems.append(f"version must be STSv1, not {version[:20]!r}")
    mode = fields.get("mode", [""])[0]
    if mode not in ("enforce", "testing", "none"):
        problems.append(f"mode must be enforce, testing or none, not {mode[:20]!r}")
    max_age_text = fields.get("max_age", [""])[0]
    max_age = int(max_age_text) if re.fullmatch(r"\d{1,10}", max_age_text) else -1
    if not 0 <= max_age <= MAX_AGE_LIMIT:
        problems.append(f"max_age must be 0 to {MAX_AGE_LIMIT} seconds, not {max_age_text[:20]!r}")
    patterns = tuple(p.lower().rstrip(".") for p in fields.get("mx", []))
    bad = [p for p in patterns if not _valid_mx_pattern(p)]
    if bad:
        problems.append(f"mx {bad[0][:60]!r} is not a host name or *.domain pattern")
    if mode in ("enforce", "testing") and not patterns:
        problems.append(f"mode {mode} needs at least one mx")
    if problems:
        raise MtaStsPolicyError("invalid MTA-STS policy: " + "; ".join(problems))
    return MtaStsPolicy(cast(Mode, mode), patterns, max_age, policy_id, domain)


def parse_sts_record(records: tuple[str, ...], name: str) -> str:
    """The ``id`` of the one ``v=STSv1`` record among ``records`` (RFC 8461 3.1). Raises
    MtaStsPolicyError when there is none, more than one, or it is invalid."""
    sts = [r for r in records if re.match(r"v=STSv1\s*;", r)]
    if not sts:
        raise MtaStsPolicyError(f"{name}: no v=STSv1 TXT record")
    if len(sts) > 1:
        raise MtaStsPolicyError(f"{name}: {len(sts)} v=STSv1 TXT records (there must be one)")
    tags: dict[str, str] = {}
    for part in sts[0].split(";"):
        key, sep, value = part.strip().partition("=")
        if sep:
            tags.setdefault(key.strip(), value.strip())
    policy_id = tags.get("id", "")
    if not _ID.fullmatch(policy_id):
        raise MtaStsPolicyError(f"{name}: id={policy_id[:40]!r} is not 1 to 32 letters or digits")
    return policy_id


def tls_requirement(policy: MtaStsPolicy | None, mx_host: str) -> TlsRequirement:
    """What delivering to ``mx_host`` needs under ``policy`` (RFC 8461 5 and 4.2).

    * enforce: a host matching no ``mx`` pattern must not be used (``refuse``); a matching one
      needs STARTTLS with a certificate valid for ``mx_host`` (``verify``), or no delivery.
    * testing: ``opportunistic``; the engine delivers anyway but should report (TLS-RPT) a host
      that matches no pattern or fails verification (see ``policy.mode``).
    * none, or no policy: ``opportunistic``."""
    if policy is None or policy.mode != "enforce":
        return "opportunistic"
    return "verify" if policy.matches(mx_host) else "refuse"


def verified_tls_context(ca_file: Path | None) -> ssl.SSLContext:
    """A client context that requires a certificate chaining to ``ca_file`` (the system's CAs
    when None) and valid for the server name given as ``server_hostname``; TLS 1.2 or later."""
    context = ssl.create_default_context(cafile=str(ca_file) if ca_file else None)
    context.check_hostname = True
    context.verify_mode = ssl.CERT_REQUIRED
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    return context


def opportunistic_tls_context() -> ssl.SSLContext:
    """A client context that encrypts without checking the certificate: for STARTTLS when no
    policy requires verification (RFC 7435: any encryption beats plaintext)."""
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


def _normalise_domain(domain: str) -> str:
    name = domain.strip().lower().rstrip(".")
    try:
        name = name.encode("idna").decode("ascii") if not name.isascii() else name
    except UnicodeError as error:
        raise MtaStsError(f"{domain!r} is not a valid domain name") from error
    if not name or not all(_LABEL.fullmatch(label) for label in name.split(".")):
        raise MtaStsError(f"{domain!r} is not a valid domain name")
    return name


class MtaStsClient:
    """Finds, fetches and caches the MTA-STS policies of recipient domains.

    ``port`` is the HTTPS port of policy hosts (443; tests change it), ``ca_file`` the CA
    bundle their certificates must chain to (the system's when None), ``timeout`` the seconds
    allowed for one fetch, ``clock`` the time source for cache expiry. The cache is in memory,
    per client; share one client per process."""

    def __init__(
        self,
        resolver: Resolver,
        *,
        port: int = 443,
        ca_file: Path | None = None,
        timeout: float = 10.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.resolver = resolver
        self.port = port
        self.timeout = timeout
        self.clock = clock
        self._context = verified_tls_context(ca_file)
        self._cache: dict[str, MtaStsPolicy] = {}

    def cached(self, domain: str) -> MtaStsPolicy | None:
        """The cached, unexpired policy of ``domain``, without any lookup."""
        policy = self._cache.get(domain.strip().lower().rstrip("."))
        return policy if policy is not None and policy.expires_at > self.clock() else None

    async def policy_for(self, domain: str) -> MtaStsPolicy | None:
        """The MTA-STS policy in force for ``domain``, or None when it has none (or none could
        be fetched and none is cached). Never raises; :meth:`lookup` also says why."""
        return (await self.lookup(domain)).policy

    async def lookup(self, domain: str) -> PolicyLookup:
        """:meth:`policy_for` with the reason (logged as well). Never raises."""
        try:
            name = _normalise_domain(domain)
        except MtaStsError as error:
            return PolicyLookup(None, str(error))
        cached = self.cached(name)
        txt_name = f"_mta-sts.{name}"
        try:
            lookup = await asyncio.to_thread(self.resolver.txt, txt_name)
            policy_id = parse_sts_record(lookup.records, txt_name)
        except (DnsTemporaryError, MtaStsPolicyError) as error:
            # RFC 8461 5.1: with no usable record, a cached unexpired policy stays in force.
            return self._outcome(name, cached, str(error))
        if cached is not None and cached.id == policy_id:
            return PolicyLookup(cached, f"cached policy id={policy_id} is current", cached=True)
        try:
            body = await self.fetch(name)
            policy = parse_policy(body, policy_id=policy_id, domain=name)
        except MtaStsError as error:
            return self._outcome(name, cached, str(error))
        policy = MtaStsPolicy(
            policy.mode, policy.mx, policy.max_age, policy_id, name, fetched_at=self.clock()
        )
        self._cache[name] = policy
        log.info("mta_sts.policy_fetched", domain=name, id=policy_id, mode=policy.mode)
        return PolicyLookup(policy, f"fetched policy id={policy_id}")

    def _outcome(self, domain: str, cached: MtaStsPolicy | None, problem: str) -> PolicyLookup:
        if cached is not None:
            reason = f"{problem}; keeping the cached policy id={cached.id} until it expires"
            log.warning("mta_sts.refresh_failed", domain=domain, reason=reason)
            return PolicyLookup(cached, reason, cached=True)
        log.info("mta_sts.no_policy", domain=domain, reason=problem)
        return PolicyLookup(None, problem)

    async def fetch(self, domain: str) -> str:
        """The body of ``https://mta-sts.<domain>/.well-known/mta-sts.txt``. Raises MtaStsError
        (naming the URL) when it cannot be fetched under RFC 8461 3.3's rules."""
        host = f"mta-sts.{_normalise_domain(domain)}"
        url = f"https://{host}{POLICY_PATH}"
        try:
            found = await asyncio.to_thread(self.resolver.addresses, host)
        except DnsTemporaryError as error:
            raise MtaStsError(f"{url}: {error}") from error
        if found.void:
            raise MtaStsError(f"{url}: {host} has no address")
        failures = []
        for address in found.records:
            try:
                return await asyncio.wait_for(self._get(address, host), self.timeout)
            except MtaStsPolicyError as error:
                raise MtaStsError(f"{url}: {error}") from error
            except MtaStsError as error:  # an HTTP-level answer: other addresses say the same
                raise MtaStsError(f"{url} (at {address}): {error}") from error
            except TimeoutError:
                failures.append(f"{address}: no answer within {self.timeout:g}s")
            except ssl.SSLError as error:
                failures.append(f"{address}: TLS failed: {error}")
            except (OSError, ValueError) as error:
                failures.append(f"{address}: {error}")
        raise MtaStsError(f"{url}: " + "; ".join(failures))

    async def _get(self, address: str, host: str) -> str:
        reader, writer = await asyncio.open_connection(
            address, self.port, ssl=self._context, server_hostname=host
        )
        try:
            authority = host if self.port == 443 else f"{host}:{self.port}"
            request = (
                f"GET {POLICY_PATH} HTTP/1.1\r\nHost: {authority}\r\n"
                "User-Agent: Postwise MTA-STS\r\nAccept: text/plain\r\nConnection: close\r\n\r\n"
            )
            writer.write(request.encode("ascii"))
            await writer.drain()
            return await _read_response(reader)
        finally:
            writer.close()
            # the server may drop the connection without a TLS close_notify
            with contextlib.suppress(OSError, ssl.SSLError):
                await writer.wait_closed()


async def _read_response(reader: asyncio.StreamReader) -> str:
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except asyncio.IncompleteReadError as error:
        raise MtaStsError("the connection closed before a complete HTTP response") from error
    except asyncio.LimitOverrunError as error:
        raise MtaStsError("the HTTP response header is too large") from error
    if len(head) > _MAX_HEAD_BYTES:
        raise MtaStsError("the HTTP response header is too large")
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    match = re.match(r"HTTP/1\.[01] (\d{3})", status_line)
    if not match:
        raise MtaStsError(f"not an HTTP response: {status_line[:60]!r}")
    status = int(match.group(1))
    headers: dict[str, str] = {}
    for line in header_lines:
        name, sep, value = line.partition(":")
        if sep:
            headers.setdefault(name.strip().lower(), value.strip())
    if 300 <= status < 400:
        location = headers.get("location", "?")[:200]
        raise MtaStsError(f"HTTP {status} redirect to {location} (not followed, RFC 8461 3.3)")
    if status != 200:
        raise MtaStsError(f"HTTP {status}")
    media_type = headers.get("content-type", "").split(";")[0].strip().lower()
    if media_type != "text/plain":
        raise MtaStsError(f"Content-Type is {media_type or 'missing'!r}, not text/plain")
    if "chunked" in headers.get("transfer-encoding", "").lower():
        body = await _read_chunked(reader)
    elif "content-length" in headers:
        length_text = headers["content-length"]
        if not length_text.isdigit():
            raise MtaStsError(f"bad Content-Length {length_text[:20]!r}")
        if int(length_text) > MAX_POLICY_BYTES:
            raise MtaStsError(f"the policy is {length_text} bytes, over {MAX_POLICY_BYTES}")
        try:
            body = await reader.readexactly(int(length_text))
        except asyncio.IncompleteReadError as error:
            raise MtaStsError("the connection closed before the whole policy was read") from error
    else:
        body = await reader.read(MAX_POLICY_BYTES + 1)
        while body and len(body) <= MAX_POLICY_BYTES:
            more = await reader.read(MAX_POLICY_BYTES + 1 - len(body))
            if not more:
                break
            body += more
    if len(body) > MAX_POLICY_BYTES:
        raise MtaStsError(f"the policy is over {MAX_POLICY_BYTES} bytes")
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError as error:
        raise MtaStsPolicyError(f"the policy is not UTF-8 text ({error.reason})") from error


async def _read_chunked(reader: asyncio.StreamReader) -> bytes:
    body = b""
    try:
        while True:
            size_line = await reader.readuntil(b"\r\n")
            size_text = size_line.split(b";")[0].strip()
            if not re.fullmatch(rb"[0-9A-Fa-f]{1,8}", size_text):
                raise MtaStsError(f"bad chunk size {size_text[:20]!r}")
            size = int(size_text, 16)
            if size == 0:
                return body
            if len(body) + size > MAX_POLICY_BYTES:
                raise MtaStsError(f"the policy is over {MAX_POLICY_BYTES} bytes")
            body += await reader.readexactly(size)
            await reader.readexactly(2)
    except (asyncio.IncompleteReadError, asyncio.LimitOverrunError) as error:
        raise MtaStsError("the chunked policy body is truncated or malformed") from error
