"""The inbound pipeline as a milter: the Sendmail milter protocol (version 6, as Postfix 3.x and
Sendmail 8.14+ speak it) over asyncio streams, so an MTA hands each message to Postwise before
queueing it (Postfix: ``smtpd_milters = inet:127.0.0.1:11332``).

The MTA connects once per SMTP session and may pass several messages over that connection.
Every packet is a 4-byte big-endian length, a command byte and the command's data. Per message
the MTA reports the envelope (CONNECT, HELO, MAIL, RCPT), then the headers and body chunks, then
end of message (BODYEOB), which the milter answers with its changes and one final reply:

=============  ===============================================================================
disposition    replies at end of message
=============  ===============================================================================
deliver        ADDHEADER for each ``X-Postwise-*`` header, then ACCEPT
quarantine     the ADDHEADERs, QUARANTINE with the reason (Postfix: hold queue), then ACCEPT
reject         REPLYCODE ``550 5.7.1 <reason>``
too large      REPLYCODE ``552 5.3.4 ...`` (nothing buffered past the size limit)
our failure    TEMPFAIL: the MTA keeps the message and the client tries again later
=============  ===============================================================================

A peer that breaks the protocol (bad length, unknown command, truncated packet, silence past the
timeout) loses its connection; the server and the other connections carry on. This layer only
translates: what to do with a message is decided by :class:`InboundPipeline`.
"""

from __future__ import annotations

import asyncio
import re
import struct
from contextlib import suppress
from dataclasses import dataclass, field
from typing import Any

import structlog

from postwise.core.errors import MessageTooLarge
from postwise.inbound.checks.base import Envelope
from postwise.inbound.decision import Decision, fold_header
from postwise.inbound.pipeline import InboundPipeline

log = structlog.get_logger("postwise.inbound.milter")

# Commands from the MTA (SMFIC_*).
_ABORT = b"A"
_BODY = b"B"
_CONNECT = b"C"
_MACRO = b"D"
_BODYEOB = b"E"
_HELO = b"H"
_QUIT_NC = b"K"
_HEADER = b"L"
_MAIL = b"M"
_EOH = b"N"
_OPTNEG = b"O"
_QUIT = b"Q"
_RCPT = b"R"
_DATA = b"T"
_UNKNOWN = b"U"

# Replies to the MTA (SMFIR_*).
_ACCEPT = b"a"
_CONTINUE = b"c"
_ADDHEADER = b"h"
_QUARANTINE = b"q"
_TEMPFAIL = b"t"
_REPLYCODE = b"y"

# Actions the milter may take at end of message (SMFIF_*): without both, the dispositions
# cannot be carried out, so a connection whose MTA does not allow them is refused.
_SMFIF_ADDHDRS = 0x01
_SMFIF_QUARANTINE = 0x20
_ACTIONS = _SMFIF_ADDHDRS | _SMFIF_QUARANTINE

# Protocol flags (SMFIP_*): events the MTA need not send, replies the milter will not send.
_SMFIP_NR_HDR = 1 << 7
_SMFIP_NOUNKNOWN = 1 << 8
_SMFIP_NODATA = 1 << 9
_SMFIP_NR_CONN = 1 << 12
_SMFIP_NR_HELO = 1 << 13
_SMFIP_NR_MAIL = 1 << 14
_SMFIP_NR_RCPT = 1 << 15
_SMFIP_NR_DATA = 1 << 16
_SMFIP_NR_UNKN = 1 << 17
_SMFIP_NR_EOH = 1 << 18
_SMFIP_NR_BODY = 1 << 19
_SMFIP_HDR_LEADSPC = 1 << 20

# Events that only inform: the reply is always CONTINUE, so it is skipped when the MTA allows.
_NO_REPLY_FLAG: dict[bytes, int] = {
    _CONNECT: _SMFIP_NR_CONN,
    _HELO: _SMFIP_NR_HELO,
    _MAIL: _SMFIP_NR_MAIL,
    _RCPT: _SMFIP_NR_RCPT,
    _DATA: _SMFIP_NR_DATA,
    _UNKNOWN: _SMFIP_NR_UNKN,
    _HEADER: _SMFIP_NR_HDR,
    _EOH: _SMFIP_NR_EOH,
    _BODY: _SMFIP_NR_BODY,
}
# Header values with their leading space as received: the message is rebuilt byte for byte.
_WANTED_PROTOCOL = (
    _SMFIP_NOUNKNOWN | _SMFIP_NODATA | _SMFIP_HDR_LEADSPC | sum(_NO_REPLY_FLAG.values())
)

_VERSION = 6
_OLDEST_VERSION = 2
_MAX_RECIPIENTS = 1000  # Postfix's smtpd_recipient_limit default; more are not recorded
_LONE_LF = re.compile(rb"(?<!\r)\n")


class _ProtocolViolation(Exception):
    """The peer broke the protocol; its connection is closed."""


class RawMessageBuilder:
    """The message as the MTA received it, rebuilt from the milter's header and body events.

    Postfix sends header values without the space after the colon (unless the milter asks for
    it with SMFIP_HDR_LEADSPC, as this one does) and folded lines joined by a bare LF; the body
    arrives in CRLF form. Keeps at most ``limit`` bytes: past it, it drops what it held and only
    counts, so a huge message costs no memory."""

    def __init__(self, limit: int, leading_space: bool = False) -> None:
        self.limit = limit
        self.leading_space = leading_space
        self.size = 2  # the empty line between header and body
        self._headers: list[bytes] = []
        self._body: list[bytes] = []

    @property
    def over_limit(self) -> bool:
        return self.size > self.limit

    @property
    def buffered(self) -> int:
        """Bytes held in memory now."""
        return sum(map(len, self._headers)) + sum(map(len, self._body))

    def add_header(self, name: bytes, value: bytes) -> None:
        separator = b":" if self.leading_space else b": "
        self._keep(self._headers, name + separator + _LONE_LF.sub(b"\r\n", value) + b"\r\n")

    def add_body(self, chunk: bytes) -> None:
        self._keep(self._body, chunk)

    def build(self) -> bytes:
        """The raw message. Raises MessageTooLarge when it passed the limit."""
        if self.over_limit:
            raise MessageTooLarge(self.size, self.limit)
        return b"".join(self._headers) + b"\r\n" + b"".join(self._body)

    def _keep(self, parts: list[bytes], data: bytes) -> None:
        self.size += len(data)
        if self.over_limit:
            self._headers.clear()
            self._body.clear()
        else:
            parts.append(data)


def _packet(command: bytes, data: bytes = b"") -> bytes:
    return struct.pack(">I", len(data) + 1) + command + data


def _cstring(text: str) -> bytes:
    """NUL-terminated ASCII, as the MTA reads replies."""
    return text.encode("ascii", "replace").replace(b"\0", b"") + b"\0"


def _one_line(text: str) -> str:
    """Printable ASCII on one line: non-ASCII becomes '?', line breaks and controls spaces."""
    ascii_text = text.encode("ascii", "replace").decode("ascii")
    return " ".join("".join(c if " " <= c <= "~" else " " for c in ascii_text).split())


def _reply_code(reply: str) -> bytes:
    """REPLYCODE with one printable ASCII line; '%' doubled, since Sendmail reads the text as a
    format string (Postfix turns '%%' back into '%')."""
    return _packet(_REPLYCODE, _cstring(_one_line(reply).replace("%", "%%")))


def _add_header(name: str, value: str, leading_space: bool) -> bytes:
    """ADDHEADER for ``name: value``, folded like the gateway's headers. Continuation lines are
    joined by LF alone (the MTA adds the CR); the MTA adds the space after the colon unless
    SMFIP_HDR_LEADSPC was negotiated."""
    folded = fold_header(name, value)  # b"Name: first\r\n\tmore\r\n"
    text = folded[len(name) + 1 : -2].replace(b"\r\n", b"\n").replace(b"\0", b"")
    if not leading_space:
        text = text.removeprefix(b" ")
    return _packet(_ADDHEADER, _cstring(name) + text + b"\0")


def _strings(data: bytes) -> list[bytes]:
    """The NUL-terminated strings of a packet's data."""
    if not data.endswith(b"\0"):
        raise _ProtocolViolation("string argument without its NUL terminator")
    return data[:-1].split(b"\0")


def _text(raw: bytes, limit: int = 998) -> str:
    return raw.decode("utf-8", "replace")[:limit]


def _address(raw: bytes) -> str:
    """``<ann@example.org>`` -> ``ann@example.org``; the null sender ``<>`` -> empty."""
    text = _text(raw.strip())
    if text.startswith("<") and text.endswith(">"):
        text = text[1:-1]
    return text


def _client_ip(raw: bytes) -> str:
    """The bare address: Postfix may bracket it, Sendmail prefixes IPv6 ones with ``IPv6:``."""
    text = _text(raw, 64).strip().removeprefix("[").removesuffix("]")
    if text[:5].lower() == "ipv6:":
        text = text[5:]
    return text


@dataclass
class _Message:
    builder: RawMessageBuilder
    mail_from: str = ""
    rcpt_to: list[str] = field(default_factory=list)
    queue_id: str | None = None


class _Connection:
    """One MTA connection: the negotiated options, the SMTP session it reports, the message
    in progress."""

    def __init__(
        self, server: MilterServer, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        self.server = server
        self.pipeline = server.pipeline
        self.reader = reader
        self.writer = writer
        self.version = 0  # 0 until negotiated
        self.protocol = 0
        self.client_ip = ""
        self.helo = ""
        self.message = self._new_message()

    async def run(self) -> None:
        """Serve packets until QUIT or EOF. Raises _ProtocolViolation, TimeoutError,
        ConnectionError."""
        while (packet := await self._read_packet()) is not None:
            command, data = packet
            if not await self._handle(command, data):
                return

    async def _read_packet(self) -> tuple[bytes, bytes] | None:
        try:
            # asyncio.timeout, not wait_for: 3.11's wait_for can swallow a cancellation.
            async with asyncio.timeout(self.server.idle_timeout):
                head = await self.reader.readexactly(4)
        except asyncio.IncompleteReadError as error:
            if error.partial:
                raise _ProtocolViolation("connection closed inside a packet length") from None
            return None
        (length,) = struct.unpack(">I", head)
        if length == 0:
            raise _ProtocolViolation("packet of length 0 (no command byte)")
        if length > self.server.max_packet_bytes:
            raise _ProtocolViolation(
                f"packet of {length} bytes, over the limit of {self.server.max_packet_bytes}"
            )
        try:
            async with asyncio.timeout(self.server.packet_timeout):
                payload = await self.reader.readexactly(length)
        except asyncio.IncompleteReadError as error:
            raise _ProtocolViolation(
                f"truncated packet: {len(error.partial)} of {length} bytes"
            ) from None
        return payload[:1], payload[1:]

    async def _send(self, *packets: bytes) -> None:
        self.writer.write(b"".join(packets))
        async with asyncio.timeout(self.server.packet_timeout):
            await self.writer.drain()

    def _new_message(self, queue_id: str | None = None) -> _Message:
        limit = self.pipeline.scanner.max_message_bytes
        builder = RawMessageBuilder(limit, bool(self.protocol & _SMFIP_HDR_LEADSPC))
        return _Message(builder=builder, queue_id=queue_id)

    def _new_session(self) -> None:
        self.client_ip = ""
        self.helo = ""
        self.message = self._new_message()

    async def _handle(self, command: bytes, data: bytes) -> bool:
        """Act on one packet; False when the MTA ends the connection."""
        if command == _OPTNEG:
            await self._negotiate(data)
            return True
        if not self.version:
            raise _ProtocolViolation(f"command {command!r} before option negotiation")
        if command == _QUIT:
            return False
        if command == _QUIT_NC:  # the MTA reuses the connection for a new SMTP session
            self._new_session()
        elif command == _ABORT:
            self.message = self._new_message()
        elif command == _MACRO:
            self._macros(data)
        elif command == _BODYEOB:
            await self._end_of_message(data)
        elif command in _NO_REPLY_FLAG:
            self._event(command, data)
            if not self.protocol & _NO_REPLY_FLAG[command]:
                await self._send(self._reply_to(command))
        else:
            raise _ProtocolViolation(f"unknown command {command!r}")
        return True

    async def _negotiate(self, data: bytes) -> None:
        if len(data) < 12:
            raise _ProtocolViolation(f"option negotiation of {len(data)} bytes, expected 12")
        version, actions, protocol = struct.unpack(">III", data[:12])
        if version < _OLDEST_VERSION:
            raise _ProtocolViolation(
                f"the MTA speaks milter protocol version {version}; versions "
                f"{_OLDEST_VERSION} to {_VERSION} are supported (Postfix: milter_protocol = 6)"
            )
        if actions & _ACTIONS != _ACTIONS:
            raise _ProtocolViolation(
                f"the MTA offers actions {actions:#x} without adding headers and quarantining "
                f"(SMFIF_ADDHDRS, SMFIF_QUARANTINE = {_ACTIONS:#x}); upgrade the MTA"
            )
        self.version = min(version, _VERSION)
        self.protocol = protocol & _WANTED_PROTOCOL
        self._new_session()
        await self._send(
            _packet(_OPTNEG, struct.pack(">III", self.version, _ACTIONS, self.protocol))
        )

    def _macros(self, data: bytes) -> None:
        if not data:
            raise _ProtocolViolation("macro packet without its command code")
        parts = data[1:].split(b"\0")
        for name, value in zip(parts[0::2], parts[1::2], strict=False):
            if name.strip(b"{}") == b"i" and value:
                self.message.queue_id = _text(value, 64)

    def _event(self, command: bytes, data: bytes) -> None:
        """Record what an informational event says."""
        if command == _CONNECT:
            self._connect(data)
        elif command == _HELO:
            self.helo = _text(_strings(data)[0], 255)
        elif command == _MAIL:
            # MAIL starts a message; the queue id macro sent just before it belongs to it.
            self.message = self._new_message(self.message.queue_id)
            self.message.mail_from = _address(_strings(data)[0])
        elif command == _RCPT:
            if len(self.message.rcpt_to) < _MAX_RECIPIENTS:
                self.message.rcpt_to.append(_address(_strings(data)[0]))
        elif command == _HEADER:
            strings = _strings(data)
            if len(strings) != 2 or not strings[0]:
                raise _ProtocolViolation("header packet is not a name and a value")
            self.message.builder.add_header(strings[0], strings[1])
        elif command == _BODY:
            self.message.builder.add_body(data)

    def _reply_to(self, command: bytes) -> bytes:
        """The reply to an informational event, for an MTA that waits for one. One that waits
        after body chunks (no SMFIP_NR_BODY) is stopped at the chunk that passes the size
        limit; one that does not hears the refusal at end of message."""
        if command == _BODY and self.message.builder.over_limit:
            return self._too_large(self.message)
        return _packet(_CONTINUE)

    def _connect(self, data: bytes) -> None:
        _hostname, nul, rest = data.partition(b"\0")
        if not nul or not rest:
            raise _ProtocolViolation("connect packet without host name and address family")
        self._new_session()
        family = rest[:1]
        if family == b"U":
            return
        if family not in (b"4", b"6", b"L") or len(rest) < 3:
            raise _ProtocolViolation(f"connect packet with address family {family!r}")
        address = _strings(rest[3:])[0]  # after the family and the 2-byte port
        if family != b"L":
            self.client_ip = _client_ip(address)

    def _too_large(self, message: _Message) -> bytes:
        builder = message.builder
        log.warning(
            "milter.message_too_large",
            queue_id=message.queue_id,
            size_at_least=builder.size,
            limit=builder.limit,
        )
        return _reply_code(
            f"552 5.3.4 message is over the {builder.limit}-byte limit "
            f"that {self.server.hostname} can scan"
        )

    async def _end_of_message(self, data: bytes) -> None:
        message = self.message
        self.message = self._new_message()
        if data:  # libmilter allows a last body chunk here; Postfix sends it as BODY
            message.builder.add_body(data)
        await self._send(*await self._judge(message))

    async def _judge(self, message: _Message) -> list[bytes]:
        if message.builder.over_limit:
            return [self._too_large(message)]
        raw = message.builder.build()
        envelope = Envelope(message.mail_from, tuple(message.rcpt_to), self.client_ip, self.helo)
        bound = log.bind(queue_id=message.queue_id, client_ip=self.client_ip)
        try:
            decision = await self.pipeline.judge(raw, envelope, source="milter")
            if decision.disposition == "quarantine":
                # Recorded before the MTA is told, so a held message is never missing here.
                await self.pipeline.hold(
                    raw, decision, envelope, origin="milter", mta_queue_id=message.queue_id
                )
        except MessageTooLarge:
            return [self._too_large(message)]
        except Exception:
            # Never accept what we failed to judge: the MTA keeps it and the client retries.
            bound.exception("milter.judge_failed", size=len(raw))
            return [_packet(_TEMPFAIL)]
        bound.info(
            "milter.judged",
            disposition=decision.disposition,
            action=decision.verdict.action,
            score=round(decision.verdict.score, 2),
        )
        return self._replies(decision)

    def _replies(self, decision: Decision) -> list[bytes]:
        if decision.disposition == "reject":
            return [_reply_code(decision.reject_reply)]
        leading_space = bool(self.protocol & _SMFIP_HDR_LEADSPC)
        replies = [_add_header(name, value, leading_space) for name, value in decision.headers]
        if decision.disposition == "quarantine":
            replies.append(_packet(_QUARANTINE, _cstring(_one_line(decision.reason))))
        replies.append(_packet(_ACCEPT))
        return replies


class MilterServer:
    """The milter: one asyncio task per MTA connection, each judging its messages through
    ``pipeline``. ``hostname`` names this server in replies.

    ``max_packet_bytes`` bounds one packet (Postfix sends body chunks of 64 KiB), ``idle_timeout``
    the wait for the MTA's next command (it waits on its SMTP client between commands) and
    ``packet_timeout`` the rest of a packet once its length has arrived."""

    def __init__(
        self,
        pipeline: InboundPipeline,
        hostname: str,
        *,
        max_packet_bytes: int = 1024 * 1024,
        idle_timeout: float = 600.0,
        packet_timeout: float = 30.0,
    ) -> None:
        self.pipeline = pipeline
        self.hostname = hostname
        self.max_packet_bytes = max_packet_bytes
        self.idle_timeout = idle_timeout
        self.packet_timeout = packet_timeout
        self._server: asyncio.Server | None = None
        self._connections: set[asyncio.Task[Any]] = set()

    async def start(self, host: str, port: int) -> int:
        """Listen on ``host``:``port`` (0: any free port); returns the bound port. Raises
        OSError when the address cannot be bound, RuntimeError when already started."""
        if self._server is not None:
            raise RuntimeError("the milter is already started")
        self._server = await asyncio.start_server(self._serve, host, port)
        bound: int = self._server.sockets[0].getsockname()[1]
        log.info("milter.started", host=host, port=bound, hostname=self.hostname)
        return bound

    async def close(self) -> None:
        """Stop listening and close every open connection (their messages are not judged:
        the MTA applies its milter_default_action)."""
        if self._server is None:
            return
        self._server.close()
        for task in list(self._connections):
            task.cancel()
        await asyncio.gather(*self._connections, return_exceptions=True)
        await self._server.wait_closed()
        self._server = None

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._connections.add(task)
        peer = writer.get_extra_info("peername")
        try:
            await _Connection(self, reader, writer).run()
        except asyncio.CancelledError:
            # close() ends the connection. Returning normally rather than ending cancelled:
            # Python 3.11's stream callback logs a spurious error for a cancelled task.
            pass
        except _ProtocolViolation as error:
            log.warning("milter.protocol_error", peer=str(peer), error=str(error))
        except TimeoutError:
            log.info("milter.timeout", peer=str(peer))
        except ConnectionError as error:
            log.info("milter.connection_lost", peer=str(peer), error=str(error))
        except Exception:  # a bug must cost one connection, never the server
            log.exception("milter.connection_failed", peer=str(peer))
        finally:
            writer.close()
            with suppress(Exception):
                await writer.wait_closed()
            if task is not None:
                self._connections.discard(task)
