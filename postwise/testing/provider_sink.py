"""A real SMTP server that behaves like a mailbox provider's MX, for delivery tests and benchmarks.

:class:`ProviderSink` runs aiosmtpd on a loopback address (any ``127.0.0.x`` works on Linux) in a
thread with its own event loop, so synchronous tests, asyncio code and benchmarks can all use it.
Magic local parts at ``RCPT TO`` choose the reply, KumoMTA-style; the prefix before any ``+`` or
digits counts, case-insensitively (``throttle+3@x``, ``Throttle3@x``):

=============  ===========================================================================
``accept``     ``250`` (so does any local part not listed here)
``throttle``   ``421 4.7.0`` at RCPT, then the connection is closed, as providers do
``defer``      ``450 4.2.1`` at RCPT
``unknown``    ``550 5.1.1`` at RCPT
``slow``       ``250`` at end of DATA after :attr:`ProviderSink.slow_seconds`
``drop``       the TCP connection is closed at end of DATA, without a reply
``flaky``      ``451 4.3.0`` at RCPT for the first N attempts at that address (N = its digits,
               default 1), then ``250``: retry tests can finish
``datafail``   ``554 5.6.0`` at end of DATA
=============  ===========================================================================

``default_reply`` (or :meth:`ProviderSink.set_mode` at runtime) answers every RCPT with one
reply, to emulate a provider rate-limiting the sender; any ``421`` closes the connection.

Every accepted message is recorded (:class:`SunkMessage`) with counters per Message-ID, so
duplicates are visible, and connection statistics. Accessors are thread-safe.
"""

from __future__ import annotations

import asyncio
import hashlib
import re
import socket
import ssl
import threading
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import Future
from contextlib import suppress
from dataclasses import dataclass
from types import TracebackType
from typing import Any, cast

from aiosmtpd.smtp import SMTP, Envelope, Session

THROTTLE_REPLY = "421 4.7.0 Try again later, closing connection"
DEFER_REPLY = "450 4.2.1 Mailbox busy, try again later"
UNKNOWN_REPLY = "550 5.1.1 The email account that you tried to reach does not exist"
FLAKY_REPLY = "451 4.3.0 Temporary local problem, try again later"
DATAFAIL_REPLY = "554 5.6.0 Message content refused"
RCPT_OK = "250 2.1.5 Ok"
DATA_OK = "250 2.0.0 Ok: queued"

_MESSAGE_ID = re.compile(rb"^Message-ID:[ \t]*(?:\r\n[ \t]+)?(\S+)", re.IGNORECASE | re.MULTILINE)
_SIMPLE_ADDRESS = re.compile(
    r"\s*<([A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9.-]+)>(.*)", re.DOTALL
)
_KNOWN = frozenset({"accept", "throttle", "defer", "unknown", "slow", "drop", "flaky", "datafail"})
_DATA_SIZE_LIMIT = 50 * 1024 * 1024


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port on ``host`` that nothing listens on right now."""
    with socket.socket() as probe:
        probe.bind((host, 0))
        return int(probe.getsockname()[1])


def magic_of(address: str) -> tuple[str, int | None]:
    """The behaviour a recipient asks for and its number: ``Flaky+3@x`` -> ``("flaky", 3)``,
    ``throttle@x`` -> ``("throttle", None)``; unknown local parts -> ``("accept", None)``."""
    local = address.rpartition("@")[0].lower() if "@" in address else address.lower()
    head = local.split("+", 1)[0]
    word = head.rstrip("0123456789")
    digits = head[len(word) :]
    if not digits and "+" in local:
        tail = local.split("+", 1)[1]
        digits = tail[: len(tail) - len(tail.lstrip("0123456789"))]
    if word not in _KNOWN:
        return "accept", None
    return word, int(digits) if digits else None


@dataclass(frozen=True, slots=True)
class SunkMessage:
    """One accepted message. ``data`` is empty when the sink keeps only hashes."""

    mail_from: str
    rcpt_to: tuple[str, ...]
    data: bytes
    sha256: str
    size: int
    message_id: str | None
    peer: tuple[str, int]
    received_at: float


class _ProviderSMTP(SMTP):
    """aiosmtpd's protocol with a faster DATA reader, a banner delay, a drop at end of DATA and
    connection accounting for :class:`ProviderSink`."""

    def __init__(self, sink: ProviderSink, **kwargs: Any) -> None:
        super().__init__(sink._handler, **kwargs)
        self._sink = sink
        self._greeted = False
        self._counted = False
        self._messages_here = 0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        first = self._original_transport is None and not self._counted
        super().connection_made(transport)
        if first:
            self._counted = True
            self._sink._opened(self)

    def connection_lost(self, error: Exception | None) -> None:
        if self._counted:
            self._counted = False
            self._sink._closed(self, self._messages_here)
        super().connection_lost(error)

    async def push(self, status: Any) -> None:
        if not self._greeted:
            self._greeted = True
            if self._sink.banner_delay > 0:
                await asyncio.sleep(self._sink.banner_delay)
        await super().push(status)

    def _getaddr(self, arg: str) -> tuple[str | None, str | None]:
        # aiosmtpd parses every address with email's header parser (a third of its time per
        # message); plain addresses, which is all a benchmark sends, need no parser.
        simple = _SIMPLE_ADDRESS.match(arg)
        if simple is not None:
            return simple.group(1), simple.group(2)
        address, rest = super()._getaddr(arg)
        return address, rest

    async def smtp_DATA(self, arg: str) -> None:
        # aiosmtpd reads DATA one line per await; providers' sinks must take thousands of
        # messages a second, so this reads the whole body at once.
        if await self.check_helo_needed():
            return
        assert self.envelope is not None
        if not self.envelope.rcpt_tos:
            await self.push("503 5.5.1 Error: need RCPT command")
            return
        if arg:
            await self.push("501 5.5.4 Syntax: DATA")
            return
        await self.push("354 End data with <CR><LF>.<CR><LF>")
        # The CRLF ending the DATA line starts the terminator of an empty body too; putting it
        # back lets one readuntil find the end. (aiosmtpd itself edits this buffer for TLS.)
        reader: Any = self._reader
        reader._buffer[:0] = b"\r\n"
        limit, reader._limit = reader._limit, _DATA_SIZE_LIMIT + 5
        try:
            body = bytearray(await reader.readuntil(b"\r\n.\r\n"))
        except asyncio.LimitOverrunError:
            self._writer.close()
            return
        except asyncio.CancelledError:
            self._writer.close()
            raise
        finally:
            reader._limit = limit
        del body[:2]
        del body[-3:]
        if len(body) > _DATA_SIZE_LIMIT:
            self.envelope = self._create_envelope()
            await self.push("552 5.3.4 Error: too much mail data")
            return
        if body.startswith(b"."):
            del body[0]
        content = bytes(body).replace(b"\r\n.", b"\r\n")
        self.envelope.original_content = content
        self.envelope.content = content
        assert self.session is not None
        status = await self._sink._handler.finish_data(self, self.session, self.envelope)
        self.envelope = self._create_envelope()
        if status is None:
            assert self.transport is not None
            cast(asyncio.Transport, self.transport).abort()
            return
        self._messages_here += 1
        await self.push(status)


class _ProviderHandler:
    """The policy half: replies chosen by magic recipients and the sink's mode."""

    def __init__(self, sink: ProviderSink) -> None:
        self.sink = sink

    async def handle_EHLO(
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        hostname: str,
        responses: list[str],
    ) -> list[str]:
        session.host_name = hostname
        # aiosmtpd handles pipelined commands (it reads them in order) but does not say so.
        return [*responses[:-1], "250-PIPELINING", responses[-1]]

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        reply = self.sink._rcpt_reply(address)
        if reply.startswith("421"):
            # Written by the caller's push before this callback runs; close() then flushes it.
            asyncio.get_running_loop().call_soon(_close, server)
        elif reply.startswith("2"):
            envelope.rcpt_tos.append(address)
        return reply

    async def finish_data(self, server: SMTP, session: Session, envelope: Envelope) -> str | None:
        """The reply at end of DATA; None means drop the connection without one."""
        sink = self.sink
        forced = sink._data_reply
        if forced is not None:
            return forced
        magics = [magic_of(r)[0] for r in envelope.rcpt_tos]
        if "drop" in magics:
            return None
        if "datafail" in magics:
            return DATAFAIL_REPLY
        if "slow" in magics:
            await asyncio.sleep(sink.slow_seconds)
        data = envelope.original_content or b""
        peer = session.peer if isinstance(session.peer, tuple) else ("", 0)
        sink._record(envelope.mail_from or "", tuple(envelope.rcpt_tos), data, peer)
        return DATA_OK


def _close(server: SMTP) -> None:
    if server.transport is not None:
        server.transport.close()


class ProviderSink:
    """An SMTP server on ``host:port`` (0: a free port, see :attr:`port` after :meth:`start`)
    that answers like a mailbox provider and records what it accepts.

    ``banner_delay`` delays the 220 greeting; ``default_reply`` answers every RCPT;
    ``tls_context`` makes it advertise and accept STARTTLS; ``keep_data=False`` stores only the
    hash and size of each message (for benchmarks)."""

    def __init__(
        self,
        host: str = "127.0.0.2",
        port: int = 0,
        *,
        name: str = "sink",
        banner_delay: float = 0,
        default_reply: str | None = None,
        tls_context: ssl.SSLContext | None = None,
        keep_data: bool = True,
        slow_seconds: float = 2.0,
    ) -> None:
        self.host = host
        self.requested_port = port
        self.name = name
        self.banner_delay = banner_delay
        self.slow_seconds = slow_seconds
        self.tls_context = tls_context
        self.keep_data = keep_data
        self._rcpt_override = default_reply
        self._data_reply: str | None = None
        self._handler = _ProviderHandler(self)
        self._lock = threading.Lock()
        self._arrived = threading.Condition(self._lock)
        self._messages: list[SunkMessage] = []
        self._by_id: Counter[str] = Counter()
        self._attempts: Counter[str] = Counter()
        self._replies: Counter[str] = Counter()
        self._open: set[_ProviderSMTP] = set()
        self._connections = 0
        self._max_concurrent = 0
        self._per_connection: list[int] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._server: asyncio.Server | None = None
        self.port = 0

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> ProviderSink:
        """Listen and serve in a background thread. Raises OSError when the address is taken
        or cannot be bound."""
        if self._loop is not None:
            raise RuntimeError(f"{self.name}: already started")
        loop = asyncio.new_event_loop()
        thread = threading.Thread(target=loop.run_forever, name=f"sink-{self.name}", daemon=True)
        thread.start()
        self._loop, self._thread = loop, thread

        async def listen() -> asyncio.Server:
            return await loop.create_server(
                self._protocol, self.host, self.requested_port, backlog=1024, reuse_address=True
            )

        future: Future[asyncio.Server] = asyncio.run_coroutine_threadsafe(listen(), loop)
        try:
            self._server = future.result(30)
        except BaseException:
            self._shutdown_loop()
            raise
        self.port = int(self._server.sockets[0].getsockname()[1])
        return self

    def stop(self) -> None:
        """Close the listener and every open connection; stop the thread."""
        loop = self._loop
        if loop is None:
            return

        async def close() -> None:
            if self._server is not None:
                self._server.close()
            for protocol in list(self._open):
                if protocol.transport is not None:
                    cast(asyncio.Transport, protocol.transport).abort()
            if self._server is not None:
                with suppress(Exception):
                    await asyncio.wait_for(self._server.wait_closed(), 5)

        with suppress(Exception):
            asyncio.run_coroutine_threadsafe(close(), loop).result(10)
        self._shutdown_loop()

    def _shutdown_loop(self) -> None:
        loop, thread = self._loop, self._thread
        if loop is None or thread is None:
            return

        async def cancel_tasks() -> None:
            current = asyncio.current_task()
            tasks = [t for t in asyncio.all_tasks() if t is not current]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

        with suppress(Exception):
            asyncio.run_coroutine_threadsafe(cancel_tasks(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()
        self._loop = self._thread = self._server = None

    def __enter__(self) -> ProviderSink:
        return self.start()

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    def _protocol(self) -> _ProviderSMTP:
        return _ProviderSMTP(
            self,
            hostname=f"mx.{self.name}.test",
            ident="ProviderSink ESMTP",
            data_size_limit=_DATA_SIZE_LIMIT,
            enable_SMTPUTF8=True,
            tls_context=self.tls_context,
            loop=self._loop,
        )

    @property
    def address(self) -> str:
        """``host:port``, for configuration that wants one string."""
        return f"{self.host}:{self.port}"

    # ------------------------------------------------------------------ behaviour

    def set_mode(self, rcpt_reply: str | None = None, data_reply: str | None = None) -> None:
        """Change behaviour for the next commands: ``rcpt_reply`` answers every RCPT (a ``421``
        also closes the connection) and ``data_reply`` every end of DATA; None gives the
        decision back to the magic recipients."""
        with self._lock:
            self._rcpt_override = rcpt_reply
            self._data_reply = data_reply

    def _rcpt_reply(self, address: str) -> str:
        override = self._rcpt_override
        if override is not None:
            reply = override
        else:
            magic, number = magic_of(address)
            if magic == "throttle":
                reply = THROTTLE_REPLY
            elif magic == "defer":
                reply = DEFER_REPLY
            elif magic == "unknown":
                reply = UNKNOWN_REPLY
            elif magic == "flaky":
                with self._lock:
                    self._attempts[address.lower()] += 1
                    failing = self._attempts[address.lower()] <= (number or 1)
                reply = FLAKY_REPLY if failing else RCPT_OK
            else:
                reply = RCPT_OK
        with self._lock:
            self._replies[reply[:3]] += 1
        return reply

    # ------------------------------------------------------------------ records

    def _record(
        self, mail_from: str, rcpt_to: tuple[str, ...], data: bytes, peer: tuple[str, int]
    ) -> None:
        header_end = data.find(b"\r\n\r\n")
        found = _MESSAGE_ID.search(data, 0, header_end if header_end >= 0 else len(data))
        message_id = found.group(1).decode("ascii", "replace") if found else None
        message = SunkMessage(
            mail_from,
            rcpt_to,
            data if self.keep_data else b"",
            hashlib.sha256(data).hexdigest(),
            len(data),
            message_id,
            (str(peer[0]), int(peer[1])),
            time.time(),
        )
        with self._arrived:
            self._messages.append(message)
            if message_id is not None:
                self._by_id[message_id] += 1
            self._arrived.notify_all()

    def _opened(self, protocol: _ProviderSMTP) -> None:
        with self._lock:
            self._open.add(protocol)
            self._connections += 1
            self._max_concurrent = max(self._max_concurrent, len(self._open))

    def _closed(self, protocol: _ProviderSMTP, messages: int) -> None:
        with self._lock:
            self._open.discard(protocol)
            self._per_connection.append(messages)

    @property
    def messages(self) -> list[SunkMessage]:
        """A copy of every accepted message, in arrival order."""
        with self._lock:
            return list(self._messages)

    def __iter__(self) -> Iterator[SunkMessage]:
        return iter(self.messages)

    def count(self) -> int:
        """How many messages were accepted."""
        with self._lock:
            return len(self._messages)

    def message_ids(self) -> Counter[str]:
        """How many times each Message-ID arrived."""
        with self._lock:
            return Counter(self._by_id)

    def duplicates(self) -> dict[str, int]:
        """Message-IDs that arrived more than once, with how many times."""
        with self._lock:
            return {mid: n for mid, n in self._by_id.items() if n > 1}

    def wait_for(self, count: int, timeout: float = 30.0) -> bool:
        """Block until at least ``count`` messages were accepted; False after ``timeout``."""
        deadline = time.monotonic() + timeout
        with self._arrived:
            while len(self._messages) < count:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._arrived.wait(left)
            return True

    @property
    def connections(self) -> int:
        """Connections accepted since start."""
        with self._lock:
            return self._connections

    @property
    def open_connections(self) -> int:
        with self._lock:
            return len(self._open)

    @property
    def max_concurrent(self) -> int:
        """The most connections open at once."""
        with self._lock:
            return self._max_concurrent

    def messages_per_connection(self) -> list[int]:
        """Messages accepted on each closed connection, in closing order."""
        with self._lock:
            return list(self._per_connection)

    def replies(self) -> Counter[str]:
        """How many RCPTs got each reply code (``"250"``, ``"421"``...)."""
        with self._lock:
            return Counter(self._replies)

    def clear(self) -> None:
        """Forget messages, counters and attempts (connection statistics included)."""
        with self._lock:
            self._messages.clear()
            self._by_id.clear()
            self._attempts.clear()
            self._replies.clear()
            self._per_connection.clear()
            self._connections = len(self._open)
            self._max_concurrent = len(self._open)
