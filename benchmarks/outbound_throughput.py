"""Outbound delivery throughput: Postwise and Debian's Postfix deliver the same messages to the
same provider-like sinks, in one run, and the messages/s of each are compared.

``--sinks`` ProviderSinks (``postwise.testing``) listen on 127.0.0.2, 127.0.0.3, ... and take
every message (only its hash and size are kept). ``--messages`` messages (2-10 kB of plain text,
each with a unique Message-ID) go to one recipient each, ``accept+<i>@d<j>.bench.test``, spread
over ``--domains`` domains, the same number of domains per sink.

Postfix: a private instance (``postwise.testing.PrivatePostfix``) routes each domain to its sink
with ``transport_maps``, puts everything it receives on hold, and is given all messages over SMTP
(``--connections`` sessions of ``--per-connection`` messages: the injection rate is reported
apart). Then the hold queue is released and the clock runs until the sinks hold all messages.
Shaping is Postfix's own: at most ``--concurrency`` connections per destination domain
(``default_destination_concurrency_limit``, Postfix's default is 20), connections reused
(``smtp_connection_cache_on_demand``).

Postwise: the same messages are queued through the Submitter (what the API and the submission
port call) and held (``queue hold``); ``uv run postwise serve`` starts, and once its API answers
the queue is released (``POST /v1/queue/release``). It delivers over MX records a local DNS
server points at the sinks, with shaping on (the shipped policy plus a table per domain: at most
``--concurrency`` connections, 100 messages per connection, rate limits above reach). For both,
the clock runs from the release until the sinks hold every message.

Every run counts, per Message-ID, what arrived twice (``duplicates``) and what never arrived
(``missing``); the run exits 1 when either is not 0.

    uv run python benchmarks/outbound_throughput.py                   # 20,000 messages, both
    uv run python benchmarks/outbound_throughput.py --only postfix --messages 2000 --json out.json
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from email.utils import format_datetime
from pathlib import Path
from typing import Any

from postwise.core.db import open_database
from postwise.core.settings import Settings
from postwise.outbound.queue import OutboundQueue
from postwise.outbound.submission import Submitter
from postwise.outbound.suppression import SuppressionList
from postwise.testing import (
    PrivatePostfix,
    ProviderSink,
    ServeProcess,
    Submission,
    domain_shaping,
    ensure_postfix,
    free_port,
    sink_zone,
)

_TICKS = os.sysconf("SC_CLK_TCK")
SENDER = "news@sender.bench.test"

# --------------------------------------------------------------------------- the messages

_TEXT = (
    "account order delivery team update meeting report customer invoice weekly offer "
    "product release schedule thanks please review attached details shipping payment "
    "support question answer project plan budget summary morning afternoon tomorrow "
    "newsletter event webinar register discount members feature improvement security "
    "password reminder subscription renewal feedback survey results quarter growth"
)
_WORDS = _TEXT.split()
_NAMES = ("Sam", "Priya", "Jonas", "Mei", "Olu", "Clara", "Tomasz", "Ines")


@dataclass(frozen=True)
class BenchMessage:
    message_id: str
    mail_from: str
    rcpt_to: str
    data: bytes


def _paragraph(rng: random.Random) -> str:
    sentences = []
    for _ in range(rng.randint(2, 6)):
        words = [rng.choice(_WORDS) for _ in range(rng.randint(6, 16))]
        sentences.append(" ".join(words).capitalize() + ".")
    return " ".join(sentences)


def domains_for(sinks: int, domains: int) -> list[str]:
    return [f"d{j}.bench.test" for j in range(max(domains, sinks))]


def build_messages(count: int, domains: Sequence[str], seed: int) -> list[BenchMessage]:
    """``count`` plain-text newsletters of 2-10 kB, one recipient each, round-robin over
    ``domains``, each with a unique Message-ID."""
    rng = random.Random(seed)
    start = datetime(2026, 3, 3, 8, 0, tzinfo=UTC)
    messages = []
    for index in range(count):
        rcpt = f"accept+{index}@{domains[index % len(domains)]}"
        message_id = f"<b{index:06d}.{rng.getrandbits(32):08x}@sender.bench.test>"
        target = rng.randint(2_000, 10_000)
        parts = [f"Hello {rng.choice(_NAMES)},\n"]
        size = 0
        while size < target - 300:
            paragraph = _paragraph(rng)
            lines = [paragraph[i : i + 76] for i in range(0, len(paragraph), 76)]
            parts.append("\n".join(lines) + "\n")
            size += len(paragraph) + len(lines)
        parts.append("Unsubscribe: https://sender.bench.test/u/" + f"{index:x}\n")
        mail = EmailMessage()
        mail["From"] = f"Bench News <{SENDER}>"
        mail["To"] = rcpt
        mail["Subject"] = f"Your weekly {rng.choice(_WORDS)} update #{index}"
        mail["Date"] = format_datetime(start + timedelta(seconds=index))
        mail["Message-ID"] = message_id
        mail.set_content("\n".join(parts))
        data = mail.as_bytes().replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
        messages.append(BenchMessage(message_id, SENDER, rcpt, data))
    return messages


# --------------------------------------------------------------------------- measuring


def busy_cpu_seconds() -> float:
    """CPU time the whole machine has spent busy since boot, all cores (``/proc/stat``)."""
    user, nice, system, _idle, _iowait, irq, softirq, steal = (
        int(v) for v in Path("/proc/stat").read_text().split()[1:9]
    )
    return (user + nice + system + irq + softirq + steal) / _TICKS


def own_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def sink_total(sinks: Sequence[ProviderSink]) -> int:
    return sum(sink.count() for sink in sinks)


def wait_for_sinks(sinks: Sequence[ProviderSink], count: int, timeout: float) -> float | None:
    """Seconds until the sinks together hold ``count`` messages, or None after ``timeout``."""
    started = time.perf_counter()
    while sink_total(sinks) < count:
        if time.perf_counter() - started > timeout:
            return None
        time.sleep(0.02)
    return time.perf_counter() - started


def books(sinks: Sequence[ProviderSink], messages: Sequence[BenchMessage]) -> dict[str, Any]:
    """Per Message-ID: how many arrived, how many twice or more, how many never."""
    arrived: Counter[str] = Counter()
    for sink in sinks:
        arrived.update(sink.message_ids())
    expected = {m.message_id for m in messages}
    missing = sorted(mid for mid in expected if arrived[mid] == 0)
    return {
        "delivered": sum(arrived.values()),
        "duplicates": sum(n - 1 for n in arrived.values() if n > 1),
        "missing": len(missing),
        "missing_ids": missing[:10],
        "unexpected": sum(n for mid, n in arrived.items() if mid not in expected),
    }


def sink_stats(sinks: Sequence[ProviderSink]) -> dict[str, Any]:
    connections = sum(sink.connections for sink in sinks)
    return {
        "connections": connections,
        "max_concurrent_per_sink": max(sink.max_concurrent for sink in sinks),
        "messages_per_connection": round(sink_total(sinks) / max(1, connections), 1),
    }


def reset(sinks: Sequence[ProviderSink]) -> None:
    for sink in sinks:
        sink.clear()


# --------------------------------------------------------------------------- the senders


def run_postfix(
    sinks: Sequence[ProviderSink], messages: Sequence[BenchMessage], args: argparse.Namespace
) -> dict[str, Any]:
    """Debian's Postfix: inject everything on hold, release, time until the sinks have it."""
    reason = ensure_postfix()
    if reason is not None:
        raise RuntimeError(f"Postfix is not usable here: {reason}")
    reset(sinks)
    domains = domains_for(len(sinks), args.domains)
    transport = {
        domain: f"smtp:[{sinks[j % len(sinks)].host}]:{sinks[j % len(sinks)].port}"
        for j, domain in enumerate(domains)
    }
    port = free_port()
    postfix = PrivatePostfix(
        {port: PrivatePostfix.hold_on_arrival()},
        relayhost="",
        transport=transport,
        main={
            "default_destination_concurrency_limit": str(args.concurrency),
            "smtp_destination_concurrency_limit": str(args.concurrency),
            "smtp_connection_cache_on_demand": "yes",  # Postfix's default
            "default_process_limit": str(max(100, args.concurrency * len(domains) + 20)),
            "qmgr_message_active_limit": str(max(20_000, len(messages) + 100)),
        },
    )
    try:
        postfix.start()
        submissions = [Submission(m.mail_from, (m.rcpt_to,), m.data) for m in messages]
        started = time.perf_counter()
        accepted = postfix.submit(
            port, submissions, connections=args.connections, per_connection=args.per_connection
        )
        injection_s = time.perf_counter() - started
        deadline = time.monotonic() + 120
        while postfix.queue_counts()["hold"] < accepted and time.monotonic() < deadline:
            time.sleep(0.1)
        held = postfix.queue_counts()["hold"]
        early = sink_total(sinks)

        busy_before, own_before = busy_cpu_seconds(), own_cpu_seconds()
        released = time.perf_counter()
        postfix.release_all()
        delivery_s = wait_for_sinks(sinks, len(messages), args.timeout)
        busy = busy_cpu_seconds() - busy_before
        own = own_cpu_seconds() - own_before
        if delivery_s is None:
            delivery_s = time.perf_counter() - released
            timed_out = True
        else:
            timed_out = False
        time.sleep(1.0)  # anything arriving late (a duplicate) is counted too
        return {
            "sender": "postfix",
            "version": _postfix_version(),
            "accepted_by_sender": accepted,
            "held_before_release": held,
            "delivered_before_release": early,
            "injection_s": round(injection_s, 2),
            "injection_per_s": round(accepted / injection_s, 1),
            "delivery_s": round(delivery_s, 2),
            "delivery_per_s": round(len(messages) / delivery_s, 1),
            "timed_out": timed_out,
            "cpu_s": {"machine_busy": round(busy, 1), "sinks_and_driver": round(own, 1)},
            "shaping": {
                "per_destination_concurrency": args.concurrency,
                "destinations": len(domains),
            },
            **books(sinks, messages),
            **sink_stats(sinks),
        }
    except BaseException:
        print(postfix.log()[-3000:], file=sys.stderr)
        raise
    finally:
        postfix.stop()


def run_postwise(
    sinks: Sequence[ProviderSink], messages: Sequence[BenchMessage], args: argparse.Namespace
) -> dict[str, Any]:
    """Postwise as an operator runs it: every message is queued first (through the same
    Submitter the API and the submission port use: checked, completed, written durably),
    then held (``queue hold``, as Postfix's hold queue); ``uv run postwise serve`` starts, and
    once its API answers the queue is released (``POST /v1/queue/release``); it resolves the
    MX records through a local DNS server and delivers within the shaping policy. The clock
    runs from the release until the sinks hold every message, as for Postfix."""
    reset(sinks)
    domains = domains_for(len(sinks), args.domains)
    work = Path(tempfile.mkdtemp(prefix="postwise-bench-"))
    shaping = work / "shaping.toml"
    shaping.write_text(domain_shaping(domains, args.concurrency))
    zone = sink_zone(sinks, domains).start()
    server = ServeProcess(
        work / "data",
        zone,
        sinks[0].port,
        shaping,
        concurrency=args.concurrency * len(domains),
        extra_env={"POSTWISE_DELIVERY_HOSTNAME": "out.bench.test"},
    )
    settings = Settings(
        data_dir=work / "data",
        shaping_policy_path=shaping,
        delivery_hostname="out.bench.test",
    )
    engine = open_database(settings.resolved_database_url)
    queue = OutboundQueue(engine, settings.outbound_spool_dir)
    submitter = Submitter(settings, queue, SuppressionList(engine))
    try:
        started = time.perf_counter()
        for m in messages:
            submitter.submit(m.mail_from, [m.rcpt_to], m.data, source="api", submitted_by="bench")
        injection_s = time.perf_counter() - started
        queued = queue.depth()["queued"]
        queue.hold()  # like Postfix's hold queue: released once the server is up
        engine.dispose()
        started_at = time.perf_counter()
        server.start()
        server.wait_ready(timeout=120)
        startup_s = time.perf_counter() - started_at
        busy_before, own_before = busy_cpu_seconds(), own_cpu_seconds()
        released = time.perf_counter()
        server.post("/v1/queue/release")
        first = wait_for_sinks(sinks, 1, args.timeout)
        delivery_s = wait_for_sinks(sinks, len(messages), args.timeout)
        busy = busy_cpu_seconds() - busy_before
        own = own_cpu_seconds() - own_before
        timed_out = delivery_s is None
        total_s = time.perf_counter() - released
        time.sleep(1.0)  # anything arriving late (a duplicate) is counted too
        steady_s = total_s - (first or 0.0)
        return {
            "sender": "postwise",
            "version": _postwise_version(),
            "accepted_by_sender": queued,
            "injection_s": round(injection_s, 2),
            "injection_per_s": round(len(messages) / injection_s, 1),
            "startup_s": round(startup_s, 2),
            "first_delivery_s": round(first or 0.0, 3),
            "delivery_s": round(total_s, 2),
            "delivery_per_s": round(len(messages) / total_s, 1),
            "steady_per_s": round(len(messages) / max(steady_s, 1e-9), 1),
            "timed_out": timed_out,
            "cpu_s": {"machine_busy": round(busy, 1), "sinks_and_driver": round(own, 1)},
            "shaping": {
                "policy": "shipped conf/shaping.toml + a [domain] table per bench domain",
                "max_connections_per_domain": args.concurrency,
                "max_messages_per_connection": 100,
                "messages_per_minute": 600000,
            },
            **books(sinks, messages),
            **sink_stats(sinks),
        }
    except BaseException:
        print(server.log()[-3000:], file=sys.stderr)
        raise
    finally:
        server.stop()
        zone.stop()
        shutil.rmtree(work, ignore_errors=True)


def _postwise_version() -> str:
    from postwise import __version__

    return __version__


def _postfix_version() -> str:

    result = subprocess.run(
        ["/usr/sbin/postconf", "-d", "-h", "mail_version"], capture_output=True, text=True
    )
    return result.stdout.strip()


# --------------------------------------------------------------------------- output


def markdown(result: dict[str, Any]) -> str:
    runs: dict[str, dict[str, Any]] = result["runs"]
    names = list(runs)
    rows: list[tuple[str, Callable[[dict[str, Any]], str]]] = [
        ("delivery (release -> all at the sinks)", lambda r: f"{r['delivery_per_s']:,.0f} msg/s"),
        ("delivery time", lambda r: f"{r['delivery_s']:.1f} s"),
        ("server start before the release (not timed)", _startup_cell),
        ("injection (into the held queue)", lambda r: f"{r.get('injection_per_s', 0):,.0f} msg/s"),
        ("delivered / duplicates / missing", _books_cell),
        ("connections (msgs per connection)", _connections_cell),
        ("max connections at one sink", lambda r: str(r["max_concurrent_per_sink"])),
        ("CPU s, machine busy during delivery", lambda r: f"{r['cpu_s']['machine_busy']:.0f}"),
    ]
    lines = ["| | " + " | ".join(names) + " |", "|---" * (len(names) + 1) + "|"]
    for label, cell in rows:
        lines.append(f"| {label} | " + " | ".join(cell(runs[n]) for n in names) + " |")
    if "ratio_postwise_to_postfix" in result:
        lines.append(f"\nPostwise / Postfix delivery rate: {result['ratio_postwise_to_postfix']}x")
    for note in result["notes"]:
        lines.append(f"\nNote: {note}")
    return "\n".join(lines)


def _startup_cell(run: dict[str, Any]) -> str:
    return f"{run['startup_s']:.1f} s" if "startup_s" in run else "running"


def _books_cell(run: dict[str, Any]) -> str:
    return f"{run['delivered']:,} / {run['duplicates']} / {run['missing']}"


def _connections_cell(run: dict[str, Any]) -> str:
    return f"{run['connections']:,} ({run['messages_per_connection']})"


# --------------------------------------------------------------------------- main


def run(args: argparse.Namespace) -> dict[str, Any]:
    hosts = [f"127.0.0.{2 + k}" for k in range(args.sinks)]
    # One port on every sink address, as port 25 on the internet: Postwise dials
    # ``delivery_port`` on whatever address the MX resolves to.
    port = free_port(hosts[0])
    sinks = [ProviderSink(h, port, name=f"p{k}", keep_data=False) for k, h in enumerate(hosts)]
    messages = build_messages(args.messages, domains_for(args.sinks, args.domains), args.seed)
    sizes = [len(m.data) for m in messages]
    result: dict[str, Any] = {
        "command": "uv run python benchmarks/outbound_throughput.py " + shlex.join(sys.argv[1:]),
        "messages": len(messages),
        "bytes_mean": round(sum(sizes) / max(1, len(sizes))),
        "sinks": [f"{s.host}" for s in sinks],
        "domains": len(domains_for(args.sinks, args.domains)),
        "cores": os.cpu_count(),
        "runs": {},
        "notes": [],
    }
    senders: list[tuple[str, Callable[..., dict[str, Any]]]] = []
    if args.only in ("postfix", "both"):
        senders.append(("postfix", run_postfix))
    if args.only in ("postwise", "both"):
        senders.append(("postwise", run_postwise))
    for sink in sinks:
        sink.start()
    try:
        for name, sender in senders:
            try:
                result["runs"][name] = sender(sinks, messages, args)
            except NotImplementedError as missing:
                result["notes"].append(f"{name} skipped: {missing}")
    finally:
        for sink in sinks:
            sink.stop()
    runs = result["runs"]
    if "postfix" in runs and "postwise" in runs:
        ratio = runs["postwise"]["delivery_per_s"] / runs["postfix"]["delivery_per_s"]
        result["ratio_postwise_to_postfix"] = round(ratio, 2)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=20_000)
    parser.add_argument("--sinks", type=int, default=4, help="sinks on 127.0.0.2, .3, ...")
    parser.add_argument("--domains", type=int, default=8, help="recipient domains (>= sinks)")
    parser.add_argument("--only", choices=("postfix", "postwise", "both"), default="both")
    parser.add_argument(
        "--concurrency", type=int, default=20, help="connections per destination domain"
    )
    parser.add_argument("--connections", type=int, default=8, help="SMTP sessions to inject")
    parser.add_argument("--per-connection", type=int, default=500, help="messages per session")
    parser.add_argument("--timeout", type=float, default=900.0, help="seconds to wait at most")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", type=Path, default=None, help="also write the result here")
    args = parser.parse_args()
    if args.domains % args.sinks:
        parser.error("--domains must be a multiple of --sinks (the same number per sink)")
    result = run(args)
    print(markdown(result))
    if args.json is not None:
        args.json.write_text(json.dumps(result, indent=2) + "\n")
    if any(r["duplicates"] or r["missing"] for r in result["runs"].values()):
        print("\nDUPLICATES OR MISSING MESSAGES", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
