"""The SMTP gateway: an SMTP server (aiosmtpd) in the mail path, in front of a next hop.

For each message, in this order:

1. refused in-session when it breaks the protocol: bare ``<LF>`` or ``<CR>`` (the way SMTP
   smuggling is attempted; answered ``554 5.5.2``), over the SIZE limit (``552``), too many
   recipients (``452``), over-long lines (``500``);
2. written durably to the spool (:mod:`postwise.inbound.spool`);
3. judged by the inbound pipeline, off the event loop;
4. relayed to the next hop with ``X-Postwise-*`` headers (or written to the local Maildir),
   quarantined, or refused with ``550 5.7.1`` and the reason;
5. removed from the spool, and only then answered.

``250`` therefore always means relayed, quarantined or stored. A next hop that is down or
answers ``4xx`` gets the client ``451``; one that answers ``5xx`` has its reply passed back.
Messages left in the spool by a crash are finished by :meth:`Gateway.resume` on the next start.
A client silent for ``smtp_timeout`` seconds is told ``421`` and disconnected; the timer stands
still while the gateway, not the client, has the turn (scanning and relaying after DATA).

The client address the checks see is the socket peer, or the address from a PROXY protocol
header (``smtp_proxy_protocol``), or from ``XCLIENT`` / ``XFORWARD`` sent by a trusted
forwarder (``smtp_trusted_forwarders``: the Postfix in front of us, an nginx proxy).
"""

from __future__ import annotations

import asyncio
import ipaddress
import re
import secrets
import ssl
import weakref
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import format_datetime
from typing import Any, AnyStr

import structlog
from aiosmtpd.smtp import MISSING, SMTP, Session
from aiosmtpd.smtp import Envelope as SmtpEnvelope

from postwise.core.errors import MessageTooLarge
from postwise.core.events import append_event
from postwise.inbound.checks.base import Envelope
from postwise.inbound.decision import with_headers, without_forged_results
from postwise.inbound.pipeline import InboundPipeline
from postwise.inbound.relay import Delivery, Destination
from postwise.inbound.spool import Spool, SpooledMessage

log = structlog.get_logger("postwise.gateway")

# RFC 5321 section 4.5.3.1.3: a path is at most 256 octets with its angle brackets.
MAX_ADDRESS_OCTETS = 254
_FORWARDED_ATTRIBUTES = frozenset({"NAME", "ADDR", "PORT", "PROTO", "HELO", "IDENT", "SOURCE"})
_XTEXT = re.compile(r"\+([0-9A-Fa-f]{2})")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def _xtext_decode(value: str) -> str:
    return _XTEXT.sub(lambda m: chr(int(m.group(1), 16)), value)


def has_bare_line_ending(raw: bytes) -> bool:
    """True when ``raw`` holds a ``<LF>`` not after ``<CR>`` or a ``<CR>`` not before ``<LF>``."""
    crlf = raw.count(b"\r\n")
    return raw.count(b"\n") != crlf or raw.count(b"\r") != crlf


def address_problem(address: str, smtputf8: bool) -> str | None:
    """Why a MAIL or RCPT ``address`` cannot be taken, as the SMTP reply; None when it can.
    (aiosmtpd checks the syntax; it lets through control characters, any length, and
    non-ASCII, even undecodable, octets whether or not the client declared SMTPUTF8.)"""
    if len(address.encode("utf-8", "surrogateescape")) > MAX_ADDRESS_OCTETS:
        return f"553 5.1.3 Address longer than {MAX_ADDRESS_OCTETS} octets (RFC 5321 4.5.3.1)"
    if any(ord(c) < 32 or ord(c) == 127 for c in address):
        return "553 5.1.3 Control character in address"
    if not address.isascii():
        if not smtputf8:
            return "553 5.6.7 Non-ASCII address needs SMTPUTF8 on MAIL FROM (RFC 6531)"
        try:
            address.encode("utf-8")
        except UnicodeEncodeError:
            return "553 5.6.7 Address is not valid UTF-8"
    return None


def _normal_address(address: str | None) -> str:
    """The envelope address without brackets; the null sender ``<>`` is the empty string."""
    if not address or address == "<>":
        return ""
    return address


@dataclass(frozen=True)
class GatewayLimits:
    max_message_bytes: int
    max_recipients: int
    timeout: float
    proxy_protocol: bool
    trusted_forwarders: frozenset[str]


class GatewaySMTP(SMTP):
    """aiosmtpd's protocol plus PIPELINING (advertised; commands are read in order anyway),
    ``XCLIENT`` and ``XFORWARD`` for trusted forwarders."""

    def __init__(self, handler: GatewayHandler, trusted: frozenset[str], **kwargs: Any) -> None:
        super().__init__(handler, **kwargs)
        self.trusted = trusted
        self.xclient: dict[str, str] = {}  # for the rest of the connection
        self.xforward: dict[str, str] = {}  # for the current transaction

    def data_received(self, data: bytes) -> None:
        # aiosmtpd restarts its timer per command only, which cut off a long DATA transfer;
        # smtp_timeout is for silence. (The PROXY header keeps its own shorter timer.)
        if self.session is not None and (
            self._proxy_timeout is None or self.session.proxy_data is not None
        ):
            self._reset_timeout()
        super().data_received(data)

    def _timeout_cb(self) -> None:
        if self.transport is None:  # closed meanwhile
            return
        # Say why before closing, as RFC 5321 section 4.5.3.2 and Postfix do.
        if not self.transport.is_closing():
            reply = f"421 4.4.2 {self.hostname} Error: timeout exceeded\r\n"
            self.transport.write(reply.encode("ascii", "replace"))  # type: ignore[attr-defined]
        super()._timeout_cb()  # type: ignore[no-untyped-call]

    def pause_timeout(self) -> None:
        """Stop the idle timer while the gateway, not the client, has the turn (scanning and
        relaying after DATA): closing then would make the client send the message again."""
        if self._timeout_handle is not None:
            self._timeout_handle.cancel()

    def resume_timeout(self) -> None:
        if self.transport is not None:
            self._reset_timeout()

    async def push(self, status: AnyStr) -> None:
        # aiosmtpd echoes an unknown command as received: a bare CR in it broke the reply line.
        if isinstance(status, str) and _CONTROL.search(status):
            await super().push(_CONTROL.sub("?", status))
            return
        await super().push(status)

    def _getaddr(self, arg: str) -> tuple[str | None, str | None]:
        # aiosmtpd reads "<a@example.org" (no closing bracket) as a@example.org.
        if arg.lstrip().startswith("<") and ">" not in arg:
            return None, None  # "553 5.1.3 Error: malformed address"
        return super()._getaddr(arg)

    async def smtp_DATA(self, arg: str | None) -> None:
        """aiosmtpd's DATA with the message read into one buffer. aiosmtpd keeps a bytearray
        per line (an empty line costs 60 bytes: 20 MB of them took 800 MB) and every fragment
        of a line without <CR><LF>, with no limit. Past the size or line limit the rest is
        read and dropped, then answered ``552`` or ``500``, as aiosmtpd does."""
        if await self.check_helo_needed() or await self.check_auth_needed("DATA"):
            return
        assert self.envelope is not None
        if not self.envelope.rcpt_tos:
            await self.push("503 Error: need RCPT command")
            return
        if arg:
            await self.push("501 Syntax: DATA")
            return
        await self.push("354 End data with <CR><LF>.<CR><LF>")
        content = bytearray()
        size = 0
        problem = ""
        inside_long_line = False
        while self.transport is not None:
            try:
                line = await self._reader.readuntil(b"\r\n")
            except asyncio.LimitOverrunError as error:  # longer than the reader holds
                await self._reader.readexactly(error.consumed)
                problem = problem or "500 Line too long (see RFC5321 4.5.3.1.6)"
                content, inside_long_line = bytearray(), True
                continue
            if inside_long_line:  # the end of that line
                inside_long_line = False
                continue
            if line == b".\r\n":
                break
            size += len(line)
            if problem:
                continue
            if self.data_size_limit and size > self.data_size_limit:
                problem, content = "552 Error: Too much mail data", bytearray()
            elif len(line) > self.line_length_limit:
                problem, content = "500 Line too long (see RFC5321 4.5.3.1.6)", bytearray()
            else:
                content += line[1:] if line.startswith(b".") else line
        if problem:
            await self.push(problem)
            self._set_post_data_state()  # type: ignore[no-untyped-call]
            return
        self.envelope.original_content = self.envelope.content = bytes(content)
        del content
        status = await self._call_handler_hook("DATA")
        self._set_post_data_state()  # type: ignore[no-untyped-call]
        await self.push("250 OK" if status is MISSING else status)

    def direct_peer_ip(self) -> str:
        peer = self.session.peer if self.session else None
        return str(peer[0]) if isinstance(peer, tuple) and peer else ""

    def is_trusted(self) -> bool:
        return self.direct_peer_ip() in self.trusted

    def client_ip(self) -> str:
        """The address the checks see: XCLIENT/XFORWARD, else PROXY, else the socket peer."""
        for forwarded in (self.xforward, self.xclient):
            if forwarded.get("ADDR"):
                return forwarded["ADDR"]
        proxy = self.session.proxy_data if self.session else None
        if proxy and proxy.src_addr is not None:
            return str(proxy.src_addr)
        return self.direct_peer_ip()

    def client_helo(self) -> str:
        for forwarded in (self.xforward, self.xclient):
            if forwarded.get("HELO"):
                return forwarded["HELO"]
        return (self.session.host_name if self.session else "") or ""

    def _parse_forwarded(self, arg: str | None) -> dict[str, str] | str:
        """Attributes of an XCLIENT/XFORWARD line, or the error reply."""
        if not arg:
            return "501 5.5.4 Syntax: attribute=value ..."
        attributes: dict[str, str] = {}
        for item in arg.split():
            name, equals, value = item.partition("=")
            name = name.upper()
            if not equals or name not in _FORWARDED_ATTRIBUTES:
                return f"501 5.5.4 Bad attribute {name!r}; known: {sorted(_FORWARDED_ATTRIBUTES)}"
            value = _xtext_decode(value)
            if value.upper() in ("[UNAVAILABLE]", "[TEMPUNAVAIL]"):
                value = ""
            if name == "ADDR" and value:
                address = value[5:] if value.upper().startswith("IPV6:") else value
                try:
                    value = str(ipaddress.ip_address(address))
                except ValueError:
                    return f"501 5.5.4 Bad ADDR {value!r}: not an IP address"
            attributes[name] = value[:255]
        return attributes

    async def smtp_XCLIENT(self, arg: str | None) -> None:
        if not self.is_trusted():
            await self.push("550 5.7.0 XCLIENT not permitted from this address")
            return
        if self.envelope is not None and self.envelope.mail_from:
            await self.push("503 5.5.1 XCLIENT not permitted inside a mail transaction")
            return
        parsed = self._parse_forwarded(arg)
        if isinstance(parsed, str):
            await self.push(parsed)
            return
        self.xclient.update(parsed)
        # XCLIENT starts a new session as the named client: greeting again, EHLO again.
        self._set_rset_state()  # type: ignore[no-untyped-call]
        if self.session is not None:
            self.session.host_name = None
            self.session.extended_smtp = False
        await self.push(f"220 {self.hostname} ESMTP Postwise")

    async def smtp_XFORWARD(self, arg: str | None) -> None:
        if not self.is_trusted():
            await self.push("550 5.7.0 XFORWARD not permitted from this address")
            return
        parsed = self._parse_forwarded(arg)
        if isinstance(parsed, str):
            await self.push(parsed)
            return
        self.xforward.update(parsed)
        await self.push("250 2.0.0 Ok")


# Takes a message sent to a feedback address; returns what it recorded (a bounce, a complaint),
# or None when the message is neither (it is then handled like any other mail).
FeedbackSink = Callable[[bytes], Awaitable[str | None]]


class GatewayHandler:
    """The aiosmtpd handler: translates SMTP into calls of the pipeline and back."""

    def __init__(
        self,
        pipeline: InboundPipeline,
        spool: Spool,
        destination: Destination,
        limits: GatewayLimits,
        hostname: str,
        feedback: FeedbackSink | None = None,
        feedback_addresses: frozenset[str] = frozenset(),
    ) -> None:
        self.feedback = feedback
        self.feedback_addresses = frozenset(a.lower() for a in feedback_addresses)
        self.pipeline = pipeline
        self.spool = spool
        self.destination = destination
        self.limits = limits
        self.hostname = hostname
        self.in_flight: set[str] = set()
        self._unanswered: set[asyncio.Task[str]] = set()  # work whose client hung up

    async def handle_EHLO(
        self,
        server: GatewaySMTP,
        session: Session,
        envelope: SmtpEnvelope,
        hostname: str,
        responses: list[str],
    ) -> list[str]:
        session.host_name = hostname
        extra = ["250-PIPELINING", "250-ENHANCEDSTATUSCODES"]
        if server.is_trusted():
            extra += ["250-XCLIENT NAME ADDR PROTO HELO", "250-XFORWARD NAME ADDR PROTO HELO"]
        # Drop AUTH: the gateway does not authenticate submitters.
        kept = [r for r in responses[:-1] if not r.startswith("250-AUTH")]
        return kept + extra + responses[-1:]

    async def handle_PROXY(
        self, server: GatewaySMTP, session: Session, envelope: SmtpEnvelope, proxy_data: Any
    ) -> bool:
        return bool(proxy_data and proxy_data.valid)

    async def handle_MAIL(
        self,
        server: GatewaySMTP,
        session: Session,
        envelope: SmtpEnvelope,
        address: str,
        mail_options: list[str],
    ) -> str:
        problem = address_problem(address, envelope.smtp_utf8)
        if problem is not None:
            return problem
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 2.1.0 Ok"

    async def handle_RCPT(
        self,
        server: GatewaySMTP,
        session: Session,
        envelope: SmtpEnvelope,
        address: str,
        rcpt_options: list[str],
    ) -> str:
        if len(envelope.rcpt_tos) >= self.limits.max_recipients:
            return f"452 4.5.3 Too many recipients (at most {self.limits.max_recipients})"
        if "@" not in address or address.startswith("@") or address.endswith("@"):
            return "553 5.1.3 Recipient address must be local-part@domain"
        problem = address_problem(address, envelope.smtp_utf8)
        if problem is not None:
            return problem
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.extend(rcpt_options)
        return "250 2.1.5 Ok"

    async def handle_DATA(
        self, server: GatewaySMTP, session: Session, envelope: SmtpEnvelope
    ) -> str:
        raw = envelope.original_content or b""
        if has_bare_line_ending(raw):
            return "554 5.5.2 Bare <LF> or <CR> in message data; SMTP requires <CR><LF> lines"
        smtp_envelope = Envelope(
            mail_from=_normal_address(envelope.mail_from),
            rcpt_to=tuple(envelope.rcpt_tos),
            client_ip=server.client_ip(),
            helo=server.client_helo(),
        )
        server.xforward.clear()
        raw = self._received_header(server, smtp_envelope, session) + raw
        server.pause_timeout()
        # A client hanging up after its final dot cancels this session, not the work: once
        # spooled the message is ours, and a relay cut off midway would be sent twice.
        work = asyncio.create_task(self._spool_and_finish(raw, smtp_envelope))
        self._unanswered.add(work)
        work.add_done_callback(self._unanswered.discard)
        try:
            return await asyncio.shield(work)
        finally:
            server.resume_timeout()

    async def _spool_and_finish(self, raw: bytes, envelope: Envelope) -> str:
        # The id is in flight before its file exists, so resume() never takes a message a
        # session is still handling (the next hop would get it twice).
        spool_id = self.spool.new_id()
        self.in_flight.add(spool_id)
        try:
            try:
                spooled = await asyncio.to_thread(self.spool.put, raw, envelope, spool_id)
            except OSError as error:
                log.error("spool_write_failed", error=str(error))
                return "451 4.3.0 Cannot spool the message now; try again later"
            return await self.finish(spooled)
        finally:
            self.in_flight.discard(spool_id)

    def _received_header(self, server: GatewaySMTP, envelope: Envelope, session: Session) -> bytes:
        protocol = "ESMTPS" if session.ssl else ("ESMTP" if session.extended_smtp else "SMTP")
        helo = envelope.helo.encode("ascii", "replace").decode("ascii")[:100] or "unknown"
        queue_id = secrets.token_hex(5).upper()
        value = (
            f"from {helo} ([{envelope.client_ip}]) by {self.hostname} (Postwise) with "
            f"{protocol} id {queue_id}; {format_datetime(datetime.now(UTC))}"
        )
        return f"Received: {value}\r\n".encode("ascii", "replace")

    async def finish(self, spooled: SpooledMessage, resuming: bool = False) -> str:
        """Judge and hand on one spooled message; returns the SMTP reply for it. The spool file
        goes once the message is relayed, stored, quarantined or refused. On a temporary
        failure it goes too in a session (the client keeps the message after our 4xx), but
        stays when ``resuming`` (no client holds it any more)."""
        self.in_flight.add(spooled.spool_id)
        try:
            try:
                reply = await self._finish(spooled)
            except Exception:  # unforeseen: keep the message rather than the 500 aiosmtpd sends
                log.exception("finish_failed", spool_id=spooled.spool_id)
                reply = "451 4.3.0 Cannot handle the message now; try again later"
            if not (resuming and reply.startswith("4")):
                await asyncio.to_thread(self.spool.done, spooled)
            return reply
        finally:
            self.in_flight.discard(spooled.spool_id)

    async def _take_feedback(self, spooled: SpooledMessage) -> tuple[Envelope | None, str]:
        """Bounces and complaints sent to a feedback address are recorded (suppression, events,
        reputation) instead of delivered. Returns the envelope left to deliver (None: nothing)
        and a note of what was recorded."""
        envelope = spooled.envelope
        wanted = [r for r in envelope.rcpt_to if r.lower() in self.feedback_addresses]
        if not wanted or self.feedback is None:
            return envelope, ""
        recorded = await self.feedback(spooled.raw)
        if recorded is None:
            return envelope, ""
        others = tuple(r for r in envelope.rcpt_to if r not in wanted)
        if not others:
            return None, recorded
        return Envelope(envelope.mail_from, others, envelope.client_ip, envelope.helo), recorded

    async def _finish(self, spooled: SpooledMessage) -> str:
        remaining, recorded = await self._take_feedback(spooled)
        if remaining is None:
            return f"250 2.0.0 Ok: {recorded}"
        envelope = remaining
        try:
            decision = await self.pipeline.judge(spooled.raw, envelope, source="gateway")
        except MessageTooLarge as error:
            return f"552 5.3.4 {error}"
        except Exception as error:  # the client keeps the mail and retries
            log.exception("scan_failed", spool_id=spooled.spool_id)
            return f"451 4.3.0 Cannot scan the message now ({type(error).__name__}); try later"
        if decision.disposition == "reject":
            return decision.reject_reply
        marked = with_headers(without_forged_results(spooled.raw, self.hostname), decision.headers)
        if decision.disposition == "quarantine":
            try:
                entry = await self.pipeline.hold(marked, decision, envelope, origin="gateway")
            except OSError as error:
                log.error("quarantine_write_failed", error=str(error))
                return "451 4.3.0 Cannot quarantine the message now; try again later"
            return f"250 2.0.0 Ok: quarantined as {entry.id}"
        delivery = await self.destination.deliver(marked, envelope.mail_from, envelope.rcpt_to)
        if delivery.ok and delivery.refused:
            await self._partly_refused(spooled, delivery)
        return self._reply_for(delivery)

    async def _partly_refused(self, spooled: SpooledMessage, delivery: Delivery) -> None:
        """The next hop took the message for some recipients and refused others. Those it
        refused temporarily go back to the spool (retried until taken); permanent refusals are
        recorded as ``relay.refused`` events (a bounce to the sender is the outbound side's)."""
        temporary = tuple(r for r, reply in delivery.refused.items() if reply[:1] == "4")
        permanent = {r: reply for r, reply in delivery.refused.items() if reply[:1] != "4"}
        if temporary:
            retry = Envelope(
                spooled.envelope.mail_from,
                temporary,
                spooled.envelope.client_ip,
                spooled.envelope.helo,
            )
            await asyncio.to_thread(self.spool.put, spooled.raw, retry)
        log.warning(
            "relay_partly_refused",
            spool_id=spooled.spool_id,
            retrying=list(temporary),
            refused=permanent,
        )
        engine = self.pipeline.engine or self.pipeline.quarantine.engine
        if permanent:
            await asyncio.to_thread(
                append_event,
                engine,
                f"relay.refused:{spooled.spool_id}",
                "relay.refused",
                {
                    "spool_id": spooled.spool_id,
                    "mail_from": spooled.envelope.mail_from,
                    "refused": permanent,
                },
            )

    def _reply_for(self, delivery: Delivery) -> str:
        if delivery.ok:
            return f"250 2.0.0 Ok: relayed ({delivery.reply[:200]})"
        if delivery.status == "permanent":
            code = delivery.reply[:3] if delivery.reply[:1] == "5" else "550"
            return f"{code} 5.0.0 Next hop refused: {delivery.reply[:300]}"
        return f"451 4.4.1 Next hop unavailable; try again later ({delivery.reply[:200]})"


class Gateway:
    """The SMTP gateway server: :meth:`start` binds and resumes the spool; :meth:`close` stops."""

    def __init__(
        self,
        pipeline: InboundPipeline,
        spool: Spool,
        destination: Destination,
        limits: GatewayLimits,
        hostname: str,
        tls_context: ssl.SSLContext | None,
        feedback: FeedbackSink | None = None,
        feedback_addresses: frozenset[str] = frozenset(),
    ) -> None:
        self.handler = GatewayHandler(
            pipeline, spool, destination, limits, hostname, feedback, feedback_addresses
        )
        self.spool = spool
        self.destination = destination
        self.limits = limits
        self.hostname = hostname
        self.tls_context = tls_context
        self.server: asyncio.Server | None = None
        self.sessions: weakref.WeakSet[GatewaySMTP] = weakref.WeakSet()

    def _protocol(self) -> GatewaySMTP:
        protocol = GatewaySMTP(
            self.handler,
            self.limits.trusted_forwarders,
            data_size_limit=self.limits.max_message_bytes,
            enable_SMTPUTF8=True,
            hostname=self.hostname,
            ident="ESMTP Postwise",
            tls_context=self.tls_context,
            timeout=self.limits.timeout,
            proxy_protocol_timeout=10.0 if self.limits.proxy_protocol else None,
            loop=asyncio.get_running_loop(),
        )
        self.sessions.add(protocol)
        return protocol

    async def start(self, host: str, port: int) -> int:
        """Listen; returns the bound port (0 = any free). What a previous run left in the
        spool is finished by :meth:`resume`, which the caller runs (at start, then
        periodically) so that a next hop that is down does not delay listening."""
        self.server = await asyncio.get_running_loop().create_server(
            self._protocol, host=host, port=port, reuse_address=True
        )
        return int(self.server.sockets[0].getsockname()[1])

    async def resume(self) -> int:
        """Finish every message a previous run left in the spool (not those sessions are
        handling now); returns how many were finished. Ones the next hop cannot take now stay
        for the next call."""
        finished = 0
        # One file at a time, checked as it is read: a listing taken up front would hold
        # messages that sessions finish meanwhile, and they would be relayed again.
        for spooled in self.spool.pending():
            if spooled.spool_id in self.handler.in_flight:
                continue
            reply = await self.handler.finish(spooled, resuming=True)
            log.info("spool_resumed", spool_id=spooled.spool_id, reply=reply)
            if not reply.startswith("4"):
                finished += 1
        return finished

    async def close(self) -> None:
        if self.server is not None:
            self.server.close()
            for session in list(self.sessions):
                if session.transport is not None:
                    session.transport.close()
            await asyncio.sleep(0)
            await self.server.wait_closed()
        await self.destination.close()
