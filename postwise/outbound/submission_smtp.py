"""The submission port (RFC 6409): SMTP with AUTH PLAIN / LOGIN and STARTTLS, translating each
transaction into one :meth:`Submitter.submit` call and its outcome into a reply.

AUTH is required before MAIL. Over anything but loopback it is also refused until STARTTLS
(passwords never cross a network in clear). Accounts are ``submission_users``: a username and a
scrypt hash from :func:`hash_password` (``postwise queue hash-password``). ``MAIL FROM``'s
``ENVID`` (RFC 3461) is kept for the DSN.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import ipaddress
import secrets
import ssl
from collections.abc import Callable
from typing import Any

from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

from postwise.core.settings import Settings, SubmissionUser
from postwise.outbound.submission import SubmissionError, Submitter, check_address

_SCRYPT = {"n": 2**14, "r": 8, "p": 1}


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


class SubmissionHandler:
    """Checks recipients as they come (so a bad one gets its reply at RCPT) and queues the
    message at end of DATA."""

    def __init__(self, submitter: Submitter, on_queued: Callable[[], None] | None = None):
        self.submitter = submitter
        self.on_queued = on_queued

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
            (o.partition("=")[2] for o in envelope.mail_options if o.upper().startswith("ENVID=")),
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
        return SMTP(
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
