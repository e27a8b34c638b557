"""The submission port (RFC 6409): SMTP with AUTH PLAIN / LOGIN and STARTTLS, translating each
transaction into one :meth:`Submitter.submit` call and its outcome into a reply.

AUTH is required before MAIL. Over anything but loopback it is also refused until STARTTLS
(passwords never cross a network in clear). Accounts are ``submission_users``: a username and a
scrypt hash from :func:`hash_password` (``postwise queue hash-password``). The port advertises
DSN (RFC 3461): ``MAIL FROM``'s ``ENVID`` is kept, as sent, for the DSN; ``RET``, ``NOTIFY``
and ``ORCPT`` are accepted and not acted on (failures always get a DSN with the headers).
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import ipaddress
import re
import secrets
import ssl
from collections.abc import Callable
from typing import Any

from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

from postwise.core.settings import Settings, SubmissionUser
from postwise.outbound.submission import MAX_LINE, SubmissionError, Submitter, check_address

_SCRYPT = {"n": 2**14, "r": 8, "p": 1}
# RFC 3461 4.4: ENVID is xtext (printable ASCII but '+' and '=', or '+' and two hex digits),
# at most 100 characters.
_XTEXT = re.compile(r"^(?:[!-*,-<>-~]|\+[0-9A-F]{2})+$")
_RET = ("FULL", "HDRS")
_NOTIFY = re.compile(r"^(?:NEVER|(?:SUCCESS|FAILURE|DELAY)(?:,(?:SUCCESS|FAILURE|DELAY))*)$")


def hash_password(password: str, salt: bytes | None = None) -> str:
    """``scrypt$<n>$<r>$<p>$<salt>$<hash>`` (base64): what ``submission_users`` stores."""
    salt = salt or secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode("utf-8"), salt=salt, dklen=32, **_SCRYPT)
    encoded = [base64.b64encode(part).decode("ascii") for part in (salt, digest)]
    return f"scrypt${_SCRYPT['n']}${_SCRYPT['r']}${_SCRYPT['p']}${encoded[0]}${encoded[1]}"


def verify_password(password: str, stored: str) -> bool:
    """True when ``password`` matches ``stored`` (a malformed hash matches nothing)."""
    try:
        scheme, n, r, p, salt, digest = stored.split("$")
        if scheme != "scrypt":
            return False
        expected = base64.b64decode(digest, validate=True)
        actual = hashlib.scrypt(
            password.encode("utf-8"),
            salt=base64.b64decode(salt, validate=True),
            n=int(n),
            r=int(r),
            p=int(p),
            dklen=len(expected),
        )
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(actual, expected)


class SubmissionAuthenticator:
    """aiosmtpd's authenticator over the configured accounts."""

    def __init__(self, users: list[SubmissionUser]) -> None:
        self.users = {user.username: user.password_hash for user in users}
        # Unknown users still cost one scrypt, so timing does not reveal who exists.
        self._decoy = hash_password(secrets.token_hex(8))

    def __call__(
        self, server: SMTP, session: Session, envelope: Envelope, mechanism: str, data: Any
    ) -> AuthResult:
        if not isinstance(data, LoginPassword):
            return AuthResult(success=False, handled=False)
        username = data.login.decode("utf-8", "replace")
        password = data.password.decode("utf-8", "replace")
        stored = self.users.get(username, self._decoy)
        ok = verify_password(password, stored) and username in self.users
        return AuthResult(success=ok, handled=False, auth_data=username if ok else None)


def _take_params(arg: str | None, names: tuple[str, ...]) -> tuple[str | None, dict[str, str]]:
    """``arg`` without its ``NAME=value`` parameters among ``names`` (which aiosmtpd would
    refuse with 555), and those parameters with their values as sent (ENVID is
    case-sensitive, and aiosmtpd upper-cases parameters)."""
    if arg is None:
        return None, {}
    kept: list[str] = []
    taken: dict[str, str] = {}
    for index, token in enumerate(arg.split(" ")):
        name, equals, value = token.partition("=")
        if index > 0 and equals and name.upper() in names:
            taken[name.upper()] = value
        else:
            kept.append(token)
    return " ".join(kept), taken


def _dsn_problem(params: dict[str, str]) -> str | None:
    """The reply refusing malformed DSN parameters (None when they are well formed)."""
    envid = params.get("ENVID")
    if envid is not None and (len(envid) > 100 or not _XTEXT.match(envid)):
        return "501 5.5.4 ENVID must be xtext (RFC 3461 4.4) of 1-100 characters"
    ret = params.get("RET")
    if ret is not None and ret.upper() not in _RET:
        return "501 5.5.4 RET must be FULL or HDRS"
    notify = params.get("NOTIFY")
    if notify is not None and not _NOTIFY.match(notify.upper()):
        return "501 5.5.4 NOTIFY must be NEVER or a list of SUCCESS, FAILURE and DELAY"
    orcpt = params.get("ORCPT")
    if orcpt is not None and ";" not in orcpt:
        return "501 5.5.4 ORCPT must be addr-type;xtext (RFC 3461 4.2)"
    return None


class _SubmissionSMTP(SMTP):
    """aiosmtpd's protocol with the DSN parameters (which it refuses as unknown) and RFC 5322's
    line limit answered as a refused message with its reason (aiosmtpd says ``500``)."""

    async def _dsn_refused(self, problem: str | None) -> bool:
        """True when the command is answered: by aiosmtpd's own checks first (HELO, AUTH), so
        an unauthenticated client hears 530 whatever its parameters, else by ``problem``."""
        if problem is None:
            return False
        if not await self.check_helo_needed() and not await self.check_auth_needed("MAIL"):
            await self.push(problem)
        return True

    async def smtp_MAIL(self, arg: str | None) -> None:
        arg, params = _take_params(arg, ("ENVID", "RET"))
        if await self._dsn_refused(_dsn_problem(params)):
            return
        await super().smtp_MAIL(arg)
        envid = params.get("ENVID")
        if envid is not None and self.envelope is not None and self.envelope.mail_from:
            self.envelope.mail_options.append(f"ENVID={envid}")

    async def smtp_RCPT(self, arg: str | None) -> None:
        arg, params = _take_params(arg, ("NOTIFY", "ORCPT"))
        if await self._dsn_refused(_dsn_problem(params)):
            return
        await super().smtp_RCPT(arg)

    async def push(self, status: Any) -> None:
        if isinstance(status, str) and status.startswith("500 Line too long"):
            status = (
                f"554 5.6.0 a line is longer than {MAX_LINE} octets (RFC 5322 2.1.1): encode "
                "the body as quoted-printable or base64"
            )
        await super().push(status)


class SubmissionHandler:
    """Checks recipients as they come (so a bad one gets its reply at RCPT) and queues the
    message at end of DATA."""

    def __init__(self, submitter: Submitter, on_queued: Callable[[], None] | None = None):
        self.submitter = submitter
        self.on_queued = on_queued

    async def handle_EHLO(
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        hostname: str,
        responses: list[str],
    ) -> list[str]:
        session.host_name = hostname
        return [*responses[:-1], "250-DSN", responses[-1]]

    async def handle_MAIL(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        try:
            sender = check_address(address, "sender") if address.strip("<> ") else ""
        except SubmissionError as error:
            return f"{error.code} {error}"
        envelope.mail_from = sender
        envelope.mail_options.extend(options)
        return "250 2.1.0 OK"

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        limit = self.submitter.settings.submission_max_recipients
        if len(envelope.rcpt_tos) >= limit:
            return f"452 4.5.3 at most {limit} recipients per message"
        try:
            recipient = check_address(address)
        except SubmissionError as error:
            return f"{error.code} {error}"
        listed = await asyncio.to_thread(self.submitter.suppressions.find, [recipient])
        if listed:
            entry = next(iter(listed.values()))
            return f"550 5.7.1 {recipient} is suppressed ({entry.source}: {entry.reason})"
        envelope.rcpt_tos.append(recipient)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        raw = envelope.original_content or b""
        envid = next(
            (o.partition("=")[2] for o in envelope.mail_options if o.startswith("ENVID=")),
            None,
        )
        user = session.auth_data if isinstance(session.auth_data, str) else "anonymous"
        try:
            accepted = await asyncio.to_thread(
                self.submitter.submit,
                envelope.mail_from or "",
                list(envelope.rcpt_tos),
                raw,
                source="smtp",
                submitted_by=f"{user} ({session.peer[0] if session.peer else 'unknown'})",
                envelope_id=envid[:100] if envid else None,
            )
        except SubmissionError as error:
            return f"{error.code} {error}"
        except OSError as error:
            return f"451 4.3.0 the queue cannot store the message now ({error}); try again"
        if self.on_queued is not None:
            self.on_queued()
        return f"250 2.0.0 queued as {accepted.enqueued.message_id}"


def _loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


class SubmissionServer:
    """The listening port; :meth:`start` returns the bound port."""

    def __init__(
        self,
        settings: Settings,
        submitter: Submitter,
        tls_context: ssl.SSLContext | None,
        on_queued: Callable[[], None] | None = None,
    ) -> None:
        self.settings = settings
        self.handler = SubmissionHandler(submitter, on_queued)
        self.authenticator = SubmissionAuthenticator(settings.submission_users)
        self.tls_context = tls_context
        self.server: asyncio.Server | None = None

    def _protocol(self) -> SMTP:
        return _SubmissionSMTP(
            self.handler,
            hostname=self.settings.resolved_delivery_hostname,
            data_size_limit=self.settings.max_message_bytes,
            enable_SMTPUTF8=True,
            decode_data=False,
            tls_context=self.tls_context,
            require_starttls=False,
            authenticator=self.authenticator,
            auth_required=True,
            auth_require_tls=not _loopback(self.settings.submission_host),
            timeout=self.settings.smtp_timeout,
            loop=asyncio.get_running_loop(),
        )

    async def start(self, host: str, port: int) -> int:
        self.server = await asyncio.get_running_loop().create_server(
            self._protocol, host=host, port=port, reuse_address=True
        )
        return int(self.server.sockets[0].getsockname()[1])

    async def close(self) -> None:
        if self.server is not None:
            self.server.close()
            await self.server.wait_closed()
