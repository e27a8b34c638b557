"""Durability of the SMTP gateway as deployed: ``postwise serve`` as a real process, killed with
SIGKILL while clients are mid-transaction, then started again on the same data folder.

The clients behave like MTAs: a broken connection or a ``4xx`` means "try again later", a
``5xx`` is final. Afterwards every message a client was told ``250`` for must be at the sink
or in the quarantine (none lost), no refused one may be anywhere, and what the spool held at
the kill is finished by the restarted process; a message both resumed and retried arrives
twice (at-least-once), so duplicates are bounded by the transactions open at the kill.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import smtplib
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from email.message import EmailMessage
from pathlib import Path

import pytest
from gateway_harness import Sink, free_port

from postwise.core.db import open_database
from postwise.inbound.checks.base import Envelope
from postwise.inbound.quarantine import QuarantineStore
from postwise.inbound.spool import Spool

SENDER = "ann.baker@example.org"
RECIPIENT = "sam.lee@example.net"
MZ = b"MZ\x90\x00\x03\x00\x00\x00\x04\x00\x00\x00\xff\xff\x00\x00" + b"\x00" * 240
# Verdicts that do not hang on the model: an executable is refused, a missing Date held.
POLICY = """
[symbols.ATTACH_EXECUTABLE]
weight = 20.0
[symbols.MISSING_DATE]
weight = 12.0
"""
_MARKER = re.compile(rb"^Message-ID: <(dur-\d+)@load\.example>\r?$", re.MULTILINE)
_SUBJECT_MARKER = re.compile(r"\[(dur-\d+)\]")


def message(number: int) -> bytes:
    """Message ``number``: every 10th carries an executable (refused), every 10th + 5 lacks a
    Date (quarantined), the rest are plain notes (relayed)."""
    marker = f"dur-{number}"
    mail = EmailMessage()
    mail["From"] = f"Ann Baker <{SENDER}>"
    mail["To"] = RECIPIENT
    mail["Subject"] = f"Minutes of the review [{marker}]"
    if number % 10 != 5:
        mail["Date"] = "Tue, 03 Mar 2026 10:00:00 +0000"
    mail["Message-ID"] = f"<{marker}@load.example>"
    mail.set_content(f"Hello Sam,\n\nthe minutes of review {number} are attached.\n\nAnn\n")
    if number % 10 == 0:
        mail.add_attachment(MZ, maintype="application", subtype="octet-stream", filename="a.exe")
    return mail.as_bytes().replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")


def wait_for(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


# --------------------------------------------------------------------------- the process


class Serve:
    """``postwise serve`` (API and gateway; milter off) on free ports, restartable."""

    def __init__(self, data_dir: Path, next_hop: str, policy: Path) -> None:
        self.data_dir = data_dir
        self.smtp_port = free_port()
        self.env = dict(os.environ)  # postwise_env: data dir, test model, no config file
        self.env |= {
            "POSTWISE_NEXT_HOP": next_hop,
            "POSTWISE_SMTP_PORT": str(self.smtp_port),
            "POSTWISE_API_PORT": str(free_port()),
            "POSTWISE_MILTER_ENABLED": "false",
            "POSTWISE_POLICY_PATH": str(policy),
        }
        self.log = data_dir.parent / "serve.log"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 90.0) -> None:
        """Start and wait for the SMTP banner. Raises AssertionError with the log's tail."""
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "postwise.cli", "serve"],
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + timeout
        while True:
            assert self.process.poll() is None, f"serve exited:\n{self.log_tail()}"
            assert time.monotonic() < deadline, f"serve did not listen:\n{self.log_tail()}"
            try:
                with socket.create_connection(("127.0.0.1", self.smtp_port), timeout=10) as sock:
                    if sock.recv(512).startswith(b"220"):
                        sock.sendall(b"QUIT\r\n")
                        return
            except OSError:
                pass
            time.sleep(0.1)

    def kill(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(30)

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(30)

    def log_tail(self) -> str:
        return self.log.read_text(errors="replace")[-3000:] if self.log.exists() else ""

    def spooled(self) -> int:
        return Spool(self.data_dir / "spool").count()

    def quarantined(self) -> Counter[str]:
        """Markers of the quarantine's entries, one count per entry."""
        engine = open_database(f"sqlite:///{self.data_dir / 'postwise.sqlite3'}")
        try:
            entries = QuarantineStore(self.data_dir / "quarantine", engine).list(limit=100_000)
        finally:
            engine.dispose()
        found = (_SUBJECT_MARKER.search(entry.subject) for entry in entries)
        return Counter(match.group(1) if match else "?" for match in found)


@pytest.fixture
def sink() -> Iterator[Sink]:
    running = Sink().start()
    yield running
    running.controller.stop(no_assert=True)


@pytest.fixture
def serve(postwise_env: Path, sink: Sink, tmp_path: Path) -> Iterator[Serve]:
    policy = tmp_path / "policy.toml"
    policy.write_text(POLICY)
    process = Serve(postwise_env, sink.address, policy)
    yield process
    process.stop()


def sunk(sink: Sink) -> Counter[str]:
    found = (_MARKER.search(m.raw) for m in sink.messages)
    return Counter(match.group(1).decode() if match else "?" for match in found)


# --------------------------------------------------------------------------- the clients


@dataclass
class Clients:
    """MTA-like clients sharing a list of messages; ``answered`` counts final replies."""

    port: int
    messages: dict[str, bytes]
    final: dict[str, tuple[int, str]] = field(default_factory=dict)
    retries: Counter[str] = field(default_factory=Counter)
    answered: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)
    progress: threading.Condition = field(init=False)

    def __post_init__(self) -> None:
        self.progress = threading.Condition(self.lock)
        self._todo = list(self.messages)

    def _next(self) -> str | None:
        with self.lock:
            return self._todo.pop() if self._todo else None

    def _done(self, marker: str, code: int, reply: str) -> None:
        with self.progress:
            self.final[marker] = (code, reply)
            self.answered += 1
            self.progress.notify_all()

    def run_one_client(self) -> None:
        client: smtplib.SMTP | None = None
        while (marker := self._next()) is not None:
            pause, deadline = 0.1, time.monotonic() + 120
            while time.monotonic() < deadline:
                try:
                    if client is None:
                        client = smtplib.SMTP("127.0.0.1", self.port, timeout=60)
                        client.ehlo("client.example")
                    client.sendmail(SENDER, [RECIPIENT], self.messages[marker])
                    self._done(marker, 250, "")
                    break
                except smtplib.SMTPDataError as error:
                    code, reply, cause = error.smtp_code, str(error.smtp_error), "data"
                except smtplib.SMTPResponseException as error:  # before DATA
                    code, reply, cause = error.smtp_code, str(error.smtp_error), "command"
                    _close(client)
                    client = None
                except smtplib.SMTPRecipientsRefused as error:
                    [(code, text)] = error.recipients.values()
                    reply, cause = str(text), "recipient"
                    _close(client)
                    client = None
                except (smtplib.SMTPException, OSError) as error:
                    code, reply, cause = 0, str(error), type(error).__name__
                    _close(client)
                    client = None
                if code >= 500:
                    self._done(marker, code, reply)
                    break
                with self.lock:
                    self.retries[cause if code == 0 else f"{code} {cause}"] += 1
                time.sleep(pause)
                pause = min(pause * 1.5, 1.0)
        _close(client)

    def wait_until_answered(self, count: int, timeout: float) -> None:
        with self.progress:
            assert self.progress.wait_for(lambda: self.answered >= count, timeout), (
                f"only {self.answered} of {count} answered"
            )


def _close(client: smtplib.SMTP | None) -> None:
    """Close ``client`` if there is one."""
    if client is not None:
        with contextlib.suppress(OSError):
            client.close()


# --------------------------------------------------------------------------- the tests


def test_sigkill_mid_stream_loses_nothing(serve: Serve, sink: Sink) -> None:
    """400 messages from 20 clients; SIGKILL after 150 answers; restart; clients retry."""
    clients = Clients(serve.smtp_port, {f"dur-{n}": message(n) for n in range(400)})
    serve.start()
    threads = [threading.Thread(target=clients.run_one_client) for _ in range(20)]
    for thread in threads:
        thread.start()
    clients.wait_until_answered(150, timeout=120)
    serve.kill()
    spooled_at_kill = serve.spooled()
    serve.start()  # resumes what the spool holds
    for thread in threads:
        thread.join(180)
    assert not any(thread.is_alive() for thread in threads)
    wait_for(lambda: serve.spooled() == 0, 60, "the spool to empty")
    serve.stop()

    assert len(clients.final) == 400, "some messages never got a final answer"
    accepted = {m for m, (code, _) in clients.final.items() if code == 250}
    refused = {m: code for m, (code, _) in clients.final.items() if code != 250}
    relayed, quarantined = sunk(sink), serve.quarantined()
    delivered = relayed + quarantined
    lost = sorted(m for m in accepted if not delivered[m])
    refused_but_delivered = sorted(m for m in refused if delivered[m])
    duplicates = sum(n - 1 for n in delivered.values() if n > 1)
    summary = (
        f"accepted {len(accepted)}, refused {Counter(refused.values())}, "
        f"spooled at the kill {spooled_at_kill}, retries {dict(clients.retries)}, "
        f"duplicates {duplicates}"
    )
    assert lost == [], summary
    assert refused_but_delivered == [], summary
    assert set(refused.values()) == {550}, summary
    assert {f"dur-{n}" for n in range(0, 400, 10)} <= set(refused), summary
    assert relayed and quarantined, summary  # every path was taken
    assert delivered["?"] == 0
    assert set(delivered) == accepted, summary
    assert sum(clients.retries.values()) > 0, "the kill interrupted no transaction"
    # At-least-once: only what was in flight at the kill (one message a client) is doubled.
    assert duplicates <= 20, summary


def test_a_message_spooled_before_a_crash_is_finished_by_the_next_start(
    serve: Serve, sink: Sink, postwise_env: Path
) -> None:
    spool = Spool(postwise_env / "spool")
    envelope = Envelope(SENDER, (RECIPIENT,), "192.0.2.1", "mta.example")
    spool.put(message(1), envelope)  # relayed
    spool.put(message(5), envelope)  # quarantined
    spool.put(message(10), envelope)  # refused: nobody to tell, dropped
    (spool.incoming / "0000000000000-damaged.msg").write_bytes(b"not a spool file")
    serve.start()
    wait_for(lambda: serve.spooled() == 0, 60, "the spool to empty")
    wait_for(lambda: len(sink.messages) == 1, 30, "the relayed message")
    serve.stop()
    assert sunk(sink) == Counter({"dur-1": 1})
    [relayed] = sink.messages
    assert (relayed.mail_from, relayed.rcpt_to) == (SENDER, (RECIPIENT,))
    assert b"\r\nX-Postwise-Action: " in relayed.raw  # judged by this process
    assert serve.quarantined() == Counter({"dur-5": 1})
    assert [p.name for p in spool.corrupt.iterdir()] == ["0000000000000-damaged.msg"]
