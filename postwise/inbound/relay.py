"""Where accepted mail goes: the next hop (an SMTP server, over a small pool of reused
connections) or, when none is configured, a local Maildir.

Both promise the same thing: when :meth:`deliver` returns a :class:`Delivery` that is not
``temporary`` or ``permanent``, the message is the next hop's (it said ``250``) or on disk
(fsynced). Anything else is reported, never swallowed, so the gateway can answer ``4xx``/``5xx``.
"""

from __future__ import annotations

import asyncio
import os
import socket
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import aiosmtplib

from postwise.core.durable import write_durably


@dataclass(frozen=True, slots=True)
class Delivery:
    """The outcome of handing a message on. ``refused`` maps recipients the next hop refused
    (while it took others) to its reply."""

    status: str  # "delivered", "temporary" (4xx / unreachable), "permanent" (5xx)
    reply: str
    refused: dict[str, str] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.status == "delivered"


class Destination(Protocol):
    """A place accepted mail is handed to."""

    description: str

    async def deliver(self, raw: bytes, mail_from: str, rcpt_to: tuple[str, ...]) -> Delivery:
        """Hand the message on; never raises for the destination's own failures."""
        ...

    async def close(self) -> None: ...


def _reply_of(error: aiosmtplib.SMTPResponseException | aiosmtplib.SMTPResponse) -> str:
    return f"{error.code} {error.message}".strip()


class NextHop:
    """An SMTP next hop with up to ``max_connections`` reused connections. Opportunistic
    STARTTLS without certificate checks (a local hop, like Postfix's ``may`` level)."""

    def __init__(self, host: str, port: int, timeout: float, max_connections: int = 16) -> None:
        self.host = host
        self.port = port
        self.timeout = timeout
        self.description = f"{host}:{port}"
        self._idle: list[aiosmtplib.SMTP] = []
        self._slots = asyncio.Semaphore(max_connections)

    async def _connection(self) -> aiosmtplib.SMTP:
        while self._idle:
            client = self._idle.pop()
            if client.is_connected:
                return client
        client = aiosmtplib.SMTP(
            hostname=self.host,
            port=self.port,
            timeout=self.timeout,
            start_tls=None,
            validate_certs=False,
            local_hostname=socket.gethostname(),
        )
        await client.connect()
        return client

    async def deliver(self, raw: bytes, mail_from: str, rcpt_to: tuple[str, ...]) -> Delivery:
        async with self._slots:
            client: aiosmtplib.SMTP | None = None
            try:
                client = await self._connection()
                options = await self._mail_options(client, raw, mail_from, rcpt_to)
                refused, reply = await client.sendmail(
                    mail_from, list(rcpt_to), raw, mail_options=options
                )
            except aiosmtplib.SMTPNotSupported as error:  # retrying cannot help (RFC 6531)
                await self._reset(client)
                return Delivery("permanent", f"553 5.6.7 next hop {self.description}: {error}")
            except aiosmtplib.SMTPRecipientsRefused as error:
                replies = {r.recipient: _reply_of(r) for r in error.recipients}
                permanent = all(r.code >= 500 for r in error.recipients)
                summary = next(iter(replies.values()), "recipients refused")
                await self._reset(client)
                return Delivery("permanent" if permanent else "temporary", summary)
            except aiosmtplib.SMTPResponseException as error:
                await self._reset(client)
                kind = "permanent" if 500 <= error.code < 600 else "temporary"
                return Delivery(kind, _reply_of(error))
            except (TimeoutError, aiosmtplib.SMTPException, OSError) as error:
                await self._discard(client)
                return Delivery("temporary", f"next hop {self.description} unavailable: {error}")
            self._idle.append(client)
            return Delivery(
                "delivered",
                reply,
                {rcpt: f"{r.code} {r.message}" for rcpt, r in refused.items()},
            )

    async def _mail_options(
        self, client: aiosmtplib.SMTP, raw: bytes, mail_from: str, rcpt_to: tuple[str, ...]
    ) -> list[str]:
        """SMTPUTF8 for non-ASCII addresses (aiosmtplib refuses them without it) and
        BODY=8BITMIME for an 8-bit message when the next hop offers it."""
        options = []
        if not (mail_from + "".join(rcpt_to)).isascii():
            options.append("SMTPUTF8")
        if not raw.isascii():
            if client.is_ehlo_or_helo_needed:
                await client.ehlo()
            if client.supports_extension("8bitmime"):
                options.append("BODY=8BITMIME")
        return options

    async def _reset(self, client: aiosmtplib.SMTP | None) -> None:
        if client is None:
            return
        try:
            await client.rset()
        except (TimeoutError, aiosmtplib.SMTPException, OSError):
            await self._discard(client)
            return
        self._idle.append(client)

    async def _discard(self, client: aiosmtplib.SMTP | None) -> None:
        if client is not None:
            client.close()

    async def close(self) -> None:
        idle, self._idle = self._idle, []
        for client in idle:
            try:
                await client.quit()
            except (TimeoutError, aiosmtplib.SMTPException, OSError):
                client.close()


class LocalMaildir:
    """A Maildir (``new``, ``cur``, ``tmp``) for accepted mail when there is no next hop. Each
    message is written durably with ``Return-Path`` and ``Delivered-To`` headers."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.description = f"Maildir {folder}"
        for sub in ("new", "cur", "tmp"):
            (folder / sub).mkdir(parents=True, exist_ok=True)
        self._counter = 0

    def _unique_name(self) -> str:
        self._counter += 1
        now = time.time()
        return (
            f"{int(now)}.M{int(now % 1 * 1e6)}P{os.getpid()}Q{self._counter}.{socket.gethostname()}"
        )

    def store(self, raw: bytes, mail_from: str, rcpt_to: tuple[str, ...]) -> Path:
        """Write one message; durable when this returns. Raises OSError."""
        trace = [f"Return-Path: <{mail_from}>\r\n".encode(errors="replace")]
        trace += [f"Delivered-To: {rcpt}\r\n".encode(errors="replace") for rcpt in rcpt_to]
        target = self.folder / "new" / self._unique_name()
        write_durably(target, [*trace, raw], self.folder / "tmp")
        return target

    async def deliver(self, raw: bytes, mail_from: str, rcpt_to: tuple[str, ...]) -> Delivery:
        try:
            path = await asyncio.to_thread(self.store, raw, mail_from, rcpt_to)
        except OSError as error:
            return Delivery("temporary", f"cannot write to {self.description}: {error}")
        return Delivery("delivered", f"stored as {path.name}")

    async def close(self) -> None:
        return None
