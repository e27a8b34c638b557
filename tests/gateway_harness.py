"""Real servers for gateway tests: an aiosmtpd sink that behaves like a provider's MX, and the
Postwise gateway running in its own thread and event loop. Tests talk to both over loopback
sockets with ``smtplib``.

The sink's magic local parts choose its reply, KumoMTA-style:
``tempfail@…`` gets ``451`` at RCPT, ``reject@…`` gets ``550``, ``datafail@…`` gets ``554``
after DATA; anything else is accepted and recorded.
"""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import Coroutine
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session

from postwise.core.settings import Settings
from postwise.inbound.gateway import FeedbackSink, Gateway
from postwise.inbound.milter import MilterServer
from postwise.inbound.scanner import Scanner
from postwise.services import InboundServices

T = TypeVar("T")


@dataclass(frozen=True)
class SunkMessage:
    mail_from: str
    rcpt_to: tuple[str, ...]
    raw: bytes


class SinkHandler:
    def __init__(self) -> None:
        self.messages: list[SunkMessage] = []
        self.lock = threading.Lock()

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        local = address.split("@", 1)[0].lower()
        if local == "tempfail":
            return "451 4.3.0 Mailbox busy, try later"
        if local == "reject":
            return "550 5.1.1 No such user"
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 Ok"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        if any(r.split("@", 1)[0].lower() == "datafail" for r in envelope.rcpt_tos):
            return "554 5.6.0 Content refused"
        with self.lock:
            self.messages.append(
                SunkMessage(
                    envelope.mail_from or "",
                    tuple(envelope.rcpt_tos),
                    envelope.original_content or b"",
                )
            )
        return "250 2.0.0 Ok: queued"


def free_port() -> int:
    """A loopback TCP port nothing listens on now (aiosmtpd's Controller cannot take 0)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def free_ports(count: int) -> list[int]:
    """``count`` distinct free loopback ports (held open together while chosen)."""
    probes = [socket.socket() for _ in range(count)]
    try:
        for probe in probes:
            probe.bind(("127.0.0.1", 0))
        return [int(probe.getsockname()[1]) for probe in probes]
    finally:
        for probe in probes:
            probe.close()


class Sink:
    """An aiosmtpd server on a free loopback port that records what it accepts."""

    def __init__(self) -> None:
        self.handler = SinkHandler()
        self.controller = Controller(self.handler, hostname="127.0.0.1", port=free_port())

    def start(self) -> Sink:
        self.controller.start()
        return self

    def stop(self) -> None:
        self.controller.stop()

    @property
    def port(self) -> int:
        return int(self.controller.port)

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def messages(self) -> list[SunkMessage]:
        with self.handler.lock:
            return list(self.handler.messages)


def gateway_settings(data_dir: Path, next_hop: str | None, **overrides: Any) -> Settings:
    """Settings for a gateway on a free port with its state in ``data_dir``."""
    values: dict[str, Any] = {
        "data_dir": data_dir,
        "next_hop": next_hop,
        "smtp_port": 0,
        "milter_port": 0,
        "smtp_hostname": "postwise.test",
        "next_hop_timeout": 10.0,
        "environment": "test",
    }
    values.update(overrides)
    return Settings(**values)


class RunningGateway:
    """The gateway serving in a thread of its own; ``port`` is where it listens."""

    def __init__(
        self,
        settings: Settings,
        scanner: Scanner,
        milter: bool = False,
        feedback: FeedbackSink | None = None,
    ) -> None:
        self.settings = settings
        self.feedback = feedback
        self.with_milter = milter
        self.milter: MilterServer | None = None
        self.milter_port = 0
        self.services = InboundServices.from_settings(settings, scanner)
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.gateway: Gateway | None = None
        self.port = 0

    def call(self, coroutine: Coroutine[Any, Any, T], timeout: float = 60.0) -> T:
        """Run ``coroutine`` on the gateway's loop and wait for its result."""
        future: Future[T] = asyncio.run_coroutine_threadsafe(coroutine, self.loop)
        return future.result(timeout)

    def start(self) -> RunningGateway:
        self.thread.start()

        async def start() -> int:
            self.gateway = self.services.gateway(self.feedback)
            await self.gateway.resume()
            return await self.gateway.start(self.settings.smtp_host, 0)

        self.port = self.call(start())
        if self.with_milter:
            self.milter = MilterServer(self.services.pipeline, self.settings.smtp_hostname)
            self.milter_port = self.call(self.milter.start("127.0.0.1", 0))
        return self

    def resume(self) -> int:
        assert self.gateway is not None
        return self.call(self.gateway.resume())

    def stop(self) -> None:
        if self.milter is not None:
            self.call(self.milter.close())
        if self.gateway is not None:
            self.call(self.gateway.close())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()
        self.services.close()
