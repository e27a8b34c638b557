"""SMTP gateway load and durability: many concurrent clients through ``postwise serve`` to a sink,
with every message accounted for.

The real gateway runs as its own process (``python -m postwise.cli serve``, data in a temporary
folder, the shipped model and policy unless ``--model-path``), relaying to a sink that runs as a
third process and logs the marker of every message it takes. ``--clients`` asyncio clients
(aiosmtplib, connections reused like an MTA does) send ``--messages`` messages: mostly ham, some
spam (quarantined by the shipped policy) and some phishing (refused with ``550``), each with a
unique ``X-Load-Marker`` header and the same marker in its Subject.

Afterwards the books must balance exactly: every message answered ``250`` is at the sink or in
the quarantine (``postwise quarantine list --json``), every other one got a final ``5xx``, none
was given up, nothing answered ``5xx`` reached the sink or the quarantine, the spool is empty.
``lost`` counts the ``250`` messages found nowhere; the run exits 1 when it is not 0.

``--kill-after K`` sends SIGKILL to the gateway once K messages have been answered (clients are
mid-transaction then), starts it again on the same data folder, and lets the clients retry what
their broken connections or ``4xx`` replies left open, as an MTA does. Messages spooled before
the kill are finished by the restarted process, so one a client also retried arrives twice:
``duplicates`` reports how many (at-least-once delivery), ``lost`` must still be 0.

    uv run python benchmarks/gateway_load.py                      # 50 clients, 10,000 messages
    uv run python benchmarks/gateway_load.py --kill-after 4000    # SIGKILL mid-run, restart
    uv run python benchmarks/gateway_load.py --clients 20 --messages 2000 --json load.json
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import re
import resource
import shlex
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from email.utils import format_datetime
from pathlib import Path
from typing import Any

import aiosmtplib

MARKER_HEADER = "X-Load-Marker"
_MARKER = re.compile(rb"^X-Load-Marker: (L\d+)\r?$", re.MULTILINE)
_SUBJECT_MARKER = re.compile(r"\[(L\d+)\]")
_TICKS = os.sysconf("SC_CLK_TCK")
_CLI = (sys.executable, "-m", "postwise.cli")


# --------------------------------------------------------------------------- the messages


@dataclass(frozen=True)
class Template:
    kind: str  # ham, spam or phish: what the sender meant, not what the filter must say
    weight: float
    sender: str
    subject: str
    text: str
    html: str | None = None


TEMPLATES = (
    Template(
        "ham",
        0.35,
        "Ann Baker <ann.baker@example.org>",
        "Minutes of the {day} review",
        "Hello {name},\n\nthe minutes from {day}'s review are below. We agreed to move the "
        "release to the {date}th and to\nask Priya for the test plan by Friday.\n\n"
        "1. Release date: {date} March\n2. Test plan: Priya\n3. Budget: unchanged\n\n"
        "Talk soon,\nAnn\n",
    ),
    Template(
        "ham",
        0.25,
        "Marc Dupont <marc@example.com>",
        "Re: lunch on {day}?",
        "{day} works for me, 12:30 at the usual place. I'll book a table for {count}.\n\n"
        "Marc\n\n> Anyone up for lunch on {day}?\n",
    ),
    Template(
        "ham",
        0.25,
        "Acme Store <orders@shop.example.com>",
        "Your order {order} has shipped",
        "Hi {name},\n\ngood news: your order {order} ({count} items) left our warehouse today "
        "and should arrive within 3 business days.\nTrack it at "
        "https://shop.example.com/orders/{order}\n\nThanks for shopping with us.\n"
        "Acme Store customer service\n",
    ),
    Template(
        "spam",
        0.06,
        "Best Pharmacy <deals@cheap-meds.biz>",
        "Cheap V1agra and C1alis - 90% OFF, no prescription!!!",
        "BUY NOW!!! Lowest prices on viagra, cialis, xanax. No prescription needed. 100% "
        "satisfaction guaranteed.\nClick here: http://cheap-meds.biz/buy?id={order} \n"
        "Unsubscribe: http://cheap-meds.biz/unsub\n",
        "<html><body><h1>90% OFF!!!</h1><a href='http://cheap-meds.biz/buy?id={order}'>"
        "BUY VIAGRA NOW</a></body></html>",
    ),
    Template(
        "spam",
        0.04,
        "Lottery Board <claims@winner-intl.info>",
        "CONGRATULATIONS you have WON $1,500,000.00 USD",
        "Dear Winner,\n\nYour email address has won the sum of $1,500,000.00 in our "
        "international lottery. To claim your prize send your full name, address, bank account "
        "number and a processing fee of $250 to our claims agent.\n\nACT NOW, this offer "
        "expires in 48 hours!\n",
    ),
    Template(
        "phish",
        0.05,
        "PayPal Security <service@paypal-secure-verify.com>",
        "Your account has been suspended - verify now",
        "Dear Customer,\n\nWe detected unusual activity and your PayPal account has been "
        "limited. Verify your identity within 24 hours or your account will be permanently "
        "suspended.\n\nVerify now: http://192.0.2.55/paypal/login.php?c={order}\n\n"
        "PayPal Security Team\n",
        "<html><body><p>Dear Customer,</p><p>Your PayPal account has been limited.</p>"
        "<a href='http://192.0.2.55/paypal/login.php?c={order}'>https://www.paypal.com/verify"
        "</a></body></html>",
    ),
)
_NAMES = ("Sam", "Priya", "Jonas", "Mei", "Olu", "Clara", "Tomasz", "Ines")
_DAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday")


@dataclass(frozen=True)
class LoadMessage:
    marker: str
    kind: str
    mail_from: str
    rcpt_to: str
    raw: bytes


def build_messages(count: int, seed: int) -> list[LoadMessage]:
    """``count`` messages in the template mix, each carrying its marker (``L000042``) in an
    ``X-Load-Marker`` header and at the end of its Subject."""
    rng = random.Random(seed)
    weights = [t.weight for t in TEMPLATES]
    start = datetime(2026, 3, 3, 8, 0, tzinfo=UTC)
    messages = []
    for index in range(count):
        template = rng.choices(TEMPLATES, weights)[0]
        marker = f"L{index:06d}"
        name = rng.choice(_NAMES)
        values = {
            "name": name,
            "day": rng.choice(_DAYS),
            "date": rng.randint(10, 28),
            "count": rng.randint(2, 9),
            "order": rng.randint(1000, 99999),
        }
        rcpt = f"{name.lower()}.{rng.randint(1, 400)}@example.net"
        message = EmailMessage()
        message["From"] = template.sender
        message["To"] = rcpt
        message["Subject"] = f"{template.subject.format(**values)} [{marker}]"
        message["Date"] = format_datetime(start + timedelta(seconds=index * 7))
        message["Message-ID"] = f"<{marker}.{rng.getrandbits(40):x}@load.example.org>"
        message[MARKER_HEADER] = marker
        message.set_content(template.text.format(**values))
        if template.html is not None:
            message.add_alternative(template.html.format(**values), subtype="html")
        raw = message.as_bytes().replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
        sender = template.sender.rpartition("<")[2].rstrip(">")
        messages.append(LoadMessage(marker, template.kind, sender, rcpt, raw))
    return messages


# --------------------------------------------------------------------------- the sink


class _RecordingHandler:
    """Takes every message and appends its marker (or ``?``) to a log, one line each."""

    def __init__(self, log: Any) -> None:
        self.log = log

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        found = _MARKER.search(envelope.original_content or b"")
        self.log.write((found.group(1).decode() if found else "?") + "\n")
        self.log.flush()
        return "250 2.0.0 Ok: queued"


def serve_sink(port: int, log_path: Path) -> None:
    """Run the sink in this process until SIGTERM (the ``--serve-sink`` mode)."""
    from aiosmtpd.smtp import SMTP

    async def run() -> None:
        loop = asyncio.get_running_loop()
        with log_path.open("a") as log:
            handler = _RecordingHandler(log)
            server = await loop.create_server(
                lambda: SMTP(handler, hostname="sink.test", data_size_limit=None),
                "127.0.0.1",
                port,
            )
            stop = asyncio.Event()
            loop.add_signal_handler(signal.SIGTERM, stop.set)
            await stop.wait()
            server.close()

    asyncio.run(run())


# --------------------------------------------------------------------------- processes


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def wait_for_smtp(port: int, process: subprocess.Popen[bytes], timeout: float) -> None:
    """Block until something on ``port`` greets with ``220``. Raises RuntimeError when
    ``process`` exits first or ``timeout`` passes."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"process {process.args!r} exited with {process.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
                if sock.recv(512).startswith(b"220"):
                    sock.sendall(b"QUIT\r\n")
                    return
        except OSError:
            pass
        time.sleep(0.05)
    raise RuntimeError(f"nothing answered SMTP on port {port} within {timeout:.0f} s")


def busy_cpu_seconds() -> float:
    """CPU time the whole machine has spent busy since boot, all cores (``/proc/stat``)."""
    user, nice, system, _idle, _iowait, irq, softirq, steal = (
        int(v) for v in Path("/proc/stat").read_text().split()[1:9]
    )
    return (user + nice + system + irq + softirq + steal) / _TICKS


def cpu_seconds(pid: int) -> float:
    """User + system CPU of a live process (``/proc/<pid>/stat``)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / _TICKS


@dataclass
class GatewayProcess:
    """``postwise serve`` with its state in ``data_dir``; restartable on the same folder."""

    data_dir: Path
    env: dict[str, str]
    smtp_port: int
    log_path: Path
    process: subprocess.Popen[bytes] | None = None
    cpu: float = 0.0  # CPU of the processes already gone
    starts: int = 0

    @classmethod
    def create(cls, data_dir: Path, next_hop: str, model_path: Path | None) -> GatewayProcess:
        env = {k: v for k, v in os.environ.items() if not k.startswith("POSTWISE_")}
        smtp_port = free_port()
        env |= {
            "POSTWISE_ENVIRONMENT": "local",
            "POSTWISE_DATA_DIR": str(data_dir),
            "POSTWISE_NEXT_HOP": next_hop,
            "POSTWISE_SMTP_PORT": str(smtp_port),
            "POSTWISE_API_PORT": str(free_port()),
            "POSTWISE_MILTER_ENABLED": "false",
            "POSTWISE_SMTP_HOSTNAME": "gateway.load.test",
        }
        if model_path is not None:
            env["POSTWISE_MODEL_PATH"] = str(model_path)
        return cls(data_dir, env, smtp_port, data_dir.parent / "gateway.log")

    def start(self, timeout: float = 120.0) -> None:
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [*_CLI, "serve"],
                env=self.env,
                cwd=self.data_dir.parent,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        self.starts += 1
        wait_for_smtp(self.smtp_port, self.process, timeout)

    def kill(self) -> None:
        """SIGKILL, no warning, as the OOM killer does. (A power cut would also drop what the
        kernel had not written out; only fsynced data survives that, which this does not test.)"""
        assert self.process is not None
        self.cpu += cpu_seconds(self.process.pid)
        self.process.send_signal(signal.SIGKILL)
        self.process.wait()

    def stop(self) -> None:
        """SIGTERM and wait (uvicorn stops, the gateway closes its sessions)."""
        if self.process is None or self.process.poll() is not None:
            return
        self.cpu += cpu_seconds(self.process.pid)
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(60)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    def total_cpu(self) -> float:
        live = 0.0
        if self.process is not None and self.process.poll() is None:
            live = cpu_seconds(self.process.pid)
        return self.cpu + live

    def spooled(self) -> int:
        return sum(1 for _ in (self.data_dir / "spool" / "incoming").glob("*.msg"))

    def quarantined_markers(self) -> Counter[str]:
        """Markers of every quarantine entry (one count per row), via the CLI."""
        listing = subprocess.run(
            [*_CLI, "quarantine", "list", "--json", "--limit", "10000000"],
            env=self.env,
            cwd=self.data_dir.parent,
            capture_output=True,
            text=True,
            check=True,
        )
        markers: Counter[str] = Counter()
        for line in listing.stdout.splitlines():
            found = _SUBJECT_MARKER.search(json.loads(line)["subject"])
            markers[found.group(1) if found else "?"] += 1
        return markers


# --------------------------------------------------------------------------- the clients


@dataclass
class Outcome:
    """The final answer for one message: its code (None: given up), reply, attempts."""

    code: int | None = None
    reply: str = ""
    attempts: int = 0


@dataclass
class Drive:
    """Shared state of one load run."""

    messages: list[LoadMessage]
    port: int
    timeout: float
    reuse: int
    give_up_after: float
    queue: asyncio.Queue[int] = field(default_factory=asyncio.Queue)
    outcomes: dict[str, Outcome] = field(default_factory=dict)
    latencies: list[float] = field(default_factory=list)  # every transaction that got a reply
    retry_causes: Counter[str] = field(default_factory=Counter)
    answered: int = 0
    answered_event: asyncio.Event = field(default_factory=asyncio.Event)
    connections: int = 0


def _reply_code(error: BaseException) -> tuple[int, str] | None:
    """The SMTP reply an aiosmtplib error carries, or None when the connection failed."""
    if isinstance(error, aiosmtplib.SMTPRecipientsRefused) and error.recipients:
        first = error.recipients[0]
        return first.code, first.message
    if isinstance(error, aiosmtplib.SMTPResponseException) and 200 <= error.code < 600:
        return error.code, error.message
    return None


class _Connection:
    """A client's SMTP connection, reused for ``drive.reuse`` messages, then replaced."""

    def __init__(self, drive: Drive) -> None:
        self.drive = drive
        self.client: aiosmtplib.SMTP | None = None
        self.used = 0

    async def get(self) -> aiosmtplib.SMTP:
        if self.client is not None and self.client.is_connected:
            if self.used < self.drive.reuse:
                return self.client
            await self.close()
        client = aiosmtplib.SMTP(
            hostname="127.0.0.1",
            port=self.drive.port,
            timeout=self.drive.timeout,
            start_tls=False,
            local_hostname="client.load.test",
        )
        self.client, self.used = client, 0
        await client.connect()
        self.drive.connections += 1
        return client

    def drop(self) -> None:
        if self.client is not None:
            self.client.close()
        self.client = None

    async def close(self) -> None:
        if self.client is not None and self.client.is_connected:
            with contextlib.suppress(aiosmtplib.SMTPException, OSError, TimeoutError):
                await self.client.quit()
        self.drop()


async def _attempt(drive: Drive, connection: _Connection, message: LoadMessage) -> tuple[int, str]:
    """Send ``message`` once; returns the reply, or code 0 when the connection broke (or could
    not be made) before one came."""
    errors = (aiosmtplib.SMTPException, OSError, TimeoutError)
    try:
        client = await connection.get()
    except errors as error:
        connection.drop()
        return _reply_code(error) or (0, type(error).__name__)
    connection.used += 1
    started = time.perf_counter()
    try:
        _, reply = await client.sendmail(message.mail_from, [message.rcpt_to], message.raw)
    except errors as error:
        answer = _reply_code(error)
        if answer is None:
            connection.drop()
            return 0, type(error).__name__
        drive.latencies.append(time.perf_counter() - started)
        if not isinstance(error, aiosmtplib.SMTPDataError):
            connection.drop()  # refused before DATA: start the next one afresh
        return answer
    drive.latencies.append(time.perf_counter() - started)
    return 250, reply


async def _client(drive: Drive) -> None:
    """One SMTP client: takes messages off the queue until it is empty; each is retried (new
    connection, growing pause) until it gets a final answer, as an MTA's queue would."""
    connection = _Connection(drive)
    while True:
        try:
            index = drive.queue.get_nowait()
        except asyncio.QueueEmpty:
            break
        message = drive.messages[index]
        outcome = drive.outcomes[message.marker]
        pause = 0.2
        first_try = time.monotonic()
        while time.monotonic() - first_try < drive.give_up_after:
            outcome.attempts += 1
            code, reply = await _attempt(drive, connection, message)
            if code == 250 or code >= 500:
                outcome.code, outcome.reply = code, reply
                break
            drive.retry_causes[reply if code == 0 else f"{code} reply"] += 1
            await asyncio.sleep(pause * random.uniform(0.5, 1.5))
            pause = min(pause * 1.6, 2.0)
        drive.answered += 1
        drive.answered_event.set()
    await connection.close()


async def _kill_and_restart(drive: Drive, gateway: GatewayProcess, after: int) -> dict[str, Any]:
    while drive.answered < after:
        drive.answered_event.clear()
        await drive.answered_event.wait()
    spooled_at_kill = gateway.spooled()
    killed_at = time.perf_counter()
    gateway.kill()
    spooled_after_kill = gateway.spooled()
    await asyncio.to_thread(gateway.start)
    return {
        "killed_after_answered": drive.answered,
        "spooled_at_kill": spooled_at_kill,
        "spooled_after_kill": spooled_after_kill,
        "downtime_s": round(time.perf_counter() - killed_at, 2),
    }


async def drive_load(
    drive: Drive, clients: int, gateway: GatewayProcess, kill_after: int | None
) -> tuple[float, dict[str, Any]]:
    """Run the clients to the end; returns the wall time and what the kill did."""
    for index in range(len(drive.messages)):
        drive.queue.put_nowait(index)
        drive.outcomes[drive.messages[index].marker] = Outcome()
    started = time.perf_counter()
    killer = None
    if kill_after is not None:
        killer = asyncio.create_task(_kill_and_restart(drive, gateway, kill_after))
    await asyncio.gather(*(_client(drive) for _ in range(clients)))
    wall = time.perf_counter() - started
    kill: dict[str, Any] = {}
    if killer is not None:
        kill = await killer
    return wall, kill


# --------------------------------------------------------------------------- the books


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    position = min(len(ordered) - 1, max(0, round(fraction * (len(ordered) - 1))))
    return ordered[position]


def account(
    messages: list[LoadMessage],
    outcomes: dict[str, Outcome],
    sunk: Counter[str],
    quarantined: Counter[str],
) -> dict[str, Any]:
    """Balance the books: what the clients were told against what the sink and the quarantine
    hold."""
    accepted = {m for m, o in outcomes.items() if o.code == 250}
    refused = {m for m, o in outcomes.items() if o.code is not None and o.code != 250}
    given_up = {m for m, o in outcomes.items() if o.code is None}
    delivered = sunk + quarantined
    lost = sorted(m for m in accepted if delivered[m] == 0)
    refused_but_delivered = sorted(m for m in refused if delivered[m] > 0)
    kinds = {m.marker: m.kind for m in messages}
    by_kind: dict[str, Counter[str]] = {}
    for marker, outcome in outcomes.items():
        if outcome.code == 250:
            where = "quarantined" if "quarantined" in outcome.reply else "relayed"
        else:
            where = str(outcome.code)
        by_kind.setdefault(kinds[marker], Counter())[where] += 1
    return {
        "messages": len(messages),
        "accepted_250": len(accepted),
        "accepted_relayed": sum(1 for m in accepted if "quarantined" not in outcomes[m].reply),
        "accepted_quarantined": sum(1 for m in accepted if "quarantined" in outcomes[m].reply),
        "refused": dict(sorted(Counter(str(outcomes[m].code) for m in refused).items())),
        "given_up": len(given_up),
        "at_sink": sum(sunk.values()),
        "in_quarantine": sum(quarantined.values()),
        "unmarked_at_sink": sunk["?"],
        "lost": len(lost),
        "lost_markers": lost[:20],
        "refused_but_delivered": len(refused_but_delivered),
        "refused_but_delivered_markers": refused_but_delivered[:20],
        "delivered_without_250": sum(1 for m in given_up if delivered[m] > 0),
        "duplicates": sum(max(0, n - 1) for m, n in delivered.items() if m != "?"),
        "duplicated_messages": sum(1 for m, n in delivered.items() if m != "?" and n > 1),
        "by_kind": {kind: dict(counts) for kind, counts in sorted(by_kind.items())},
        "balanced": len(accepted) + len(refused) == len(messages) and not given_up,
    }


def markdown(result: dict[str, Any]) -> str:
    books = result["books"]
    lat = result["latency_ms"]
    cpu = result["cpu_s"]
    refused = ", ".join(f"{n} x {code}" for code, n in books["refused"].items()) or "none"
    rows = [
        ("command", f"`{result['command']}`"),
        ("clients / messages", f"{result['clients']} / {books['messages']:,}"),
        ("throughput", f"{result['messages_per_second']:.1f} messages/s"),
        (
            "latency per transaction (MAIL to reply after DATA)",
            f"p50 {lat['p50']:.0f} ms, p95 {lat['p95']:.0f} ms, p99 {lat['p99']:.0f} ms, "
            f"max {lat['max']:.0f} ms",
        ),
        (
            "answered 250",
            f"{books['accepted_250']:,} ({books['accepted_relayed']:,} relayed, "
            f"{books['accepted_quarantined']:,} quarantined)",
        ),
        ("refused (final)", refused),
        ("given up", str(books["given_up"])),
        ("at the sink / in the quarantine", f"{books['at_sink']:,} / {books['in_quarantine']:,}"),
        ("**lost** (250 but nowhere)", f"**{books['lost']}**"),
        ("refused but delivered", str(books["refused_but_delivered"])),
        (
            "duplicates (extra copies)",
            f"{books['duplicates']} (of {books['duplicated_messages']} messages)",
        ),
        ("retries by clients", f"{result['retries']} ({result['retry_causes'] or 'none'})"),
        ("left in the spool", str(result["spool_left"])),
        (
            "CPU seconds: gateway / sink / clients / other processes",
            f"{cpu['gateway']:.0f} / {cpu['sink']:.0f} / {cpu['clients']:.0f} / "
            f"{cpu['other_processes_during_the_run']:.0f} (wall {result['wall_s']:.0f} s, "
            f"{os.cpu_count()} cores)",
        ),
    ]
    if result.get("kill"):
        kill = result["kill"]
        rows.insert(
            2,
            (
                "SIGKILL",
                f"after {kill['killed_after_answered']:,} answered; "
                f"{kill['spooled_after_kill']} left in the spool; back in {kill['downtime_s']} s",
            ),
        )
    lines = ["| | |", "|---|---|"] + [f"| {name} | {value} |" for name, value in rows]
    return "\n".join(lines)


# --------------------------------------------------------------------------- main


def run(args: argparse.Namespace) -> dict[str, Any]:
    messages = build_messages(args.messages, args.seed)
    folder = Path(tempfile.mkdtemp(prefix="postwise-load-"))
    sink_port = free_port()
    sink_log = folder / "sink.log"
    sink_log.touch()
    sink = subprocess.Popen(
        [sys.executable, __file__, "--serve-sink", str(sink_port), str(sink_log)],
        stdout=subprocess.DEVNULL,
    )
    gateway = GatewayProcess.create(folder / "data", f"127.0.0.1:{sink_port}", args.model_path)
    try:
        wait_for_smtp(sink_port, sink, 60)
        gateway.start()
        drive = Drive(
            messages,
            gateway.smtp_port,
            timeout=args.timeout,
            reuse=args.reuse,
            give_up_after=args.give_up_after,
        )
        usage_before = resource.getrusage(resource.RUSAGE_SELF)
        busy_before, ours_before = busy_cpu_seconds(), gateway.total_cpu() + cpu_seconds(sink.pid)
        wall, kill = asyncio.run(drive_load(drive, args.clients, gateway, args.kill_after))
        busy = busy_cpu_seconds() - busy_before
        usage_after = resource.getrusage(resource.RUSAGE_SELF)
        ours = gateway.total_cpu() + cpu_seconds(sink.pid) - ours_before
        deadline = time.monotonic() + 120  # a restarted gateway finishes the spool at start
        while gateway.spooled() and time.monotonic() < deadline:
            time.sleep(0.2)
        spool_left = gateway.spooled()
        gateway.stop()
        sink_cpu = cpu_seconds(sink.pid)
    finally:
        gateway.stop()
        sink.send_signal(signal.SIGTERM)
        sink.wait(30)
    sunk = Counter(sink_log.read_text().split())
    books = account(messages, drive.outcomes, sunk, gateway.quarantined_markers())
    clients_cpu = (usage_after.ru_utime + usage_after.ru_stime) - (
        usage_before.ru_utime + usage_before.ru_stime
    )
    others_cpu = max(0.0, busy - ours - clients_cpu)
    result: dict[str, Any] = {
        "command": "uv run python benchmarks/gateway_load.py " + shlex.join(sys.argv[1:]),
        "clients": args.clients,
        "wall_s": round(wall, 2),
        "messages_per_second": round(len(messages) / wall, 1),
        "latency_ms": {
            name: round(1000 * percentile(drive.latencies, q), 1)
            for name, q in (("p50", 0.5), ("p95", 0.95), ("p99", 0.99), ("max", 1.0))
        },
        "transactions": len(drive.latencies),
        "connections": drive.connections,
        "retries": sum(o.attempts - 1 for o in drive.outcomes.values()),
        "retry_causes": dict(drive.retry_causes),
        "spool_left": spool_left,
        "kill": kill,
        "gateway_starts": gateway.starts,
        "cpu_s": {
            "gateway": round(gateway.total_cpu(), 1),
            "sink": round(sink_cpu, 1),
            "clients": round(clients_cpu, 1),
            "other_processes_during_the_run": round(others_cpu, 1),
        },
        "books": books,
        "data_folder": str(folder) if args.keep else None,
    }
    if not args.keep:
        subprocess.run(["rm", "-rf", str(folder)], check=False)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=50, help="concurrent SMTP clients")
    parser.add_argument("--messages", type=int, default=10_000)
    parser.add_argument(
        "--kill-after",
        type=int,
        default=None,
        metavar="K",
        help="SIGKILL the gateway after K answered messages, then restart it",
    )
    parser.add_argument("--reuse", type=int, default=50, help="messages per client connection")
    parser.add_argument("--timeout", type=float, default=120.0, help="client timeout per reply")
    parser.add_argument(
        "--give-up-after",
        type=float,
        default=300.0,
        help="seconds a client keeps retrying one message",
    )
    parser.add_argument(
        "--model-path", type=Path, default=None, help="model folder (default: the shipped model)"
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", type=Path, default=None, help="also write the result here")
    parser.add_argument("--keep", action="store_true", help="keep the temporary data folder")
    parser.add_argument("--serve-sink", nargs=2, metavar=("PORT", "LOG"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.kill_after is not None and not 0 < args.kill_after < args.messages:
        parser.error("--kill-after must be between 0 and --messages")
    if args.serve_sink:
        serve_sink(int(args.serve_sink[0]), Path(args.serve_sink[1]))
        return
    result = run(args)
    print(markdown(result))
    if args.json is not None:
        args.json.write_text(json.dumps(result, indent=2) + "\n")
    books = result["books"]
    if books["lost"] or not books["balanced"] or books["refused_but_delivered"]:
        print("\nTHE BOOKS DO NOT BALANCE:", json.dumps(books, indent=2), file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
